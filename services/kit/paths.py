"""Default locations, resolved from the repository root or the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def weights_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where model files live: ``WEIGHTS_DIR``, else ``<repo>/weights``."""
    environ = os.environ if environ is None else environ
    return Path(environ.get("WEIGHTS_DIR") or REPO_ROOT / "weights")
