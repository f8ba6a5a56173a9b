"""BentoML serving the same ResNet18 state_dict, for the benchmark (run with .venv-peer-bentoml).

    BENCH_RESNET18_WEIGHTS=weights/resnet18.pth BENTOML_DO_NOT_TRACK=True \
        .venv-peer-bentoml/bin/bentoml serve bentoml_service:ResNet18 \
        --working-dir loadtest/bench/peers --host 127.0.0.1 --port 8300

``POST /predict`` with a multipart ``image`` field answers ``{"predictions": [{"label",
"class_id", "confidence"} x 5]}``, the same top-5 as litserve_server.py.

Two Services, because that is how BentoML's adaptive-batching guide batches single requests
("Handle multiple parameters"): a batchable API takes and returns a *batch* (a list), so a
client sending one image would get a one-element list back. ``ResNet18`` is the wrapper the
guide prescribes: it decodes and preprocesses one upload (the preprocessing torchvision
publishes with the weights) and calls the batchable ``ResNet18Model.classify`` through
``bentoml.depends``, whose dispatcher batches the tensors of concurrent requests.

Environment (read once, at import, in every worker):

- ``BENCH_RESNET18_WEIGHTS``: the torchvision state_dict (required);
- ``BENCH_BENTOML_WORKERS``: processes per Service (default 2), each with 1 torch thread;
- ``BENCH_BENTOML_MAX_BATCH``: ``max_batch_size`` (default 8);
- ``BENCH_BENTOML_MAX_LATENCY_MS``: ``max_latency_ms`` (default 60000, BentoML's default).
  It is not a batching wait: the dispatcher learns its wait from the traffic and answers 503
  to a request whose queueing plus estimated batch time would exceed it. A value near the
  stack's 2 ms wait would refuse nearly every request (one ResNet18 image takes ~45 ms on one
  thread), so the default keeps every request admitted, as in the other peers.
"""

from __future__ import annotations

import os

import anyio.to_thread
import bentoml
import torch
from PIL import Image
from torchvision.models import ResNet18_Weights, resnet18

TOP_K = 5
WORKERS = int(os.environ.get("BENCH_BENTOML_WORKERS", "2"))
MAX_BATCH = int(os.environ.get("BENCH_BENTOML_MAX_BATCH", "8"))
MAX_LATENCY_MS = int(os.environ.get("BENCH_BENTOML_MAX_LATENCY_MS", "60000"))
# The bench client's own timeout (loadtest/bench/contenders.py REQUEST_TIMEOUT_S), not
# BentoML's 60 s default, so a long queue shows as latency rather than as errors.
TIMEOUT_S = 300
# Like LitServe's warnings-only log: a line per request would cost CPU under load.
QUIET = {"access": {"enabled": False}}


@bentoml.service(workers=WORKERS, traffic={"timeout": TIMEOUT_S}, logging=QUIET)
class ResNet18Model:
    """The network, batched by BentoML's adaptive dispatcher (one per worker)."""

    def __init__(self) -> None:
        torch.set_num_threads(1)  # workers x threads = the 2 cores
        published = ResNet18_Weights.DEFAULT
        self.categories = published.meta["categories"]
        network = resnet18(weights=None)
        network.load_state_dict(
            torch.load(os.environ["BENCH_RESNET18_WEIGHTS"], map_location="cpu", weights_only=True)
        )
        self.network = network.eval()
        with torch.inference_mode():  # warm up before the worker reports ready
            self.network(torch.zeros(1, 3, 224, 224))

    @bentoml.api(batchable=True, max_batch_size=MAX_BATCH, max_latency_ms=MAX_LATENCY_MS)
    def classify(self, images: list[torch.Tensor]) -> list[list[dict]]:
        """``Tensor[3, 224, 224]`` normalised images -> their top-5, most likely first."""
        with torch.inference_mode():
            probabilities = self.network(torch.stack(images)).softmax(dim=1)
        values, indices = probabilities.topk(TOP_K, dim=1)
        return [
            [
                {"label": self.categories[i], "class_id": i, "confidence": round(p, 6)}
                for p, i in zip(row_values, row_indices, strict=True)
            ]
            for row_values, row_indices in zip(values.tolist(), indices.tolist(), strict=True)
        ]


@bentoml.service(workers=WORKERS, traffic={"timeout": TIMEOUT_S}, logging=QUIET)
class ResNet18:
    """The public API: one upload in, its top-5 out."""

    model = bentoml.depends(ResNet18Model)

    def __init__(self) -> None:
        torch.set_num_threads(1)  # the transforms run torch ops too
        self.transform = ResNet18_Weights.DEFAULT.transforms()

    def _preprocess(self, image: Image.Image) -> torch.Tensor:
        return self.transform(image.convert("RGB"))

    @bentoml.api
    async def predict(self, image: Image.Image) -> dict:
        # Decoding and resizing block, so they leave the event loop (and /readyz) free.
        tensor = await anyio.to_thread.run_sync(self._preprocess, image)
        (predictions,) = await self.model.to_async.classify([tensor])
        return {"predictions": predictions}
