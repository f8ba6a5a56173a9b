"""Session fixtures for container tests (marker ``containers``): one private Docker engine,
the local base image and a served wheelhouse per session, all stopped by PID in teardown,
also when tests fail. See tests/containers/engine.py and docs/containers.md.

The images are built once per session, by compose itself (`docker compose up --build` in
test_compose_stack.py, or `docker compose build` through ``stack_images`` when that test did
not run): a plain `docker build` of each image as well would build everything twice.

Environment:
  CONTAINER_TEST_ENGINE_DIR  engine state directory (default: a fresh /tmp/vsd-XXXX)
  DOCKERD_KEEP_DATA=1        keep that directory's images and build cache after the session
                             (with a fixed CONTAINER_TEST_ENGINE_DIR and WHEELHOUSE_PORT the
                             next session rebuilds nothing)
  CONTAINER_TEST_CACHE_DIR   where the base image's root-fs tarball and the wheelhouse are
                             cached between sessions (default <repo>/build/docker); point it
                             at an empty directory to measure a cold run
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.launch import SHARED_DATA
from tests.containers.engine import (
    BUILD_DIR,
    IMAGES,
    REPO_ROOT,
    ComposeProject,
    Engine,
    build_base_image,
    build_wheelhouse,
    check_prerequisites,
    compose_env,
    private_engine,
    served_wheelhouse,
)

ARTIFACTS = REPO_ROOT / "test-artifacts"
CACHE_DIR = Path(os.environ.get("CONTAINER_TEST_CACHE_DIR") or BUILD_DIR)


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
    return build_base_image(docker_engine, cache_dir=CACHE_DIR)


@pytest.fixture(scope="session")
def wheelhouse_url(tmp_path_factory) -> Iterator[str]:
    """URL of the wheelhouse, served on 127.0.0.1 for the session."""
    directory = build_wheelhouse(CACHE_DIR / "wheelhouse")
    pidfile = tmp_path_factory.mktemp("wheelhouse") / "server.pid"
    with served_wheelhouse(directory, pidfile) as url:
        yield url


@pytest.fixture(scope="session")
def stack_compose_env(local_base_image: str, wheelhouse_url: str) -> dict[str, str]:
    """Variables for `docker compose` with compose.yaml + tests/containers/compose.ci.yaml:
    builds from the local base and the served wheelhouse (BASE_IMAGE, NGINX_BASE_IMAGE,
    WHEELHOUSE_URL), and SHARED_DATA for the CI override's darknet mount."""
    return {**compose_env(local_base_image, wheelhouse_url), "SHARED_DATA": str(SHARED_DATA)}


@pytest.fixture(scope="session")
def compose_build_state() -> dict[str, bool]:
    """Set ``built`` once compose has built every image in this session's engine."""
    return {"built": False}


@pytest.fixture(scope="session")
def stack_images(
    docker_engine: Engine, stack_compose_env: dict[str, str], compose_build_state: dict
) -> dict[str, str]:
    """service -> image tag of every image compose.yaml builds, built in this session by
    compose (reused from the compose stack test when it ran first)."""
    if not compose_build_state["built"]:
        project = ComposeProject(
            docker_engine, f"vs-build-{uuid.uuid4().hex[:8]}", stack_compose_env
        )
        project.compose("build", timeout_s=1800)
        compose_build_state["built"] = True
    return {service: tag for service, (_dockerfile, tag) in IMAGES.items()}


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function):
    """A failing test that uses the compose stack fails with `docker compose ps -a` and
    `docker compose logs --tail 100` in its message, so CI output explains it."""
    try:
        return (yield)
    except (Exception, pytest.fail.Exception) as error:
        stack = pyfuncitem.funcargs.get("compose_stack")
        if stack is None:
            raise
        raise AssertionError(f"{error}\n\n{stack.project.describe_state()}") from error
