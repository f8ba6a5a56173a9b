"""Plain "hosts" for multi-node tests: network namespaces on a private bridge.

Each host is a network namespace with a veth into a bridge in the root namespace (the
test's own host, which reaches every host on the bridge address). There is no default
route in any namespace, so nothing a host sends can leave the machine. Processes run in a
host through :meth:`Host.command` (``nsenter`` into the network namespace plus a UTS
namespace of its own, so ``hostname`` -- and the services' X-Served-By -- names the host).

Names and the subnet are picked free per run; :func:`virtual_hosts` removes the namespaces,
veths and the bridge on exit, also when the test fails. Stop the processes you started in
a host before leaving the context.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass


def ip(*args: str) -> str:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


@dataclass(frozen=True)
class Host:
    name: str  # network namespace name, and the hostname its processes see
    address: str  # its address on the bridge
    veth: str  # the root-namespace end of its link: down = the host's network is cut

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside this host (same PID: nsenter and unshare exec, no fork)."""
        return [
            "nsenter",
            f"--net=/run/netns/{self.name}",
            "unshare",
            "--uts",
            "sh",
            "-c",
            f'hostname {self.name} && exec "$@"',
            "sh",
            *argv,
        ]

    def pids(self) -> list[int]:
        """Every process in this host's network namespace."""
        return [int(pid) for pid in ip("netns", "pids", self.name).split()]

    def crash(self) -> list[int]:
        """SIGKILL every process of the host, as a power cut would.

        Repeated until none is left: a gunicorn master or supervisord scheduled between two
        kills may fork a replacement for a child already killed, and that one must die too.
        """
        killed: list[int] = []
        deadline = time.monotonic() + 10
        while pids := self.pids():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: processes {pids} survive SIGKILL")
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            killed += [pid for pid in pids if pid not in killed]
            time.sleep(0.01)
        return killed

    def cut_network(self) -> None:
        ip("link", "set", self.veth, "down")

    def restore_network(self) -> None:
        ip("link", "set", self.veth, "up")


def free_subnet(prefix_length: int = 24) -> ipaddress.IPv4Network:
    """A network inside 10.200.0.0-10.249.255.255 that no route of this machine touches."""
    routes = ip("-4", "route", "show", "table", "all")
    used = [
        ipaddress.ip_network(word, strict=False)
        for line in routes.splitlines()
        for word in line.split()[:1]
        if word[0].isdigit()
    ]
    for _ in range(200):
        second = 200 + secrets.randbelow(50)
        third = secrets.randbelow(256) & ~((1 << max(0, 24 - prefix_length)) - 1)
        candidate = ipaddress.ip_network(f"10.{second}.{third}.0/{prefix_length}")
        if not any(candidate.overlaps(network) for network in used):
            return candidate
    raise RuntimeError(f"no free 10.x /{prefix_length} network for the test hosts")


@dataclass(frozen=True)
class HostNetwork:
    tag: str  # in every namespace and link name of this network
    gateway: str  # the root namespace's address on the bridge
    hosts: list[Host]


@contextlib.contextmanager
def virtual_hosts(names: Sequence[str]) -> Iterator[HostNetwork]:
    """Hosts on one bridge: ``names`` become namespaces vs<tag><name>; removed on exit."""
    tag = secrets.token_hex(2)
    subnet = free_subnet()
    bridge = f"vsbr{tag}"
    gateway = str(subnet.network_address + 1)
    hosts = [
        Host(f"vs{tag}{name}"[:15], str(subnet.network_address + 11 + index), f"vsv{tag}{index}")
        for index, name in enumerate(names)
    ]
    made: list[tuple[str, ...]] = []  # undo commands, newest last
    try:
        ip("link", "add", bridge, "type", "bridge")
        made.append(("link", "del", bridge))
        ip("addr", "add", f"{gateway}/24", "dev", bridge)
        ip("link", "set", bridge, "up")
        for host in hosts:
            ip("netns", "add", host.name)
            made.append(("netns", "del", host.name))  # takes the veth pair with it
            ip("link", "add", host.veth, "type", "veth", "peer", "name", "eth0", "netns", host.name)
            ip("link", "set", host.veth, "master", bridge, "up")
            ip("-n", host.name, "addr", "add", f"{host.address}/24", "dev", "eth0")
            ip("-n", host.name, "link", "set", "lo", "up")
            ip("-n", host.name, "link", "set", "eth0", "up")
        yield HostNetwork(tag, gateway, hosts)
    finally:
        # Whatever a failed test left running in a host dies with it.
        for host in hosts:
            with contextlib.suppress(RuntimeError):
                host.crash()
        for undo in reversed(made):
            with contextlib.suppress(RuntimeError):
                ip(*undo)
        # The kernel frees a namespace (and its veth) once its last process has gone.
        deadline = time.monotonic() + 15
        while leftovers(tag) and time.monotonic() < deadline:
            time.sleep(0.1)


def leftovers(tag: str) -> list[str]:
    """Namespaces and links whose name carries ``tag`` (empty after a clean teardown)."""
    namespaces = [line.split()[0] for line in ip("netns", "list").splitlines() if line]
    links = [line.split()[0].split("@")[0] for line in ip("-br", "link").splitlines() if line]
    prefixes = (f"vs{tag}", f"vsbr{tag}", f"vsv{tag}")
    return [name for name in namespaces + links if name.startswith(prefixes)]
