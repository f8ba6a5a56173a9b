"""Detector configuration: ``DETECTOR_*`` environment variables, validated at start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from services.detector.darknet.cfg import CfgError, DarknetCfg, parse_cfg
from services.kit.paths import weights_dir
from services.kit.settings import EnvReader, ServingSettings, SettingsError, read_workers

PREFIX = "DETECTOR"
DEFAULT_PORT = 8002
# On a CPU a batch of more than 2 images at 416 x 416 gains nothing for yolov3 and costs
# yolov3-tiny up to a fifth of its speed: the activations outgrow the caches
# (docs/benchmarks.md). GPU deployments set DETECTOR_MAX_BATCH themselves.
DEFAULT_MAX_BATCH = 2


@dataclass(frozen=True)
class DetectorSettings:
    model: str
    cfg_path: Path
    weights_path: Path
    names_path: Path
    input_size: int
    conf_threshold: float
    iou_threshold: float
    max_detections: int
    jpeg_quality: int
    workers: int
    serving: ServingSettings

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DetectorSettings:
        env = EnvReader(PREFIX, dict(os.environ if environ is None else environ))
        model = env.string("MODEL", "yolov3")
        files = weights_dir(env.environ)
        workers = read_workers(env)
        input_size = env.integer("INPUT_SIZE", 416, 32, 4096)
        if input_size % 32:
            raise SettingsError(f"{env.name('INPUT_SIZE')}={input_size} is not a multiple of 32")
        return cls(
            model=model,
            cfg_path=env.path("CFG", files / f"{model}.cfg"),
            weights_path=env.path("WEIGHTS", files / f"{model}.weights"),
            names_path=env.path("NAMES", files / "coco.names"),
            input_size=input_size,
            conf_threshold=env.number("CONF_THRESHOLD", 0.5, 0.0, 1.0),
            iou_threshold=env.number("IOU_THRESHOLD", 0.45, 0.0, 1.0),
            max_detections=env.integer("MAX_DETECTIONS", 100, 1, 10000),
            jpeg_quality=env.integer("JPEG_QUALITY", 90, 1, 100),
            workers=workers,
            serving=ServingSettings.from_env(env, workers, DEFAULT_MAX_BATCH),
        )

    def parsed_cfg(self) -> DarknetCfg:
        """The parsed cfg; a malformed file is a configuration error naming its line."""
        try:
            return parse_cfg(self.cfg_path)
        except CfgError as error:
            raise SettingsError(f"DETECTOR_CFG: {error}") from None


def validate(environ: Mapping[str, str]) -> DetectorSettings:
    """Everything that can be checked without torch, for the gunicorn master."""
    settings = DetectorSettings.from_env(environ)
    settings.parsed_cfg()
    return settings
