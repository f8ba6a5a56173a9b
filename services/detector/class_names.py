"""The detector's class names file (darknet's ``coco.names`` format)."""

from __future__ import annotations

from pathlib import Path


def load_class_names(path: str | Path) -> list[str]:
    """Class names, one per non-blank line; index = class id."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip()]
