"""Ray Serve serving the same ResNet18 state_dict, for the benchmark (run with .venv-peer-ray).

    .venv-peer-ray/bin/python loadtest/bench/peers/ray_serve_server.py \
        --weights weights/resnet18.pth --port 8400 --tmp-dir /tmp/rayXXXX \
        [--workers 2] [--threads 1] [--max-batch 8] [--batch-timeout-s 0.002]

``POST /predict`` with a multipart ``image`` field answers ``{"predictions": [{"label",
"class_id", "confidence"} x 5]}``, the same top-5 the stack computes, with the preprocessing
torchvision publishes with the weights (resize 256, center crop 224, normalize).
``GET /health`` answers 200 only once the application is RUNNING (every replica up), 503
before.

One deployment, as Ray Serve's image-model examples write it: Serve's HTTP proxy (one
uvicorn actor) forwards the request to a replica, which reads the form and decodes the JPEG
in its own ``__call__`` (so decoding is spread over the replicas, not done in the proxy),
then awaits a ``@serve.batch`` method that runs the model on up to ``--max-batch`` images.
Each replica is a Ray actor holding ``num_cpus=1`` with ``--threads`` torch threads, so
replicas x threads fits the 2 cores. Ray runs locally (its own GCS, raylet, agents and
workers; no dashboard UI, though Ray still starts a minimal dashboard head for usage stats)
under ``--tmp-dir``, which must be short: Ray's unix sockets live under it and their paths
must stay below 108 characters. SIGTERM or SIGINT shuts Serve and Ray down.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import os
import signal

# Read by the Ray processes ray.init starts: no usage report (there is no network here).
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import ray
import torch
from PIL import Image, UnidentifiedImageError
from ray import serve
from ray.serve.schema import ApplicationStatus, LoggingConfig
from starlette.requests import Request
from starlette.responses import JSONResponse
from torchvision.models import ResNet18_Weights, resnet18

TOP_K = 5
APP_NAME = "resnet18"
# Warnings only and no per-request access log, like the other peers' production settings.
QUIET = LoggingConfig(log_level="WARNING", enable_access_log=False)


class ResNet18Classifier:
    """One replica: the model loaded once, warmed up before the replica reports healthy."""

    def __init__(self, weights: str, threads: int, max_batch: int, batch_timeout_s: float):
        torch.set_num_threads(threads)
        published = ResNet18_Weights.DEFAULT
        self.transform = published.transforms()
        self.categories = published.meta["categories"]
        network = resnet18(weights=None)
        network.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        self.network = network.eval()
        with torch.inference_mode():
            self.network(torch.zeros(1, 3, 224, 224))
        self.classify.set_max_batch_size(max_batch)
        self.classify.set_batch_wait_timeout_s(batch_timeout_s)

    async def __call__(self, request: Request):
        if request.url.path == "/health" and request.method == "GET":
            return await self._health()
        if request.url.path != "/predict" or request.method != "POST":
            return JSONResponse({"error": "not found"}, status_code=404)
        form = await request.form()
        upload = form.get("image")
        if upload is None or isinstance(upload, str):
            return JSONResponse({"error": "multipart field 'image' missing"}, status_code=400)
        try:
            image = Image.open(io.BytesIO(await upload.read())).convert("RGB")
        except (UnidentifiedImageError, OSError) as error:
            return JSONResponse({"error": f"not an image: {error}"}, status_code=400)
        return await self.classify(self.transform(image))

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.002)
    async def classify(self, images: list[torch.Tensor]) -> list[dict]:
        """``images``: Tensor[3, 224, 224] each; one top-5 answer per image, in order."""
        with torch.inference_mode():
            probabilities = self.network(torch.stack(images)).softmax(dim=1)
        values, indices = probabilities.topk(TOP_K, dim=1)
        return [
            {
                "predictions": [
                    {"label": self.categories[i], "class_id": i, "confidence": round(p, 6)}
                    for p, i in zip(row_values, row_indices, strict=True)
                ]
            }
            for row_values, row_indices in zip(values.tolist(), indices.tolist(), strict=True)
        ]

    async def _health(self) -> JSONResponse:
        # Any replica answers, so ask the controller whether *all* of them are up. serve.status
        # blocks on a Ray call: off the replica's event loop.
        status = await asyncio.to_thread(serve.status)
        app = status.applications.get(APP_NAME)
        state = app.status.value if app else "missing"
        running = state == ApplicationStatus.RUNNING.value
        return JSONResponse({"status": state}, status_code=200 if running else 503)


def _exit_once(signum: int, _frame) -> None:
    """Unwind main() to its shutdown; a second signal must not interrupt that shutdown."""
    for other in (signal.SIGTERM, signal.SIGINT):
        signal.signal(other, signal.SIG_IGN)
    raise SystemExit(128 + signum)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", required=True)
    parser.add_argument("--port", type=int, default=8400)
    parser.add_argument("--tmp-dir", required=True, help="Ray's temp dir (short path)")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs Ray may schedule on")
    parser.add_argument("--workers", type=int, default=2, help="replicas (num_cpus=1 each)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per replica")
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--batch-timeout-s", type=float, default=0.002)
    args = parser.parse_args()
    if args.workers > args.cpus:
        parser.error(f"--workers {args.workers} replicas need {args.workers} CPUs (--cpus)")

    ray.init(
        address="local",  # a private instance, never a cluster found through RAY_ADDRESS
        num_cpus=args.cpus,
        include_dashboard=False,
        logging_level=logging.WARNING,
        _temp_dir=os.path.abspath(args.tmp_dir),
        _node_ip_address="127.0.0.1",  # GCS, raylet and agents on loopback only
    )
    # After ray.init, which installs its own SIGTERM handler. From here on a stop, also one
    # during start-up, unwinds to the finally below while GCS and raylet are still alive.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _exit_once)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": args.port}, logging_config=QUIET)
        deployment = serve.deployment(
            ResNet18Classifier,
            num_replicas=args.workers,
            ray_actor_options={"num_cpus": 1},
            # Room for one batch running and the next one filling (Serve warns below 1x):
            # beyond that, requests wait in the proxy's queue (unbounded by default).
            max_ongoing_requests=2 * args.max_batch,
        )
        app = deployment.bind(args.weights, args.threads, args.max_batch, args.batch_timeout_s)
        # Returns once every replica has loaded and warmed its model (status RUNNING).
        serve.run(app, name=APP_NAME, route_prefix="/", logging_config=QUIET)
        print(f"ray serve: ready on http://127.0.0.1:{args.port}", flush=True)
        while True:
            signal.pause()
    finally:
        serve.shutdown()
        ray.shutdown()
        print("ray serve: stopped", flush=True)


if __name__ == "__main__":
    main()
