"""channels_last (the default) and the opt-in torch.compile give the eager contiguous
outputs to float rounding; bf16 is opt-in, refused on a CPU without AVX512-BF16/AMX, and
close to fp32 where it runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from services.classifier.model import Classifier
from services.classifier.settings import ClassifierSettings
from services.core.pipeline import (
    InferencePipeline,
    compiled_batch_sizes,
    split_for_graphs,
    warm_up_batches,
)
from services.core.torch_runtime import cpu_flags, select_dtype
from services.detector.model import Detector
from services.detector.settings import DetectorSettings
from services.kit.settings import SettingsError

BF16_CPU = bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def classifier(weights, **env) -> Classifier:
    environ = {"CLASSIFIER_WEIGHTS": str(weights), "CLASSIFIER_TORCH_THREADS": "1", **env}
    model = Classifier(ClassifierSettings.from_env(environ))
    model.load()
    return model


def detector(files, **env) -> Detector:
    environ = {
        "WEIGHTS_DIR": str(files),
        "DETECTOR_MODEL": "yolov3-tiny",
        "DETECTOR_TORCH_THREADS": "1",
        **env,
    }
    model = Detector(DetectorSettings.from_env(environ))
    model.load()
    return model


def batch_of(model, images_dir, names=("dog.jpg", "eagle.jpg")) -> torch.Tensor:
    tensors = [model.preprocess(Image.open(images_dir / n).convert("RGB"))[0] for n in names]
    return torch.stack(tensors)


def relative_error(got: torch.Tensor, expected: torch.Tensor) -> float:
    return float((got - expected).abs().max() / expected.abs().max())


@pytest.mark.parametrize("build", [classifier, detector], ids=["classifier", "detector"])
def test_channels_last_matches_eager_fp32(build, classifier_weights, detector_files, images_dir):
    source = classifier_weights if build is classifier else detector_files
    prefix = "CLASSIFIER" if build is classifier else "DETECTOR"
    eager = build(source, **{f"{prefix}_CHANNELS_LAST": "0", f"{prefix}_FOLD_BATCHNORM": "0"})
    fast = build(source, **{f"{prefix}_FOLD_BATCHNORM": "0"})
    assert fast.layout is torch.channels_last and eager.layout is torch.contiguous_format
    batch = batch_of(eager, images_dir)
    with torch.inference_mode():
        expected, got = eager.forward(batch), fast.forward(batch)
    assert got.dtype == torch.float32
    assert relative_error(got, expected) < 1e-5


def with_trained_looking_norms(weights: Path, out: Path) -> Path:
    """The stand-in state_dict with random batch-norm statistics and affines: its default
    init (mean 0, variance 1, weight 1, bias 0) would make folding a no-op to test."""
    generator = torch.Generator().manual_seed(3)
    state = torch.load(weights, weights_only=True)
    for key, value in state.items():
        if key.endswith(("running_mean", "bias")) and value.dim() == 1:
            state[key] = torch.randn(value.shape, generator=generator) * 0.2
        elif key.endswith(("running_var", "weight")) and value.dim() == 1:
            state[key] = torch.rand(value.shape, generator=generator) + 0.5
    torch.save(state, out)
    return out


def norm_modules(network: torch.nn.Module) -> list[str]:
    return [type(m).__name__ for m in network.modules() if "BatchNorm" in type(m).__name__]


@pytest.mark.parametrize("build", [classifier, detector], ids=["classifier", "detector"])
def test_folded_batch_norms_match_unfolded_fp32(
    build, classifier_weights, detector_files, images_dir, tmp_path
):
    if build is classifier:
        source = with_trained_looking_norms(classifier_weights, tmp_path / "resnet18.pth")
        prefix = "CLASSIFIER"
    else:
        source, prefix = detector_files, "DETECTOR"  # its stand-in has calibrated norms
    unfolded = build(source, **{f"{prefix}_FOLD_BATCHNORM": "0"})
    folded = build(source)
    assert norm_modules(unfolded.network) and not norm_modules(folded.network)
    batch = batch_of(unfolded, images_dir)
    with torch.inference_mode():
        expected, got = unfolded.forward(batch), folded.forward(batch)
    assert relative_error(got, expected) < 1e-5


@pytest.mark.parametrize("build", [classifier, detector], ids=["classifier", "detector"])
def test_compiled_network_matches_eager_fp32(
    build, classifier_weights, detector_files, images_dir, tmp_path, monkeypatch
):
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))  # not /tmp
    source = classifier_weights if build is classifier else detector_files
    prefix = "CLASSIFIER" if build is classifier else "DETECTOR"
    eager = build(source)
    compiled = build(source, **{f"{prefix}_COMPILE": "1"})
    assert isinstance(compiled.network, torch._dynamo.eval_frame.OptimizedModule)
    with torch.inference_mode():
        # A batch of 1 and one of 2: two of the graphs warm-up builds (warm_up_batches).
        for names in (("kite.jpg",), ("dog.jpg", "eagle.jpg")):
            batch = batch_of(eager, images_dir, names)
            expected, got = eager.forward(batch), compiled.forward(batch)
            assert relative_error(got, expected) < 1e-5, names


def test_a_compiled_network_is_warmed_up_at_every_graph_it_needs():
    assert warm_up_batches(False, 8) == [1]
    assert warm_up_batches(True, 8) == [1, 2, 4, 8]
    assert warm_up_batches(True, 6) == [1, 2, 4, 6]
    assert warm_up_batches(True, 1) == [1]


@pytest.mark.parametrize("max_batch", [1, 3, 6, 8, 13])
def test_every_batch_size_splits_into_graph_sizes_largest_first(max_batch):
    graphs = compiled_batch_sizes(max_batch)
    for size in range(1, max_batch + 1):
        chunks = split_for_graphs(size, graphs)
        assert sum(chunks) == size and set(chunks) <= set(graphs)
        assert chunks == sorted(chunks, reverse=True)
    assert split_for_graphs(7, [1, 2, 4, 8]) == [4, 2, 1]


def test_bf16_is_refused_on_a_cpu_without_it():
    with pytest.raises(SettingsError, match="AVX512-BF16 or AMX"):
        select_dtype(torch.device("cpu"), half=False, bf16=True, flags={"avx2", "avx512f"})
    assert select_dtype(torch.device("cpu"), False, True, {"amx_bf16"}) is torch.bfloat16
    with pytest.raises(SettingsError, match="choose one"):
        select_dtype(torch.device("cpu"), half=True, bf16=True)


@pytest.mark.skipif(not BF16_CPU, reason="this CPU has no AVX512-BF16/AMX")
def test_bf16_classifier_stays_close_to_fp32(classifier_weights, images_dir):
    fp32 = classifier(classifier_weights)
    bf16 = classifier(classifier_weights, CLASSIFIER_BF16="1")
    assert bf16.model_summary()["dtype"] == "bfloat16"
    batch = batch_of(fp32, images_dir)
    with torch.inference_mode():
        expected, got = fp32.forward(batch), bf16.forward(batch)
    assert got.dtype == torch.float32  # outputs are always float32
    cosine = torch.nn.functional.cosine_similarity(got, expected, dim=1)
    assert float(cosine.min()) > 0.99


@pytest.mark.skipif(not BF16_CPU, reason="this CPU has no AVX512-BF16/AMX")
def test_bf16_detector_runs_and_answers_in_float32(detector_files, images_dir):
    model = detector(detector_files, DETECTOR_BF16="1")
    with torch.inference_mode():
        rows = model.forward(batch_of(model, images_dir))
    assert rows.dtype == torch.float32 and torch.isfinite(rows).all()


def test_a_compiled_pipeline_runs_any_batch_on_the_graphs_built_at_warm_up(
    classifier_weights, images_dir, tmp_path, monkeypatch
):
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    environ = {
        "CLASSIFIER_WEIGHTS": str(classifier_weights),
        "CLASSIFIER_TORCH_THREADS": "1",
        "CLASSIFIER_COMPILE": "1",
        "CLASSIFIER_MAX_BATCH": "4",
    }
    settings = ClassifierSettings.from_env(environ)
    pipeline = InferencePipeline("test", Classifier(settings), settings.serving)
    pipeline.start(background=False)
    eager = classifier(classifier_weights)
    names = ("dog.jpg", "eagle.jpg", "kite.jpg")  # one request of 3: graphs for 2 and 1
    graphs_before = dict(torch._dynamo.utils.counters["stats"])
    result = pipeline.run([Image.open(images_dir / name).convert("RGB") for name in names])
    assert dict(torch._dynamo.utils.counters["stats"]) == graphs_before  # nothing compiled
    with torch.inference_mode():
        expected = eager.forward(batch_of(eager, images_dir, names))
    got = torch.stack([image.output for image in result.images])
    assert relative_error(got, expected) < 1e-5
