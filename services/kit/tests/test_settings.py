from __future__ import annotations

import pytest

from services.kit.settings import EnvReader, ServingSettings, SettingsError


def reader(**values: str) -> EnvReader:
    return EnvReader("SVC", values)


def test_defaults_and_prefix():
    settings = ServingSettings.from_env(reader(SVC_TORCH_THREADS="1"), workers=1)
    assert settings.max_body_bytes == 20 * 1024 * 1024
    assert settings.max_pixels == 40_000_000
    assert settings.torch_threads == 1


def test_the_detector_batches_two_images_on_a_cpu_unless_told(tmp_path):
    from services.classifier.settings import ClassifierSettings
    from services.detector.settings import DetectorSettings

    # The settings only check that the model files exist; a clean clone has none yet.
    for name in ("yolov3.cfg", "yolov3.weights", "coco.names", "resnet18.pth"):
        (tmp_path / name).touch()
    one_thread = {
        "WEIGHTS_DIR": str(tmp_path),
        "CLASSIFIER_TORCH_THREADS": "1",
        "DETECTOR_TORCH_THREADS": "1",
    }
    assert DetectorSettings.from_env(one_thread).serving.max_batch == 2
    assert ClassifierSettings.from_env(one_thread).serving.max_batch == 8
    told = {**one_thread, "DETECTOR_MAX_BATCH": "16"}
    assert DetectorSettings.from_env(told).serving.max_batch == 16


def test_stack_wide_body_limit_has_no_prefix():
    settings = ServingSettings.from_env(reader(MAX_BODY_MB="5", SVC_TORCH_THREADS="1"), 1)
    assert settings.max_body_bytes == 5 * 1024 * 1024


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"SVC_MAX_MEGAPIXELS": "-1"}, "SVC_MAX_MEGAPIXELS='-1' is out of range"),
        ({"SVC_MAX_BATCH": "many"}, "SVC_MAX_BATCH='many' is not an integer"),
        ({"SVC_FP16": "maybe"}, "SVC_FP16='maybe' is not a boolean"),
        ({"SVC_LOG_LEVEL": "loud"}, "SVC_LOG_LEVEL='loud' is not one of"),
        ({"MAX_BODY_MB": "0"}, "MAX_BODY_MB='0' is out of range"),
        ({"SVC_TORCH_THREADS": "999"}, "SVC_TORCH_THREADS='999' is out of range"),
    ],
)
def test_bad_values_name_the_variable(values, message):
    with pytest.raises(SettingsError, match=message.replace("(", r"\(")):
        ServingSettings.from_env(reader(**values), workers=1)


def test_workers_times_threads_may_not_exceed_the_cpus():
    with pytest.raises(SettingsError, match="SVC_WORKERS=64 x SVC_TORCH_THREADS=1 exceeds"):
        ServingSettings.from_env(reader(SVC_TORCH_THREADS="1"), workers=64)


def test_cpu_quota_from_cgroup_v2_and_v1(tmp_path):
    from services.kit.settings import available_cpus, cgroup_cpu_quota

    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_quota(v2) == 1.5
    (v2 / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_quota(v2) is None

    v1 = tmp_path / "v1" / "cpu"
    v1.mkdir(parents=True)
    (v1 / "cpu.cfs_quota_us").write_text("100000\n")
    (v1 / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpu_quota(tmp_path / "v1") == 1.0
    assert available_cpus(tmp_path / "v1") == 1
    (v1 / "cpu.cfs_quota_us").write_text("-1\n")
    assert cgroup_cpu_quota(tmp_path / "v1") is None
    assert cgroup_cpu_quota(tmp_path / "nothing") is None


def test_runtime_dirs_of_dead_masters_are_removed(tmp_path, monkeypatch):
    import os
    import subprocess
    import tempfile

    from services.kit.gunicorn_hooks import remove_dead_masters_runtime_dirs

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    gone = subprocess.Popen(["true"])  # its pid is free once it has been waited for
    gone.wait()
    alive = os.getpid()
    (tmp_path / f"vision-test-{gone.pid}-abc" / "metrics").mkdir(parents=True)
    (tmp_path / f"vision-test-{alive}-def").mkdir()
    (tmp_path / "vision-test-notapid").mkdir()
    assert remove_dead_masters_runtime_dirs("vision-test") == [f"vision-test-{gone.pid}-abc"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"vision-test-{alive}-def",
        "vision-test-notapid",
    ]
