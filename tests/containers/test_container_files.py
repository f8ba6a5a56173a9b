"""Static checks of the container files (no engine needed; part of the fast suite)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.containers.engine import IMAGES, REPO_ROOT


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)==([^\s#;]+).*", line)
        if match:
            found[match.group(1).lower()] = match.group(2)
    return found


@pytest.mark.parametrize("service", ["classifier", "detector"])
def test_model_base_torch_pins_match_the_service(service: str) -> None:
    """The shared torch layer must install exactly what the service requirements pin, or
    the service layer would reinstall torch on top of it."""
    base = pins(REPO_ROOT / "docker" / "torch-requirements.txt")
    service_pins = pins(REPO_ROOT / "services" / service / "requirements.txt")
    assert base, "docker/torch-requirements.txt pins nothing"
    for name, version in base.items():
        assert service_pins.get(name) == version, (
            f"docker/torch-requirements.txt pins {name}=={version}, "
            f"services/{service}/requirements.txt pins {service_pins.get(name)}"
        )


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


@pytest.mark.parametrize("name", list(IMAGES))
def test_dockerfile_conventions(name: str) -> None:
    dockerfile = REPO_ROOT / IMAGES[name][0]
    steps = instructions(dockerfile)
    keywords = [keyword for keyword, _ in steps]
    # The base is a build argument with a pullable default (or the model base).
    assert steps[0][0] == "ARG" and steps[1] == ("FROM", "${" + steps[0][1].split("=")[0] + "}")
    if name in ("classifier", "detector", "weights"):
        assert steps[0][1] == "MODEL_BASE_IMAGE=" + IMAGES["model-base"][1]
    elif name == "nginx":
        assert steps[0][1].startswith("BASE_IMAGE=nginx:")
    else:
        assert steps[0][1] == "BASE_IMAGE=python:3.11-slim"
    # Every file a COPY names exists (the build context is the repository root).
    for keyword, args in steps:
        if keyword == "COPY":
            for source in args.split()[:-1]:
                if not source.startswith("--"):
                    assert list(REPO_ROOT.glob(source)), (
                        f"{dockerfile}: COPY {source}: no such file"
                    )
    if name == "model-base":
        return
    assert dict(steps).get("USER") == "app"
    if name == "weights":  # a one-shot job: no server, no healthcheck
        return
    assert "HEALTHCHECK" in keywords
    entrypoint = dict(steps)["ENTRYPOINT"]
    assert isinstance(json.loads(entrypoint), list), "ENTRYPOINT must be exec form (signals)"
    if name in ("classifier", "detector", "web"):
        assert json.loads(entrypoint) == [
            "gunicorn",
            "-c",
            f"/app/services/{name}/gunicorn.conf.py",
        ]
        # requirements are installed before the code is copied (layer cache)
        first_code_copy = next(
            i
            for i, (k, a) in enumerate(steps)
            if k == "COPY" and a.startswith("services/__init__.py")
        )
        install = next(i for i, (k, a) in enumerate(steps) if k == "RUN" and "pip install -r" in a)
        assert install < first_code_copy


def test_dockerignore_is_an_allowlist() -> None:
    """The build context is the repository root: .venv (GBs) and build/ must never be sent."""
    lines = [
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    assert not any(line.startswith("!") and (".venv" in line or "build" in line) for line in lines)
