"""The stack over plain hosts, the original write-up's way (docs/multi-node.md, "Plain hosts").

Hosts B and C are network namespaces on a private bridge; each runs the model replicas as a
user would (`STACK_ROLE=models make run`, here `python -m scripts.run_stack`). Host A (this
test's own namespace) runs nginx and web (`STACK_ROLE=edge`) with upstream lists naming
B and C. Checked: both hosts answer; a host whose network is cut under load, and a host
whose processes are all SIGKILLed under load, cost no client a failed request (nginx
retries elsewhere); a restored host is used again. Figures go to stdout and
test-artifacts/plain-hosts.json.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from scripts.launch import Server, free_port, start_server, wait_for_http
from scripts.local_stack import ROOM_FOR_EVERY_CLIENT, model_env
from tests.support.load import ClosedLoopLoad
from tests.support.netns import Host, leftovers, virtual_hosts

pytestmark = pytest.mark.slow

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PORTS = {"detector": 8002, "classifier": 8001}
# Failover tuning for the test (docs/multi-node.md explains the defaults): a request stuck on
# a cut host is retried after NGINX_READ_TIMEOUT_S.
NGINX_TUNING = {
    "NGINX_READ_TIMEOUT_S": "8",
    "NGINX_CONNECT_TIMEOUT_S": "1",
    "NGINX_FAIL_TIMEOUT_S": "3",
}
CLIENTS = 8


@dataclass
class PlainHosts:
    url: str
    model_hosts: dict[str, Host]  # hostname -> host
    replicas: dict[str, Server]  # hostname -> its run_stack (supervisord) process
    record: dict


def run_stack_command() -> list[str]:
    return [sys.executable, "-m", "scripts.run_stack"]


def served_host(served_by: str) -> str:
    """X-Served-By is ``<hostname>:<port>/<pid>``."""
    return served_by.split(":", 1)[0]


@pytest.fixture(scope="module")
def plain_hosts(stack_weights_dir, tmp_path_factory) -> Iterator[PlainHosts]:
    tmp = tmp_path_factory.mktemp("plain-hosts")
    started: list[Server] = []
    with virtual_hosts(["hostb", "hostc"]) as network:
        try:
            replicas = {}
            for host in network.hosts:
                env = {
                    **model_env(stack_weights_dir),
                    **ROOM_FOR_EVERY_CLIENT,
                    "STACK_ROLE": "models",
                    "STACK_BIND_HOST": "0.0.0.0",
                    "STACK_RUN_DIR": str(tmp / host.name),
                    "DETECTOR_REPLICAS": "1",
                    "DETECTOR_PORT_BASE": str(PORTS["detector"]),
                    "CLASSIFIER_REPLICAS": "1",
                    "CLASSIFIER_PORT_BASE": str(PORTS["classifier"]),
                }
                server = start_server(
                    host.command(run_stack_command()),
                    f"http://{host.address}:{PORTS['detector']}",
                    tmp / f"{host.name}.log",
                    env=env,
                )
                started.append(server)
                replicas[host.name] = server
            public = free_port()
            upstream = {
                f"NGINX_{service.upper()}_UPSTREAM": ",".join(
                    f"{host.address}:{port}" for host in network.hosts
                )
                for service, port in PORTS.items()
            }
            edge = start_server(
                run_stack_command(),
                f"http://127.0.0.1:{public}",
                tmp / "hosta.log",
                env={
                    "STACK_ROLE": "edge",
                    "STACK_PORT": str(public),
                    "WEB_PORT": str(free_port()),
                    "STACK_RUN_DIR": str(tmp / "hosta"),
                    "NGINX_RESOLVE_INTERVAL_S": "1",
                    **upstream,
                    **NGINX_TUNING,
                },
                ready_path="/healthz",
            )
            started.append(edge)
            ready = [
                (server, f"http://{host.address}:{port}/readyz")
                for host, server in zip(network.hosts, replicas.values(), strict=True)
                for port in PORTS.values()
            ]
            ready += [(edge, f"{edge.url}/{name}/readyz") for name in ("web", *PORTS)]
            for server, url in ready:
                try:
                    wait_for_http(url, 240, server.process)
                except (RuntimeError, TimeoutError) as error:
                    raise RuntimeError(f"{error}\n--- log ---\n{server.log()[-3000:]}") from None
            # A replica that answered 503 while loading (wait_ready's first look through
            # nginx) sits out NGINX_FAIL_TIMEOUT_S: wait until nginx uses both hosts again.
            wait_until_both_hosts_answer(edge.url, {host.name for host in network.hosts})
            yield PlainHosts(
                edge.url,
                {host.name: host for host in network.hosts},
                replicas,
                {"upstreams": upstream, "nginx": NGINX_TUNING, "clients": CLIENTS},
            )
        finally:
            for server in reversed(started):
                server.stop()
    assert leftovers(network.tag) == []


def wait_until_both_hosts_answer(url: str, names: set[str], deadline_s: float = 30) -> None:
    deadline = time.monotonic() + deadline_s
    seen: dict[str, set[str]] = {
        path: set() for path in ("/detector/v1/models", "/classifier/v1/models")
    }
    while any(hosts != names for hosts in seen.values()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"through nginx after {deadline_s}s: {seen}")
        for path, hosts in seen.items():
            response = requests.get(url + path, timeout=10)
            if response.ok:
                hosts.add(served_host(response.headers["X-Served-By"]))
        time.sleep(0.2)


def post(url: str, photo: bytes) -> requests.Response:
    return requests.post(url, files={"image": ("p.jpg", photo, "image/jpeg")}, timeout=60)


def test_requests_are_answered_on_both_hosts(plain_hosts, images_dir):
    photo = (images_dir / "dog.jpg").read_bytes()
    for endpoint in ("/v1/detect", "/v1/classify"):
        hosts = set()
        for _ in range(8):
            response = post(plain_hosts.url + endpoint, photo)
            assert response.status_code == 200, response.text
            hosts.add(served_host(response.headers["X-Served-By"]))
        assert hosts == set(plain_hosts.model_hosts), (endpoint, hosts)


def summarise(load: ClosedLoopLoad, event_at: float) -> dict:
    after = [o for o in load.outcomes if o.started + o.seconds >= event_at]
    return {
        "answered": len(load.outcomes),
        "failed": len(load.failures()),
        "answered_after_event": len(after),
        "slowest_after_event_s": round(max((o.seconds for o in after), default=0), 2),
        "served_by_hosts": sorted({served_host(o.served_by) for o in load.outcomes}),
    }


def wait_until_served_by(load: ClosedLoopLoad, host: str, since: float, deadline_s: float) -> float:
    """Seconds from ``since`` until a request started after it was answered by ``host``."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        hits = [
            o.started + o.seconds
            for o in list(load.outcomes)
            if o.started >= since and served_host(o.served_by) == host
        ]
        if hits:
            return round(min(hits) - since, 2)
        time.sleep(0.1)
    raise AssertionError(f"{host} answered nothing within {deadline_s}s")


