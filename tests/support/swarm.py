"""A real multi-node Docker Swarm on one machine, for tests: engines in network namespaces.

Follows the verified recipe (../shared/docs/ENVIRONMENT.md, recipes/swarm/): one dockerd per
host namespace (tests/support/netns.py), each with its own mount and UTS namespace (a
tmpfs ``/run`` and a bind-mounted ``/var/lib/docker`` keep containerd's sockets and
libnetwork's files apart), a registry on the bridge (Debian's docker-registry, TLS with a
CA made for the run and trusted through ``/etc/docker/certs.d/<address>``, so the test's
own engine can push to it too), and a swarm of three managers with a 1 s dispatcher
heartbeat. Everything lives under one short state directory; :func:`swarm_cluster` kills
the engines (with containerd, shims and containers), the registry, removes the CA, the
namespaces and links, and the directory on exit, also when the test fails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.support.netns import Host, free_subnet, leftovers, virtual_hosts

CERTS_D = Path("/etc/docker/certs.d")
VAR_LIB_DOCKER = Path("/var/lib/docker")


def run(args: Sequence[str], env: Mapping[str, str] | None = None, timeout_s: float = 300) -> str:
    result = subprocess.run(
        list(args),
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {result.returncode}: {result.stderr[-3000:]}")
    return result.stdout.strip()


@dataclass(frozen=True)
class Node:
    host: Host
    state_dir: Path

    @property
    def name(self) -> str:
        return self.host.name

    @property
    def env(self) -> dict[str, str]:
        return {"DOCKER_HOST": f"unix://{self.state_dir}/docker.sock"}

    def docker(self, *args: str, timeout_s: float = 300) -> str:
        return run(["docker", *args], self.env, timeout_s)

    def engine_pids(self) -> list[int]:
        """dockerd, containerd, shims (all in the node's network namespace) and every
        descendant: the containers' processes live in namespaces of their own."""
        return descendants(self.host.pids())

    def crash(self) -> int:
        """A power cut: SIGKILL the node's engine, containerd, shims and containers."""
        pids = self.engine_pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return len(pids)


@dataclass
class SwarmCluster:
    registry: str  # host:port every engine (and the test's own) can push to and pull from
    nodes: list[Node]
    gateway: str
    tag: str
    # Filled on exit by what_is_left(): every list empty and no registry after a clean teardown.
    left: dict = field(default_factory=dict)


def descendants(pids: Sequence[int]) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], list(pids)
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def make_registry_tls(directory: Path, address: str) -> tuple[Path, Path, Path]:
    """(CA certificate, server certificate, key) for a registry at ``address`` (an IP)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_crt = directory / "ca.key", directory / "ca.crt"
    key, csr, crt = (directory / f"registry.{ext}" for ext in ("key", "csr", "crt"))
    san = directory / "san.cnf"
    san.write_text(f"subjectAltName=IP:{address}\n")
    new_key = ("-newkey", "rsa:2048", "-nodes", "-days", "2")
    ca_subject = "/CN=vision-serving test CA"
    run(
        [
            "openssl",
            "req",
            "-x509",
            *new_key,
            "-subj",
            ca_subject,
            "-keyout",
            str(ca_key),
            "-out",
            str(ca_crt),
        ]
    )
    run(
        [
            "openssl",
            "req",
            *new_key,
            "-subj",
            f"/CN={address}",
            "-keyout",
            str(key),
            "-out",
            str(csr),
        ]
    )
    signing = ("-CA", str(ca_crt), "-CAkey", str(ca_key), "-CAcreateserial", "-extfile", str(san))
    run(["openssl", "x509", "-req", "-days", "2", *signing, "-in", str(csr), "-out", str(crt)])
    return ca_crt, crt, key


def start_registry(directory: Path, address: str, port: int) -> tuple[subprocess.Popen, Path]:
    """Debian's docker-registry (v2) on ``address:port`` with TLS; returns (process, CA)."""
    ca, crt, key = make_registry_tls(directory / "tls", address)
    config = directory / "config.yml"
    config.write_text(
        "version: 0.1\nlog: {level: warn}\n"
        f"storage: {{filesystem: {{rootdirectory: {directory / 'data'}}}}}\n"
        f"http: {{addr: '{address}:{port}', tls: {{certificate: {crt}, key: {key}}}}}\n"
    )
    log = open(directory / "registry.log", "wb")  # noqa: SIM115 (lives as long as the process)
    process = subprocess.Popen(
        ["docker-registry", "serve", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(f"https://{address}:{port}/v2/", verify=str(ca), timeout=2).ok:
                return process, ca
        except requests.RequestException:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(
                f"registry did not start: {(directory / 'registry.log').read_text()}"
            )
        time.sleep(0.1)


def start_engine(host: Host, state_dir: Path, timeout_s: float = 60) -> Node:
    """dockerd in ``host``'s network namespace with a private mount and UTS namespace."""
    for sub in ("data", "exec", "varlib"):
        (state_dir / sub).mkdir(parents=True, exist_ok=True)
    script = (
        f"hostname {host.name} && mount -t tmpfs -o mode=755 vs-run /run && "
        f"mount --bind {state_dir / 'varlib'} {VAR_LIB_DOCKER} && exec dockerd "
        f"--data-root {state_dir / 'data'} --exec-root {state_dir / 'exec'} "
        f"-H unix://{state_dir / 'docker.sock'} --pidfile {state_dir / 'docker.pid'} "
        "--group root --storage-driver overlay2 --bridge=none --iptables=true"
    )
    with open(state_dir / "dockerd.log", "wb") as log:
        subprocess.Popen(
            [
                "nsenter",
                f"--net=/run/netns/{host.name}",
                "unshare",
                "--mount",
                "--propagation",
                "slave",
                "--uts",
                "sh",
                "-c",
                script,
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    node = Node(host, state_dir)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            node.docker("info", "--format", "{{.ID}}", timeout_s=10)
            return node
        except (RuntimeError, subprocess.TimeoutExpired):
            if time.monotonic() > deadline:
                log_text = (state_dir / "dockerd.log").read_text(errors="replace")
                raise RuntimeError(
                    f"{host.name}: dockerd did not answer: {log_text[-3000:]}"
                ) from None
            time.sleep(0.25)


def form_swarm(nodes: Sequence[Node], address_pool: str) -> None:
    """Three managers (the swarm survives losing any one), 1 s heartbeat."""
    first = nodes[0]
    first.docker(
        "swarm", "init", "--advertise-addr", first.host.address,
        "--default-addr-pool", address_pool, "--default-addr-pool-mask-length", "24",
    )  # fmt: skip
    first.docker("swarm", "update", "--dispatcher-heartbeat", "1s")
    token = first.docker("swarm", "join-token", "-q", "manager")
    for node in nodes[1:]:
        node.docker(
            "swarm", "join", "--token", token, "--advertise-addr", node.host.address,
            f"{first.host.address}:2377",
        )  # fmt: skip


def what_is_left(cluster_tag: str, state_root: Path, registry: subprocess.Popen | None) -> dict:
    """Processes, mounts, namespaces, links and the registry this cluster may have left."""
    processes = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            if str(state_root) in cmdline.read_bytes().decode(errors="replace"):
                processes.append(int(cmdline.parent.name))
    mounts = [line for line in Path("/proc/self/mountinfo").read_text().splitlines()
              if str(state_root) in line]  # fmt: skip
    return {
        "processes": processes,
        "mounts": mounts,
        "namespaces_and_links": leftovers(cluster_tag),
        "registry_running": registry is not None and registry.poll() is None,
    }


@contextlib.contextmanager
def swarm_cluster(names: Sequence[str] = ("n1", "n2", "n3")) -> Iterator[SwarmCluster]:
    """Three engines in namespaces, a TLS registry, a swarm; all gone on exit (the
    teardown's findings are checked by :func:`what_is_left`, which must be all empty)."""
    state_root = Path(tempfile.mkdtemp(prefix="vsw-", dir="/tmp"))
    registry: subprocess.Popen | None = None
    certs_dir: Path | None = None
    made_var_lib_docker = not VAR_LIB_DOCKER.exists()
    nodes: list[Node] = []
    cluster: SwarmCluster | None = None
    try:
        with virtual_hosts(names) as network:
            try:
                port = 5000
                registry, ca = start_registry(state_root / "registry", network.gateway, port)
                address = f"{network.gateway}:{port}"
                certs_dir = CERTS_D / address
                certs_dir.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(ca, certs_dir / "ca.crt")
                VAR_LIB_DOCKER.mkdir(parents=True, exist_ok=True)  # a mount point only
                for index, host in enumerate(network.hosts, start=1):
                    nodes.append(start_engine(host, state_root / f"n{index}"))
                pool = free_subnet(prefix_length=20)
                form_swarm(nodes, str(pool))
                cluster = SwarmCluster(address, nodes, network.gateway, network.tag)
                yield cluster
            finally:
                killed = [pid for node in nodes for pid in node.engine_pids()]
                for node in nodes:
                    node.crash()
                wait_until_gone(killed)
                if registry is not None:
                    registry.kill()
                    registry.wait(10)
                if certs_dir is not None:
                    shutil.rmtree(certs_dir, ignore_errors=True)
                    with contextlib.suppress(OSError):
                        certs_dir.parent.rmdir()  # only if nothing else is trusted there
    finally:
        if made_var_lib_docker:
            with contextlib.suppress(OSError):
                VAR_LIB_DOCKER.rmdir()
        shutil.rmtree(state_root, ignore_errors=True)
        if cluster is not None:
            cluster.left = what_is_left(cluster.tag, state_root, registry)


def wait_until_gone(pids: Sequence[int], deadline_s: float = 20) -> None:
    """SIGKILL is delivered asynchronously: wait until the processes are reaped or zombies."""
    deadline = time.monotonic() + deadline_s
    for pid in pids:
        while time.monotonic() < deadline:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                break
            if state in ("Z", "X"):
                break
            time.sleep(0.05)
