"""PyTriton serving the same ResNet18 state_dict, for the benchmark (run with .venv-peer-pytriton).

    LD_LIBRARY_PATH=<LIBDIR of that python> .venv-peer-pytriton/bin/python \
        loadtest/bench/peers/pytriton_server.py --weights weights/resnet18.pth \
        --http-port 8400 --grpc-port 8401 --metrics-port 8402 --work-dir /tmp/pytriton \
        [--workers 2] [--threads 1] [--max-batch 8] [--batch-wait-us 2000]

Model ``resnet18`` on Triton's HTTP port (Open Inference Protocol v2): input ``IMAGE`` (BYTES
[1], the JPEG file as sent), outputs ``PROBABILITIES`` (FP32 [5]), ``CLASS_IDS`` (INT64 [5]) and
``LABELS`` (BYTES [5]), the same top-5 the stack computes, with the preprocessing torchvision
publishes with the weights (resize 256, center crop 224, normalize). As PyTriton's docs do it:
``Triton(config=TritonConfig(...))``, ``bind`` with one infer function per model instance (each
owns its network), ``@batch`` and Triton's dynamic batcher, then ``serve()`` in the foreground.

LD_LIBRARY_PATH matters: the bundled Python backend stub links ``libpython3.11.so.1.0`` and,
without it, finds Debian's, which fails inside this Python with ``'_thread.RLock' object has no
attribute '_recursion_count'``.
"""

from __future__ import annotations

import argparse
import io
import shutil
import signal
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from pytriton.decorators import batch
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig
from torchvision.models import ResNet18_Weights, resnet18

TOP_K = 5
MODEL_NAME = "resnet18"
EXIT_TIMEOUT_S = 3


class ResNet18Instance:
    """One model instance: its own network, called by PyTriton's inference thread for it."""

    def __init__(self, weights: Path) -> None:
        published = ResNet18_Weights.DEFAULT
        self.transform = published.transforms()
        self.categories = published.meta["categories"]
        network = resnet18(weights=None)
        network.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        self.network = network.eval()
        # Warm up before bind(), so the model is ready when Triton says it is.
        with torch.inference_mode():
            self.network(torch.zeros(1, 3, 224, 224))

    @batch
    def __call__(self, IMAGE: np.ndarray) -> dict[str, np.ndarray]:
        """``IMAGE``: object array [N, 1] of JPEG bytes; returns the top-5 arrays, each [N, 5]."""
        images = [
            self.transform(Image.open(io.BytesIO(data)).convert("RGB")) for data in IMAGE[:, 0]
        ]
        with torch.inference_mode():
            probabilities = self.network(torch.stack(images)).softmax(dim=1)
        values, indices = probabilities.topk(TOP_K, dim=1)
        labels = [[self.categories[i].encode() for i in row] for row in indices.tolist()]
        return {
            "PROBABILITIES": values.numpy().astype(np.float32),
            "CLASS_IDS": indices.numpy().astype(np.int64),
            "LABELS": np.array(labels, dtype=np.object_),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--http-port", type=int, default=8400)
    parser.add_argument("--grpc-port", type=int, default=8401)
    parser.add_argument("--metrics-port", type=int, default=8402)
    parser.add_argument("--work-dir", type=Path, required=True, help="Triton log and workspace")
    parser.add_argument("--workers", type=int, default=2, help="model instances")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (per instance)")
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--batch-wait-us", type=int, default=2000)
    args = parser.parse_args()

    # The instances are threads of this one process, so this sets the threads of each.
    torch.set_num_threads(args.threads)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    workspace = args.work_dir / "workspace"
    # PyTriton refuses a workspace that exists; one is left behind only by a killed run.
    shutil.rmtree(workspace, ignore_errors=True)
    config = TritonConfig(
        http_address="127.0.0.1",
        http_port=args.http_port,
        grpc_address="127.0.0.1",
        grpc_port=args.grpc_port,
        metrics_address="127.0.0.1",
        metrics_port=args.metrics_port,
        log_file=args.work_dir / "tritonserver.log",
        allow_gpu_metrics=False,
        # Triton waits this long for idle keep-alive connections (the clients', PyTriton's own)
        # before it exits; at the default 30 s the bench's stop SIGKILLs the group first and
        # leaves shared-memory regions and temporary folders behind.
        exit_timeout_secs=EXIT_TIMEOUT_S,
    )
    instances = [ResNet18Instance(args.weights) for _ in range(args.workers)]
    # serve() stops Triton, its stubs and the inference threads on KeyboardInterrupt only;
    # SIGTERM (what the bench and orchestrators send) takes the same path.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with Triton(config=config, workspace=workspace) as triton:
        triton.bind(
            model_name=MODEL_NAME,
            infer_func=instances,
            inputs=[Tensor(name="IMAGE", dtype=bytes, shape=(1,))],
            outputs=[
                Tensor(name="PROBABILITIES", dtype=np.float32, shape=(TOP_K,)),
                Tensor(name="CLASS_IDS", dtype=np.int64, shape=(TOP_K,)),
                Tensor(name="LABELS", dtype=bytes, shape=(TOP_K,)),
            ],
            config=ModelConfig(
                max_batch_size=args.max_batch,
                batcher=DynamicBatcher(max_queue_delay_microseconds=args.batch_wait_us),
            ),
            strict=True,
        )
        triton.serve()


if __name__ == "__main__":
    main()