def test_a_host_whose_network_is_cut_costs_no_request(plain_hosts, images_dir):
    photo = (images_dir / "person.jpg").read_bytes()
    victim = plain_hosts.model_hosts[sorted(plain_hosts.model_hosts)[1]]
    read_timeout = float(NGINX_TUNING["NGINX_READ_TIMEOUT_S"])
    with ClosedLoopLoad(plain_hosts.url + "/v1/detect", photo, clients=CLIENTS) as load:
        load.wait_for_answers(2 * CLIENTS)
        cut_at = time.monotonic()
        victim.cut_network()
        try:
            # Long enough for requests stuck on the cut host to time out and be retried.
            time.sleep(read_timeout + 4)
            answered_during_cut = len(load.outcomes)
        finally:
            victim.restore_network()
        restored_at = time.monotonic()
        back_after = wait_until_served_by(load, victim.name, restored_at, 60)
        summary = summarise(load, cut_at)
    summary["answered_while_cut"] = answered_during_cut
    summary["victim_answering_again_after_restore_s"] = back_after
    plain_hosts.record["network_cut"] = summary
    print("\nnetwork cut:", json.dumps(summary))
    assert summary["failed"] == 0, load.failures()[:3]
    assert summary["answered_after_event"] > CLIENTS  # the survivor kept serving


def test_a_host_whose_processes_are_killed_costs_no_request(plain_hosts, images_dir):
    photo = (images_dir / "kite.jpg").read_bytes()
    name = sorted(plain_hosts.model_hosts)[1]
    survivor = sorted(plain_hosts.model_hosts)[0]
    with ClosedLoopLoad(plain_hosts.url + "/v1/detect", photo, clients=CLIENTS) as load:
        load.wait_for_answers(2 * CLIENTS)
        killed_at = time.monotonic()
        killed = plain_hosts.model_hosts[name].crash()  # every process of the host
        count = len(load.outcomes)
        load.wait_for_answers(count + 4 * CLIENTS)
        # A fast survivor can give those answers within a second; wait for requests sent
        # after the kill settled too, so `late` is never empty by timing alone.
        load.wait_for_answers_started_after(killed_at + 1, CLIENTS)
        summary = summarise(load, killed_at)
        late = [o for o in load.outcomes if o.started > killed_at + 1]
    summary["processes_killed"] = len(killed)
    plain_hosts.record["processes_killed"] = summary
    print("\nprocesses killed:", json.dumps(summary))
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "plain-hosts.json").write_text(json.dumps(plain_hosts.record, indent=2))
    assert summary["failed"] == 0, load.failures()[:3]
    assert late and {served_host(o.served_by) for o in late} == {survivor}
