"""The original write-up's way of serving, rebuilt as the benchmark's baseline.

    python -m loadtest.bench.baseline.app classify --port 8400 --weights-dir weights
    python -m loadtest.bench.baseline.app detect --port 8401 --weights-dir weights \
        --detector-model yolov3

One Flask server per endpoint, each on Flask's built-in threaded server, answering
``POST /predict`` with a multipart ``file`` field (the original demo's field name). Like
the original, every request builds the network and reads the weights file again; the
detector then draws its boxes with matplotlib and answers with the rendered PNG. torch uses
its default thread count in every request thread.

What is *not* copied from the original, so the comparison is about the serving approach and
not about the model code: the network, the letterbox and the NMS are the stack's own
(services.detector.darknet / yolo), the same weights files are read, and the figure is drawn
with matplotlib's object API instead of pyplot's global state, which is not thread-safe and
would garble pictures under concurrent requests.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import torch
from flask import Flask, jsonify, request, send_file
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image
from torchvision.models import ResNet18_Weights, resnet18

from services.detector.class_names import load_class_names
from services.detector.darknet.cfg import parse_cfg
from services.detector.darknet.model import build_model
from services.detector.darknet.weights import load_darknet_weights
from services.detector.yolo import letterbox, postprocess

DETECTOR_INPUT_SIZE = 416
CONF_THRESHOLD = 0.5
IOU_THRESHOLD = 0.45
MAX_DETECTIONS = 100


def read_upload() -> Image.Image:
    upload = request.files.get("file") or request.files.get("image")
    if upload is None:
        raise ValueError("no file")
    return Image.open(io.BytesIO(upload.read())).convert("RGB")


def classify_app(weights_dir: Path) -> Flask:
    app = Flask("baseline-classifier")
    published = ResNet18_Weights.DEFAULT
    transform, categories = published.transforms(), published.meta["categories"]

    @app.post("/predict")
    def predict():
        image = read_upload()
        model = resnet18(weights=None)  # loaded on every request, as in the original
        model.load_state_dict(torch.load(weights_dir / "resnet18.pth", weights_only=True))
        model.eval()
        with torch.no_grad():
            probabilities = model(transform(image).unsqueeze(0)).softmax(dim=1)[0]
        values, indices = probabilities.topk(5)
        return jsonify(
            predictions=[
                {"label": categories[i], "class_id": i, "confidence": round(p, 6)}
                for p, i in zip(values.tolist(), indices.tolist(), strict=True)
            ]
        )

    @app.get("/health")
    def health():
        return "ok"

    return app


def render_png(image: Image.Image, detections: list[dict]) -> bytes:
    """The photo with labelled boxes, drawn by matplotlib as the original demo did."""
    figure = Figure(figsize=(image.width / 100, image.height / 100), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.imshow(image)
    for detection in detections:
        box = detection["box"]
        axes.add_patch(
            Rectangle(
                (box["x1"], box["y1"]),
                box["x2"] - box["x1"],
                box["y2"] - box["y1"],
                linewidth=2,
                edgecolor="red",
                facecolor="none",
            )
        )
        axes.text(
            box["x1"],
            box["y1"],
            f"{detection['label']} {detection['confidence']:.2f}",
            color="white",
            verticalalignment="top",
            bbox={"color": "red", "pad": 0},
        )
    axes.axis("off")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def detect_app(weights_dir: Path, model_name: str) -> Flask:
    app = Flask("baseline-detector")
    names = load_class_names(weights_dir / "coco.names")

    @app.post("/predict")
    def predict():
        image = read_upload()
        # Loaded on every request, as in the original.
        model = build_model(parse_cfg(weights_dir / f"{model_name}.cfg"), DETECTOR_INPUT_SIZE)
        load_darknet_weights(model, weights_dir / f"{model_name}.weights")
        model.eval()
        tensor, info = letterbox(image, DETECTOR_INPUT_SIZE)
        with torch.no_grad():
            rows = model(tensor.unsqueeze(0))[0]
        detections = postprocess(
            rows,
            info,
            conf_threshold=CONF_THRESHOLD,
            iou_threshold=IOU_THRESHOLD,
            max_detections=MAX_DETECTIONS,
        )
        for detection in detections:
            detection["label"] = names[detection["class_id"]]
        return send_file(io.BytesIO(render_png(image, detections)), mimetype="image/png")

    @app.get("/health")
    def health():
        return "ok"

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", choices=("classify", "detect"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--weights-dir", type=Path, default=Path("weights"))
    parser.add_argument("--detector-model", default="yolov3")
    args = parser.parse_args()
    if args.task == "classify":
        app = classify_app(args.weights_dir)
    else:
        app = detect_app(args.weights_dir, args.detector_model)
    app.run(host="127.0.0.1", port=args.port, threaded=True)


if __name__ == "__main__":
    main()
