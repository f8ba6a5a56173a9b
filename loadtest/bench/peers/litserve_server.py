"""LitServe serving the same ResNet18 state_dict, for the benchmark (run with .venv-bench).

    .venv-bench/bin/python loadtest/bench/peers/litserve_server.py --weights weights/resnet18.pth \
        --port 8300 [--workers 2] [--threads 1] [--max-batch 8] [--batch-timeout-s 0.002]

``POST /predict`` with a multipart ``image`` field answers ``{"predictions": [{"label",
"class_id", "confidence"} x 5]}``, the same top-5 the stack computes: the four LitAPI hooks
as LitServe's docs describe them (setup loads the model once per worker; decode_request,
batch, predict, unbatch, encode_response), with the preprocessing torchvision publishes with
the weights (resize 256, center crop 224, normalize).
"""

from __future__ import annotations

import argparse
import io

import litserve as ls
import torch
from PIL import Image
from torchvision.models import ResNet18_Weights, resnet18

TOP_K = 5


class ResNet18API(ls.LitAPI):
    def __init__(self, weights: str, threads: int, **kwargs):
        super().__init__(**kwargs)
        self.weights_path = weights
        self.threads = threads

    def setup(self, device):
        torch.set_num_threads(self.threads)
        published = ResNet18_Weights.DEFAULT
        self.transform = published.transforms()
        self.categories = published.meta["categories"]
        network = resnet18(weights=None)
        network.load_state_dict(
            torch.load(self.weights_path, map_location="cpu", weights_only=True)
        )
        self.network = network.eval().to(device)
        self.device = device
        with torch.inference_mode():
            self.network(torch.zeros(1, 3, 224, 224, device=device))

    def decode_request(self, request):
        upload = request["image"]
        data = upload.file.read() if hasattr(upload, "file") else upload
        image = Image.open(io.BytesIO(data)).convert("RGB")
        return self.transform(image)

    def batch(self, inputs):
        return torch.stack(inputs)

    def predict(self, batch):
        with torch.inference_mode():
            probabilities = self.network(batch.to(self.device)).softmax(dim=1)
        return probabilities.topk(TOP_K, dim=1)

    def unbatch(self, output):
        values, indices = output
        return list(zip(values.tolist(), indices.tolist(), strict=True))

    def encode_response(self, output):
        values, indices = output
        if isinstance(values, torch.Tensor):  # unbatched path (max_batch_size=1)
            values, indices = values[0].tolist(), indices[0].tolist()
        return {
            "predictions": [
                {"label": self.categories[i], "class_id": i, "confidence": round(p, 6)}
                for p, i in zip(values, indices, strict=True)
            ]
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", required=True)
    parser.add_argument("--port", type=int, default=8300)
    parser.add_argument("--workers", type=int, default=2, help="workers_per_device")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--batch-timeout-s", type=float, default=0.002)
    args = parser.parse_args()
    api = ResNet18API(
        args.weights,
        args.threads,
        max_batch_size=args.max_batch,
        batch_timeout=args.batch_timeout_s if args.max_batch > 1 else 0.0,
        api_path="/predict",
    )
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=args.workers)
    # The production settings of LitServer.run's docs: no client file, warnings only.
    server.run(host="127.0.0.1", port=args.port, log_level="warning", generate_client_file=False)


if __name__ == "__main__":
    main()
