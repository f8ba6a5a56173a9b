"""The web service runs without torch: its image has none, so its code must never need it."""

from __future__ import annotations

import subprocess
import sys

from scripts.launch import REPO_ROOT

# A fresh interpreter where importing torch, torchvision or the torch serving core fails,
# as in the web image (which carries services/kit and services/web only).
PROBE = """
import importlib.abc, sys

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision") or name.startswith(
            ("services.core", "services.detector", "services.classifier")
        ):
            raise ImportError(f"the web image has no {name}")
        return None

sys.meta_path.insert(0, Refuse())
from services.web.app import create_app

client = create_app({}).test_client()
assert client.get("/").status_code == 200
assert client.get("/docs").status_code == 200
assert client.get("/openapi.json").status_code == 200
print("web ok without torch")
"""


def test_web_imports_and_serves_without_torch():
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "web ok without torch" in done.stdout
