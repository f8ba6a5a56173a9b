"""Classifier configuration: ``CLASSIFIER_*`` environment variables, validated at start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from services.kit.paths import weights_dir
from services.kit.settings import EnvReader, ServingSettings, read_workers

PREFIX = "CLASSIFIER"
DEFAULT_PORT = 8001


@dataclass(frozen=True)
class ClassifierSettings:
    arch: str
    weights_path: Path
    top_k: int
    workers: int
    serving: ServingSettings

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ClassifierSettings:
        env = EnvReader(PREFIX, dict(os.environ if environ is None else environ))
        arch = env.string("ARCH", "resnet18")
        workers = read_workers(env)
        return cls(
            arch=arch,
            weights_path=env.path("WEIGHTS", weights_dir(env.environ) / f"{arch}.pth"),
            top_k=env.integer("TOP_K", 5, 1, 1000),
            workers=workers,
            serving=ServingSettings.from_env(env, workers),
        )
