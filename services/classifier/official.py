"""Official torchvision weights: download URL and pinned sha256 per architecture.

torchvision names its files ``<arch>-<first 8 hex of sha256>.pth``. For resnet18 the full
sha256 is pinned here; other architectures fall back to torchvision's own URL and its
8-hex prefix check (the same check ``torch.hub`` does).
"""

from __future__ import annotations

RESNET18_URL = "https://download.pytorch.org/models/resnet18-f37072fd.pth"
RESNET18_SHA256 = "f37072fd47e89c5e827621c5baffa7500819f7896bbacec160b1a16c560e07ec"
RESNET18_SIZE_BYTES = 46_830_571

PINNED_SHA256 = {"resnet18": RESNET18_SHA256}


def official_weights(arch: str) -> tuple[str, str | None]:
    """(url, full sha256 or None) of the default ImageNet weights of ``arch``."""
    from torchvision.models import get_model_weights

    url = get_model_weights(arch).DEFAULT.url
    return url, PINNED_SHA256.get(arch)


def official_checksums() -> dict[str, str]:
    """sha256 -> URL for every pinned official file (to recognise trained weights)."""
    return {RESNET18_SHA256: RESNET18_URL}
