"""YOLOv3 (any darknet cfg) detection as a servable model.

Loads the network from a darknet ``.cfg`` and either a darknet ``.weights`` file or a
PyTorch ``state_dict`` of the same network; letterboxes on the way in and maps boxes back
to original-image pixels on the way out (services.detector.yolo). A JPEG answered in JSON is
decoded at the smallest DCT scale still covering the letterbox (``*_DRAFT_DECODE``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from services.core.declaration import Rendered, TensorSpec, VisionModel
from services.core.state_dict import load_state_dict_file
from services.core.torch_runtime import (
    memory_format,
    place_network,
    select_device,
    select_dtype,
)
from services.detector.class_names import load_class_names
from services.detector.darknet.model import build_model
from services.detector.darknet.weights import load_darknet_weights
from services.detector.official import official_checksums
from services.detector.render import render_detections
from services.detector.settings import DetectorSettings
from services.detector.yolo import LetterboxInfo, letterbox, letterbox_decode_size, postprocess
from services.kit.parameters import Parameter
from services.kit.settings import SettingsError
from services.kit.weights import inspect_weights

UNTRAINED_BANNER = "UNTRAINED STAND-IN WEIGHTS - detections are meaningless"

STATE_DICT_SUFFIXES = {".pt", ".pth"}


@dataclass(frozen=True)
class DetectorInput:
    """What postprocessing and rendering need to know about one image."""

    letterbox: LetterboxInfo
    image: Image.Image


class Detector(VisionModel[DetectorInput]):
    route = "/v1/detect"
    renders = True

    def __init__(self, settings: DetectorSettings):
        self.settings = settings
        self.name = settings.model
        self.jpeg_quality = settings.jpeg_quality
        self.cfg = settings.parsed_cfg()
        self.class_names = load_class_names(settings.names_path)
        self.device = torch.device("cpu")
        self.dtype = torch.float32
        self.layout = torch.contiguous_format
        self.network: torch.nn.Module | None = None
        self.num_classes: int | None = None

    def parameters(self) -> list[Parameter]:
        return [
            Parameter(
                "conf_threshold", float, self.settings.conf_threshold, 0.0, 1.0,
                "Keep boxes whose score (objectness x class probability) exceeds this.",
            ),
            Parameter(
                "iou_threshold", float, self.settings.iou_threshold, 0.0, 1.0,
                "Per-class non-maximum suppression: drop a box overlapping a better one of "
                "the same class by more than this IoU.",
            ),
            Parameter(
                "max_detections", int, self.settings.max_detections, 1, 10000,
                "At most this many detections per image, highest scores first.",
            ),
        ]  # fmt: skip

    def load(self) -> None:
        self.weights = inspect_weights(self.settings.weights_path, official_checksums())
        self.device = select_device(self.settings.serving.device)
        self.dtype = select_dtype(
            self.device, self.settings.serving.half, self.settings.serving.bf16
        )
        self.layout = memory_format(self.settings.serving.channels_last)
        network = build_model(self.cfg, self.settings.input_size)
        if network.num_classes != len(self.class_names):
            raise SettingsError(
                f"DETECTOR_NAMES has {len(self.class_names)} names but the cfg has "
                f"{network.num_classes} classes"
            )
        if self.settings.weights_path.suffix in STATE_DICT_SUFFIXES:
            load_state_dict_file(network, self.settings.weights_path, self.settings.cfg_path.name)
        else:
            load_darknet_weights(network, self.settings.weights_path)
        self.num_classes = network.num_classes
        serving = self.settings.serving
        self.network = place_network(
            network, self.device, self.dtype, self.layout, serving.compile, serving.fold_batchnorm
        )

    def decode_size(self, width: int, height: int) -> tuple[int, int] | None:
        # Boxes are mapped back to the photo's pixels (preprocess gets its size); a request
        # that renders decodes in full (the pipeline's full_decode).
        return letterbox_decode_size(width, height, self.settings.input_size)

    def preprocess(
        self, image: Image.Image, photo_size: tuple[int, int] | None = None
    ) -> tuple[torch.Tensor, DetectorInput]:
        tensor, info = letterbox(image, self.settings.input_size, photo_size)
        return tensor, DetectorInput(info, image)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        """Tensor[B, 3, S, S] in [0, 1] -> decoded rows Tensor[B, N, 5 + classes] (float32)."""
        assert self.network is not None, "load() first"
        return (
            self.network(
                batch.to(self.device, self.dtype, memory_format=self.layout, non_blocking=True)
            )
            .float()
            .cpu()
        )

    def postprocess(
        self, output: torch.Tensor, meta: DetectorInput, params: Mapping[str, float]
    ) -> dict:
        detections = postprocess(
            output,
            meta.letterbox,
            conf_threshold=params["conf_threshold"],
            iou_threshold=params["iou_threshold"],
            max_detections=int(params["max_detections"]),
        )
        # The label first: it is what people read in the JSON.
        return {"detections": [{"label": self.class_names[d["class_id"]], **d} for d in detections]}

    def render(self, meta: DetectorInput, result: dict) -> Rendered:
        banner = None if self.weights.trained else UNTRAINED_BANNER
        picture = render_detections(meta.image, result["detections"], banner)
        return Rendered(picture, {"X-Detections": str(len(result["detections"]))})

    def v2_outputs(self) -> list[TensorSpec]:
        # K: the most detections of any image in the batch; shorter rows are padded (score
        # 0, class -1, label ""), COUNTS says how many of each row are real.
        return [
            TensorSpec("BOXES", "FP32", (-1, -1, 4)),  # x1, y1, x2, y2 in the photo's pixels
            TensorSpec("SCORES", "FP32", (-1, -1)),
            TensorSpec("CLASS_IDS", "INT32", (-1, -1)),
            TensorSpec("LABELS", "BYTES", (-1, -1)),
            TensorSpec("COUNTS", "INT32", (-1,)),
            TensorSpec("IMAGE_SIZE", "INT32", (-1, 2)),  # width, height
        ]

    def v2_tensors(self, outputs: list[torch.Tensor], results: list[dict]) -> dict:
        count, most = len(results), max((len(r["detections"]) for r in results), default=0)
        boxes = np.zeros((count, most, 4), np.float32)
        scores = np.zeros((count, most), np.float32)
        class_ids = np.full((count, most), -1, np.int32)
        labels = np.full((count, most), b"", dtype=np.object_)
        for n, result in enumerate(results):
            for k, found in enumerate(result["detections"]):
                box = found["box"]
                boxes[n, k] = (box["x1"], box["y1"], box["x2"], box["y2"])
                scores[n, k] = found["confidence"]
                class_ids[n, k] = found["class_id"]
                labels[n, k] = found["label"].encode()
        return {
            "BOXES": boxes,
            "SCORES": scores,
            "CLASS_IDS": class_ids,
            "LABELS": labels,
            "COUNTS": np.array([len(r["detections"]) for r in results], np.int32),
            "IMAGE_SIZE": np.array(
                [(r["image"]["width"], r["image"]["height"]) for r in results], np.int32
            ).reshape(count, 2),
        }

    def describe(self) -> dict:
        return {
            "name": self.name,
            "task": "detection",
            "architecture": f"darknet cfg {self.settings.cfg_path.name}",
            "cfg": self.settings.cfg_path.name,
            "input_size": [self.settings.input_size, self.settings.input_size],
            "num_classes": len(self.class_names),
            "class_names": self.class_names,
            "device": str(self.device),
            "dtype": str(self.dtype).removeprefix("torch."),
            "defaults": {
                "conf_threshold": self.settings.conf_threshold,
                "iou_threshold": self.settings.iou_threshold,
                "max_detections": self.settings.max_detections,
            },
        }
