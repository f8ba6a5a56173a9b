"""Session fixtures for container tests (marker ``containers``): one private Docker engine,
the local base image and a served wheelhouse per session, all stopped by PID in teardown,
also when tests fail. See tests/containers/engine.py and docs/containers.md.

Environment:
  CONTAINER_TEST_ENGINE_DIR  engine state directory (default: a fresh /tmp/vsd-XXXX)
  DOCKERD_KEEP_DATA=1        keep that directory's images and build cache after the session
                             (with a fixed CONTAINER_TEST_ENGINE_DIR and WHEELHOUSE_PORT the
                             next session rebuilds nothing)
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.containers.engine import (
    REPO_ROOT,
    Engine,
    build_base_image,
    build_images,
    build_wheelhouse,
    check_prerequisites,
    compose_env,
    local_build_args,
    private_engine,
    served_wheelhouse,
    wheelhouse_build_args,
)

ARTIFACTS = REPO_ROOT / "test-artifacts"


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[Engine]:
    missing = check_prerequisites()
    if missing:
        pytest.fail("container tests need: " + ", ".join(missing))
    configured = os.environ.get("CONTAINER_TEST_ENGINE_DIR")
    state_dir = (
        Path(configured) if configured else Path(tempfile.mkdtemp(prefix="vsd-", dir="/tmp"))
    )
    with private_engine(state_dir, keep_data=os.environ.get("DOCKERD_KEEP_DATA") == "1") as engine:
        yield engine


@pytest.fixture(scope="session")
def local_base_image(docker_engine: Engine) -> str:
    """local/bookworm-python:3.11 (debootstrap), since no registry can be reached."""
    return build_base_image(docker_engine)


@pytest.fixture(scope="session")
def wheelhouse_url(tmp_path_factory) -> Iterator[str]:
    """URL of the wheelhouse, served on 127.0.0.1 for the session."""
    directory = build_wheelhouse()
    pidfile = tmp_path_factory.mktemp("wheelhouse") / "server.pid"
    with served_wheelhouse(directory, pidfile) as url:
        yield url


@pytest.fixture(scope="session")
def image_build_args(local_base_image: str, wheelhouse_url: str) -> dict[str, str]:
    """Build args for every Dockerfile (docker build --build-arg / compose's environment)."""
    return {**local_build_args(local_base_image), **wheelhouse_build_args(wheelhouse_url)}


@pytest.fixture(scope="session")
def stack_compose_env(local_base_image: str, wheelhouse_url: str) -> dict[str, str]:
    """Environment for `docker compose` so that it builds like image_build_args
    (BASE_IMAGE, NGINX_BASE_IMAGE, WHEELHOUSE_URL)."""
    return compose_env(local_base_image, wheelhouse_url)


@pytest.fixture(scope="session")
def built_images(docker_engine: Engine, image_build_args: dict[str, str]) -> dict[str, float]:
    """Every image built once with plain `docker build`, in order; the seconds each took are
    written to test-artifacts/container-build-times.json for the CI budget."""
    times = build_images(docker_engine, image_build_args)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "container-build-times.json").write_text(json.dumps(times, indent=2) + "\n")
    return times
