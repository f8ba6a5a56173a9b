"""deploy/swarm/stack.yaml stays in step with compose.yaml, and says what Swarm needs.

No engine: `docker stack config` (the docker CLI, offline) renders the stack files with
their variables resolved, and the compose plugin renders compose.yaml. Every service,
variable, default, image and limit must agree; the differences Swarm needs are listed here
(and explained in docs/multi-node.md), so a new compose variable cannot be forgotten.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import yaml

from scripts.launch import REPO_ROOT
from tests.containers.test_compose_config import compose

REGISTRY = "registry.example.com:5000"
STACK = "deploy/swarm/stack.yaml"
GPU_STACK = "deploy/swarm/stack.gpu.yaml"
CI_STACK = "tests/containers/stack.ci.yaml"
BUILD_ONLY = {"model-base"}  # compose builds it; nothing runs it
MODEL_SERVICES = ("detector", "classifier")
# Variables a Swarm service has beyond compose's, and values that differ on purpose.
EXTRA_VARIABLES = {
    "nginx": {"NGINX_RESOLVE_INTERVAL_S", "NGINX_CONNECT_TIMEOUT_S", "NGINX_READ_TIMEOUT_S"},
}
DIFFERENT_VALUES = {
    # tasks.<service>: every healthy task's address (dnsrr), not the service name.
    ("nginx", "NGINX_DETECTOR_UPSTREAM"): "tasks.detector:8002",
    ("nginx", "NGINX_CLASSIFIER_UPSTREAM"): "tasks.classifier:8001",
    ("nginx", "NGINX_WEB_UPSTREAM"): "tasks.web:8003",
}
# web runs twice on Swarm so a dead node does not take the demo page with it.
DIFFERENT_REPLICAS = {"web": 2}


def stack_config(*files: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), **(env or {})}
    args = [arg for file in files for arg in ("-c", file)]
    return subprocess.run(
        ["docker", "stack", "config", *args],
        cwd=REPO_ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def render_stack(*files: str, **env: str) -> dict:
    done = stack_config(*files, env={"REGISTRY": REGISTRY, **env})
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)["services"]


@pytest.fixture(scope="module")
def stack() -> dict:
    return render_stack(STACK)


@pytest.fixture(scope="module")
def compose_services() -> dict:
    done = compose("-f", "compose.yaml", "config", "--format", "json")
    assert done.returncode == 0, done.stderr
    services = json.loads(done.stdout)["services"]
    return {name: s for name, s in services.items() if name not in BUILD_ONLY}


def test_the_deploy_script_needs_a_registry():
    env = {"PATH": os.environ["PATH"], "DOCKER_HOST": "unix:///nonexistent.sock"}
    for command in ("push", "deploy"):
        done = subprocess.run(
            ["scripts/swarm.sh", command], cwd=REPO_ROOT, env=env, capture_output=True, text=True
        )
        assert done.returncode == 2 and "set REGISTRY" in done.stderr, command


def test_same_services_and_images_as_compose(stack, compose_services):
    assert set(stack) == set(compose_services)
    for name, service in stack.items():
        assert service["image"] == f"{REGISTRY}/{compose_services[name]['image']}", name


def test_same_variables_and_defaults_as_compose(stack, compose_services):
    for name, service in compose_services.items():
        expected = {
            key: DIFFERENT_VALUES.get((name, key), str(value))
            for key, value in service.get("environment", {}).items()
        }
        actual = stack[name].get("environment", {})
        assert set(actual) - set(expected) == EXTRA_VARIABLES.get(name, set()), name
        assert {key: actual[key] for key in expected} == expected, name


def test_same_limits_and_replicas_as_compose(stack, compose_services):
    for name, service in compose_services.items():
        limits = service.get("deploy", {}).get("resources", {}).get("limits", {})
        swarm_limits = stack[name]["deploy"].get("resources", {}).get("limits", {})
        assert set(swarm_limits) == set(limits), name
        if not limits:
            continue
        assert float(swarm_limits["cpus"]) == float(limits["cpus"]), name
        assert int(swarm_limits["memory"]) == int(limits["memory"]), name
        if name in ("weights", "nginx"):
            continue  # a per-node job and a per-node proxy: no replica count
        replicas = service.get("deploy", {}).get("replicas", 1)
        assert stack[name]["deploy"]["replicas"] == DIFFERENT_REPLICAS.get(name, replicas), name


def test_what_swarm_needs_differently(stack):
    for name, service in stack.items():
        if name != "weights":
            assert service["deploy"]["endpoint_mode"] == "dnsrr", name  # no IPVS needed
            assert service["init"] is True, name
    for name in (*MODEL_SERVICES, "web"):
        deploy = stack[name]["deploy"]
        assert deploy["update_config"]["order"] == "start-first", name
        assert deploy["update_config"]["failure_action"] == "rollback", name
        assert deploy["restart_policy"]["condition"] == "any", name
        assert {"spread": "node.id"} in deploy["placement"]["preferences"], name
        assert "{{.Node.Hostname}}" in stack[name]["hostname"], name  # X-Served-By: the node
    for name in MODEL_SERVICES:
        mounts = {m["target"]: m for m in stack[name]["volumes"]}
        assert mounts["/weights"]["source"] == "weights" and mounts["/weights"]["read_only"]
        assert stack[name]["stop_grace_period"] == "40s"
    assert stack["weights"]["deploy"]["mode"] == "global-job"  # fills every node's volume
    nginx = stack["nginx"]
    assert nginx["deploy"]["mode"] == "global"  # no node is the one way in
    assert nginx["ports"] == [
        {"mode": "host", "target": 8080, "published": 8080, "protocol": "tcp"}
    ]
    variables = {"STACK_PORT": "9090", "TAG": "v2", "DETECTOR_REPLICAS": "5"}
    changed = render_stack(STACK, **variables)
    assert changed["nginx"]["ports"][0]["published"] == 9090
    assert changed["detector"]["image"] == f"{REGISTRY}/vision-serving/detector:v2"
    assert changed["detector"]["deploy"]["replicas"] == 5


def test_gpu_override_reserves_one_gpu_per_task_with_compose_gpu_values():
    merged = render_stack(STACK, GPU_STACK)
    done = compose("-f", "compose.yaml", "-f", "compose.gpu.yaml", "config", "--format", "json")
    assert done.returncode == 0, done.stderr
    compose_gpu = json.loads(done.stdout)["services"]
    for name in MODEL_SERVICES:
        deploy = merged[name]["deploy"]
        assert deploy["resources"]["reservations"]["generic_resources"] == [
            {"discrete_resource_spec": {"kind": "NVIDIA-GPU", "value": 1}}
        ]
        assert "node.labels.vision-serving.gpu == true" in deploy["placement"]["constraints"]
        gpu_env = compose_gpu[f"{name}-gpu0"]["environment"]
        prefix = name.upper()
        for key in ("DEVICE", "FP16", "MAX_BATCH", "TORCH_THREADS"):
            assert merged[name]["environment"][f"{prefix}_{key}"] == gpu_env[f"{prefix}_{key}"]
        limits = compose_gpu[f"{name}-gpu0"]["deploy"]["resources"]["limits"]
        assert float(deploy["resources"]["limits"]["cpus"]) == float(limits["cpus"])


def test_ci_override_merges():
    merged = render_stack(STACK, CI_STACK, SHARED_DATA="/data")
    assert merged["detector"]["environment"]["DETECTOR_MODEL"] == "yolov3-tiny"
    assert {m["target"] for m in merged["weights"]["volumes"]} == {"/weights", "/darknet"}
    with open(REPO_ROOT / STACK) as file:
        assert "/work" not in file.read()  # no machine paths in what users deploy
