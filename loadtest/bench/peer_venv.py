"""A peer's own virtual environment, from its pins (loadtest/bench/peer_catalog.py).

Peers live apart from the stack's .venv so their dependencies (FastAPI, uvicorn, Ray, ...)
never touch the stack's pins or each other's. Created on first use and refreshed when the
requirements file changes (torch and torchvision come from the machine's package index in
about a minute).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

_STAMP = ".requirements.sha256"


class PeerUnavailable(RuntimeError):
    """A peer cannot run here; the message is the exact reason, recorded in the results."""


def _run(command: list[str], log_path: Path) -> None:
    with open(log_path, "ab") as log:
        log.write(f"$ {' '.join(command)}\n".encode())
        log.flush()
        completed = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False)
    if completed.returncode != 0:
        tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
        raise PeerUnavailable(
            f"`{' '.join(command[-4:])}` exited with {completed.returncode}: " + " | ".join(tail)
        )


def ensure_peer_venv(venv: Path, requirements: Path, log_path: Path | None = None) -> Path:
    """The peers' python, after creating or updating ``venv`` when needed."""
    log_path = log_path or venv.parent / f"{venv.name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    python = venv / "bin" / "python"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    stamp = venv / _STAMP
    if python.exists() and stamp.is_file() and stamp.read_text().strip() == digest:
        return python
    base = shutil.which("python3.11") or sys.executable
    if not python.exists():
        print(f"bench: creating {venv} for the peers (about a minute)", flush=True)
        _run([base, "-m", "venv", str(venv)], log_path)
    print(f"bench: installing {requirements.name} into {venv}", flush=True)
    _run([str(python), "-m", "pip", "install", "-q", "-r", str(requirements)], log_path)
    _run([str(python), "-m", "pip", "check"], log_path)
    stamp.write_text(digest + "\n")
    return python
