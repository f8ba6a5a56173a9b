"""The Kubernetes manifests (deploy/kubernetes) render with kustomize, validate against the
Kubernetes schema, and say what compose.yaml and the images say: the same images, ports,
probe paths, variables with the same defaults, limits, user and weights job.

No cluster is needed (none can run here): `kubectl kustomize` renders each kustomization
offline and kubernetes-validate checks every object against the bundled OpenAPI schema of
one Kubernetes release, strictly (an unknown or misspelt field is an error).
"""

from __future__ import annotations

import copy
import functools
import os
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from scripts.launch import REPO_ROOT

KUBE_DIR = REPO_ROOT / "deploy" / "kubernetes"
# The newest schema kubernetes-validate 1.37.0 bundles.
SCHEMA_VERSION = "1.37.0"
OVERLAYS = sorted(path.parent.name for path in (KUBE_DIR / "overlays").glob("*/kustomization.yaml"))
TARGETS = ["base", *(f"overlays/{name}" for name in OVERLAYS)]
MODELS = ("classifier", "detector")
SERVICES = (*MODELS, "web", "nginx")
# Variables the manifests set that compose.yaml leaves to the images' defaults: each
# service's port, pinned so that no Service link variable (e.g. WEB_PORT=tcp://...) can
# ever stand in for it, and nginx's resolve interval, written out to be tuned in one place.
EXTRA_VARIABLES = {
    "classifier": {"CLASSIFIER_PORT"},
    "detector": {"DETECTOR_PORT"},
    "web": {"WEB_PORT"},
    "nginx": {"NGINX_PORT", "NGINX_RESOLVE_INTERVAL_S"},
}
DOCKERFILES = {
    "classifier": REPO_ROOT / "services/classifier/Dockerfile",
    "detector": REPO_ROOT / "services/detector/Dockerfile",
    "web": REPO_ROOT / "services/web/Dockerfile",
    "nginx": REPO_ROOT / "nginx/Dockerfile",
}
GPU = "nvidia.com/gpu"


# ---- rendering ------------------------------------------------------------------------------


def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        pytest.fail(
            "kubectl is not on PATH: these tests render deploy/kubernetes with "
            "`kubectl kustomize DIR` (kubectl bundles kustomize); install kubectl",
            pytrace=False,
        )
    return path


def kustomize(directory: Path) -> list[dict]:
    done = subprocess.run(
        [kubectl(), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"kubectl kustomize {directory} failed:\n{done.stderr}"
    objects = [item for item in yaml.safe_load_all(done.stdout) if item]
    assert objects, f"kubectl kustomize {directory} rendered nothing"
    return objects


@functools.cache
def _rendered(target: str) -> tuple[dict, ...]:
    return tuple(kustomize(KUBE_DIR / target))


def rendered(target: str) -> list[dict]:
    """The objects of one kustomization (a copy: tests may change it)."""
    return copy.deepcopy(list(_rendered(target)))


def with_components(tmp_path: Path, target: str, *components: str) -> list[dict]:
    """``target`` plus components, through a throwaway overlay like a user's own."""
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(KUBE_DIR / target, overlay)],
                "components": [os.path.relpath(KUBE_DIR / c, overlay) for c in components],
            }
        )
    )
    return kustomize(overlay)


def by_kind(objects: list[dict], kind: str) -> dict[str, dict]:
    return {item["metadata"]["name"]: item for item in objects if item["kind"] == kind}


def pod_spec(deployment: dict) -> dict:
    return deployment["spec"]["template"]["spec"]


def main_container(deployment: dict) -> dict:
    containers = pod_spec(deployment)["containers"]
    assert len(containers) == 1, f"{deployment['metadata']['name']}: one container expected"
    return containers[0]


def config_maps(objects: list[dict]) -> dict[str, dict[str, str]]:
    return {name: item.get("data", {}) for name, item in by_kind(objects, "ConfigMap").items()}


def container_env(container: dict, maps: dict[str, dict[str, str]]) -> dict[str, str]:
    """The variables a container gets (envFrom, then env), ConfigMap references resolved."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        name = source["configMapRef"]["name"]
        assert name in maps, f"{container['name']}: envFrom names a missing ConfigMap {name}"
        env.update(maps[name])
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
            continue
        if secret := item["valueFrom"].get("secretKeyRef"):
            # Only optional Secrets (the API keys): without one the stack must still start.
            assert secret.get("optional") is True, f"{item['name']}: a required Secret"
            env[item["name"]] = ""  # no Secret: unset, which the stack reads as empty
            continue
        ref = item["valueFrom"]["configMapKeyRef"]
        assert ref["key"] in maps.get(ref["name"], {}), f"{item['name']}: {ref} does not exist"
        env[item["name"]] = maps[ref["name"]][ref["key"]]
    return env


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def container_port(container: dict, port: int | str) -> int:
    """A probe's or Service's port (a number or a port name) as the container's number."""
    if isinstance(port, int):
        return port
    named = {p["name"]: p["containerPort"] for p in container.get("ports", []) if "name" in p}
    assert port in named, f"{container['name']}: no port named {port}"
    return named[port]


# ---- compose.yaml, the Dockerfiles, the images' scripts ----------------------------------


class ComposeLoader(yaml.SafeLoader):
    """PyYAML's safe loader plus compose's own tags (`!override`, `!reset`)."""


def _compose_tag(loader: ComposeLoader, _suffix: str, node: yaml.Node):
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


ComposeLoader.add_multi_constructor("!", _compose_tag)

VARIABLE = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def compose_default(value) -> str:
    """A compose value with every ``${VAR:-default}`` replaced by its default."""

    def default(match: re.Match) -> str:
        assert match.group(2) is not None, f"{value!r}: ${{{match.group(1)}}} has no default"
        return match.group(2)

    return VARIABLE.sub(default, str(value))


@functools.cache
def compose_services(filename: str = "compose.yaml") -> dict:
    with open(REPO_ROOT / filename) as file:
        return yaml.load(file, Loader=ComposeLoader)["services"]


def compose_env(service: str, filename: str = "compose.yaml") -> dict[str, str]:
    environment = compose_services(filename)[service]["environment"]
    return {name: compose_default(value) for name, value in environment.items()}


def compose_limits(service: str, filename: str = "compose.yaml") -> dict[str, str]:
    limits = compose_services(filename)[service]["deploy"]["resources"]["limits"]
    return {name: compose_default(value) for name, value in limits.items()}


def cpu_millis(quantity) -> int:
    """Kubernetes ("500m", "1", 1) or compose ("0.5") CPUs as millicores."""
    text = str(quantity)
    return int(text[:-1]) if text.endswith("m") else round(float(text) * 1000)


K8S_MEMORY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
COMPOSE_MEMORY = {"k": 2**10, "m": 2**20, "g": 2**30}  # docker's units are binary


def k8s_bytes(quantity: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([KMGT]i)", str(quantity)).groups()
    return int(number) * K8S_MEMORY[unit]


def compose_bytes(quantity: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([kmg])b?", quantity.lower()).groups()
    return int(number) * COMPOSE_MEMORY[unit]


def dockerfile(service: str) -> str:
    return DOCKERFILES[service].read_text()


def exposed_port(service: str) -> int:
    return int(re.search(r"^EXPOSE (\d+)$", dockerfile(service), re.M).group(1))


def healthcheck(service: str) -> tuple[str, int]:
    """The image HEALTHCHECK's path (docker/healthcheck.py: /readyz unless given) and its
    start period in seconds."""
    text = dockerfile(service)
    start = int(re.search(r"--start-period=(\d+)s", text).group(1))
    command = re.search(r"CMD \[(.*healthcheck\.py.*)\]", text).group(1)
    arguments = [part.strip().strip('"') for part in command.split(",")]
    after_script = arguments[arguments.index("/opt/healthcheck.py") + 1 :]
    return (after_script[2] if len(after_script) == 3 else "/readyz"), start


def image_uids() -> set[int]:
    """The uid of the `app` user every image creates (the model images inherit it)."""
    files = [REPO_ROOT / "docker/model-base.Dockerfile", DOCKERFILES["web"], DOCKERFILES["nginx"]]
    uids = {int(uid) for f in files for uid in re.findall(r"--uid (\d+)", f.read_text())}
    assert uids, "no `useradd --uid` found in the Dockerfiles"
    return uids


def weights_entrypoint() -> list[str]:
    text = (REPO_ROOT / "docker/weights.Dockerfile").read_text()
    return yaml.safe_load(re.search(r"^ENTRYPOINT (\[.*\])$", text, re.M).group(1))


def entrypoint_default(variable: str) -> str:
    text = (REPO_ROOT / "docker/nginx-entrypoint.sh").read_text()
    return re.search(r"\$\{" + variable + r":-([^}]*)\}", text).group(1)


def graceful_timeout_default() -> int:
    text = (REPO_ROOT / "services/kit/gunicorn_hooks.py").read_text()
    return int(re.search(r'"GRACEFUL_TIMEOUT", (\d+)', text).group(1))


def seconds(duration: str) -> int:
    number, unit = re.fullmatch(r"(\d+)(s|m)", duration).groups()
    return int(number) * (60 if unit == "m" else 1)


# ---- every kustomization --------------------------------------------------------------------


def test_the_overlays_are_there():
    assert {"gpu", "scale"} <= set(OVERLAYS), OVERLAYS


@pytest.mark.parametrize("target", TARGETS)
def test_every_object_validates_against_the_kubernetes_schema(target):
    errors = []
    for item in rendered(target):
        name = f"{item['kind']}/{item['metadata']['name']}"
        try:
            version = kubernetes_validate.validate(item, SCHEMA_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            errors.append(f"{name}: {'.'.join(map(str, error.path))}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            errors.append(f"{name}: {error.message}")
        else:
            assert version == SCHEMA_VERSION.rsplit(".", 1)[0]
    assert not errors, "\n".join(errors)


def test_the_schema_check_catches_mistakes():
    """The validation above is not a formality: typical slips are rejected."""
    deployment = by_kind(rendered("base"), "Deployment")["detector"]
    kubernetes_validate.validate(deployment, SCHEMA_VERSION, strict=True)

    def broken(change) -> dict:
        item = copy.deepcopy(deployment)
        change(item)
        return item

    slips = {
        "replicas as text": lambda d: d["spec"].update(replicas="two"),
        "misspelt field": lambda d: main_container(d)["readinessProbe"].update(timeout=2),
        "number as env value": lambda d: main_container(d)["env"][0].update(value=8002),
        "container without name": lambda d: main_container(d).pop("name"),
    }
    for slip, change in slips.items():
        try:
            kubernetes_validate.validate(broken(change), SCHEMA_VERSION, strict=True)
        except kubernetes_validate.ValidationError:
            continue
        pytest.fail(f"the schema check let this through: {slip}")


@pytest.mark.parametrize("target", TARGETS)
def test_images_are_composes(target):
    compose = compose_services()
    deployments = by_kind(rendered(target), "Deployment")
    for service in SERVICES:
        assert main_container(deployments[service])["image"] == compose_default(
            compose[service]["image"]
        )
    for model in MODELS:
        images = {c["image"] for c in pod_spec(deployments[model])["initContainers"]}
        assert images == {compose_default(compose["weights"]["image"])}


@pytest.mark.parametrize("target", TARGETS)
def test_ports_match_the_images_and_the_services(target):
    objects = rendered(target)
    deployments, services = by_kind(objects, "Deployment"), by_kind(objects, "Service")
    for name in SERVICES:
        container = main_container(deployments[name])
        [port] = container["ports"]
        assert port["containerPort"] == exposed_port(name)
        [service_port] = services[name]["spec"]["ports"]
        assert container_port(container, service_port["targetPort"]) == port["containerPort"]
        assert service_port["port"] == port["containerPort"]
        # The port the server binds is pinned to the port the probes and Service use.
        env = container_env(container, config_maps(objects))
        assert env[f"{name.upper()}_PORT"] == str(port["containerPort"])
    # compose publishes nginx's container port 8080.
    [published] = compose_services()["nginx"]["ports"]
    assert compose_default(published).rsplit(":", 1)[1] == str(exposed_port("nginx"))


@pytest.mark.parametrize("target", TARGETS)
def test_probes_are_the_images_healthchecks(target):
    deployments = by_kind(rendered(target), "Deployment")
    for name in SERVICES:
        container = main_container(deployments[name])
        path, start_period = healthcheck(name)
        expected = {"readinessProbe": path, "livenessProbe": "/healthz"}
        if name != "nginx":
            expected["startupProbe"] = path
        assert path == ("/healthz" if name == "nginx" else "/readyz")
        for kind, probe_path in expected.items():
            probe = container.get(kind)
            assert probe, f"{name}: no {kind}"
            assert probe["httpGet"]["path"] == probe_path, (name, kind)
            assert container_port(container, probe["httpGet"]["port"]) == exposed_port(name)
            assert probe["timeoutSeconds"] == 2, (name, kind)
        if "startupProbe" in expected:
            startup = container["startupProbe"]
            # At least the start period the image's HEALTHCHECK allows for loading.
            budget = startup["periodSeconds"] * startup["failureThreshold"]
            assert budget >= start_period, (name, budget, start_period)


@pytest.mark.parametrize("target", TARGETS)
def test_pods_run_as_the_images_unprivileged_user(target):
    [uid] = image_uids()
    for name, deployment in by_kind(rendered(target), "Deployment").items():
        spec = pod_spec(deployment)
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] == uid, name
        assert pod["runAsGroup"] == uid and pod["fsGroup"] == uid, name
        # Service links would put e.g. WEB_PORT=tcp://10.0.0.7:8003 into every pod, which
        # the services would take for their own port setting.
        assert spec["enableServiceLinks"] is False, name
        assert spec["automountServiceAccountToken"] is False, name
        volumes = {volume["name"]: volume for volume in spec["volumes"]}
        for container in spec.get("initContainers", []) + spec["containers"]:
            context = {**pod, **container.get("securityContext", {})}
            assert context["runAsUser"] == uid, (name, container["name"])
            assert context["allowPrivilegeEscalation"] is False, (name, container["name"])
            assert context["capabilities"]["drop"] == ["ALL"], (name, container["name"])
            if context.get("readOnlyRootFilesystem"):
                # gunicorn's runtime dir, nginx's config and temp files: a writable /tmp.
                mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
                assert "/tmp" in mounts and not mounts["/tmp"].get("readOnly"), name
                assert "emptyDir" in volumes[mounts["/tmp"]["name"]], name


@pytest.mark.parametrize("target", TARGETS)
def test_pods_get_time_to_finish_their_requests(target):
    stop_grace = seconds(compose_services()["classifier"]["stop_grace_period"])
    graceful = graceful_timeout_default()
    assert stop_grace > graceful
    for name, deployment in by_kind(rendered(target), "Deployment").items():
        grace = pod_spec(deployment)["terminationGracePeriodSeconds"]
        pause = 0
        pre_stop = main_container(deployment).get("lifecycle", {}).get("preStop")
        if pre_stop:
            command = pre_stop["exec"]["command"]
            assert command[0] == "sleep", (name, command)
            pause = int(command[1])
        assert grace >= stop_grace and grace > graceful + pause, (name, grace)


@pytest.mark.parametrize("target", TARGETS)
def test_every_model_has_a_disruption_budget(target):
    objects = rendered(target)
    deployments = by_kind(objects, "Deployment")
    autoscalers = {
        hpa["spec"]["scaleTargetRef"]["name"]: hpa
        for hpa in by_kind(objects, "HorizontalPodAutoscaler").values()
    }
    budgets = by_kind(objects, "PodDisruptionBudget")
    for model in MODELS:
        assert budgets[model]["spec"]["minAvailable"] == 1
    for name, budget in budgets.items():
        selector = budget["spec"]["selector"]["matchLabels"]
        [target_name] = [
            d
            for d, deployment in deployments.items()
            if matches(selector, deployment["spec"]["template"]["metadata"]["labels"])
        ]
        # A budget that every pod is needed for would block node drains for good.
        replicas = (
            autoscalers[target_name]["spec"]["minReplicas"]
            if target_name in autoscalers
            else deployments[target_name]["spec"]["replicas"]
        )
        assert replicas > budget["spec"]["minAvailable"], (name, replicas)


@pytest.mark.parametrize("target", TARGETS)
def test_services_select_their_pods_and_models_are_headless(target):
    objects = rendered(target)
    deployments = by_kind(objects, "Deployment")
    for name, service in by_kind(objects, "Service").items():
        selected = [
            d
            for d, deployment in deployments.items()
            if matches(
                service["spec"]["selector"], deployment["spec"]["template"]["metadata"]["labels"]
            )
        ]
        assert selected == [name], (name, selected)
        if name in MODELS:
            # Every ready pod's address, and only the ready ones: nginx balances over them.
            assert service["spec"]["clusterIP"] == "None", name
            assert service["spec"]["publishNotReadyAddresses"] is False, name
        else:
            assert service["spec"].get("clusterIP") != "None", name
    assert by_kind(objects, "Service")["nginx"]["spec"]["type"] == "ClusterIP"


@pytest.mark.parametrize("target", TARGETS)
def test_nginx_and_web_reach_the_services_by_name(target):
    objects = rendered(target)
    services, maps = by_kind(objects, "Service"), config_maps(objects)
    deployments = by_kind(objects, "Deployment")
    nginx_env = container_env(main_container(deployments["nginx"]), maps)
    for name in ("detector", "classifier", "web"):
        host, port = nginx_env[f"NGINX_{name.upper()}_UPSTREAM"].split(":")
        assert host == name and int(port) == services[name]["spec"]["ports"][0]["port"]
    web_env = container_env(main_container(deployments["web"]), maps)
    for model in MODELS:
        url = urlsplit(web_env[f"WEB_{model.upper()}_URL"])
        # nginx's per-service prefix (/detector/...), so the web page's calls are balanced too.
        assert (url.hostname, url.port, url.path) == (
            "nginx",
            services["nginx"]["spec"]["ports"][0]["port"],
            f"/{model}",
        )


@pytest.mark.parametrize("target", TARGETS)
def test_an_init_container_fills_the_weights_volume(target):
    entrypoint = weights_entrypoint()
    destination = entrypoint[entrypoint.index("--dest") + 1]
    objects = rendered(target)
    maps = config_maps(objects)
    weights_env = compose_env("weights")
    for model in MODELS:
        spec = pod_spec(by_kind(objects, "Deployment")[model])
        [init] = spec["initContainers"]
        assert "command" not in init, "keep the image's entrypoint (it passes --dest)"
        assert init["args"] == ["--only", model]
        init_env = container_env(init, maps)
        assert init_env, model
        for variable, value in init_env.items():
            assert weights_env.get(variable) == value, (model, variable, value)
        [container] = spec["containers"]
        model_env = container_env(container, maps)
        if model == "detector":  # the files of the model this Deployment serves
            assert init_env["DETECTOR_MODELS"] == model_env["DETECTOR_MODEL"]
        else:
            assert init_env["CLASSIFIER_ARCH"] == model_env["CLASSIFIER_ARCH"]
        [init_mount] = [m for m in init["volumeMounts"] if m["mountPath"] == destination]
        assert not init_mount.get("readOnly")
        [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == "/weights"]
        assert mount["name"] == init_mount["name"] and mount["readOnly"] is True
        [volume] = [v for v in spec["volumes"] if v["name"] == mount["name"]]
        assert set(volume) & {"emptyDir", "persistentVolumeClaim"}, volume


@pytest.mark.parametrize("target", TARGETS)
def test_every_container_has_bounded_resources(target):
    for name, deployment in by_kind(rendered(target), "Deployment").items():
        spec = pod_spec(deployment)
        main = main_container(deployment)["resources"]
        for container in spec.get("initContainers", []) + spec["containers"]:
            resources = container["resources"]
            assert resources["requests"] == resources["limits"], (name, container["name"])
            assert {"cpu", "memory"} <= set(resources["limits"]), (name, container["name"])
            # An init container never needs more than the pod is scheduled with.
            assert cpu_millis(resources["limits"]["cpu"]) <= cpu_millis(main["limits"]["cpu"])
            assert k8s_bytes(resources["limits"]["memory"]) <= k8s_bytes(main["limits"]["memory"])


# ---- the base: compose.yaml's defaults --------------------------------------------------------


def test_base_holds_the_whole_stack():
    kinds = {(item["kind"], item["metadata"]["name"]) for item in rendered("base")}
    expected = {("Deployment", s) for s in SERVICES} | {("Service", s) for s in SERVICES}
    expected |= {("PodDisruptionBudget", m) for m in MODELS}
    assert expected <= kinds
    assert {kind for kind, _ in kinds} == {
        "ConfigMap",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
    }


def test_base_environment_is_composes():
    objects = rendered("base")
    deployments, maps = by_kind(objects, "Deployment"), config_maps(objects)
    for service in SERVICES:
        env = container_env(main_container(deployments[service]), maps)
        expected = compose_env(service)
        assert {name: env.get(name) for name in expected} == expected, service
        assert set(env) - set(expected) == EXTRA_VARIABLES[service], service
    nginx_env = container_env(main_container(deployments["nginx"]), maps)
    for variable in ("NGINX_PORT", "NGINX_RESOLVE_INTERVAL_S"):
        assert nginx_env[variable] == entrypoint_default(variable)


def test_base_resources_and_replicas_are_composes():
    deployments = by_kind(rendered("base"), "Deployment")
    compose = compose_services()
    for service in SERVICES:
        limits = main_container(deployments[service])["resources"]["limits"]
        expected = compose_limits(service)
        assert cpu_millis(limits["cpu"]) == cpu_millis(expected["cpus"]), service
        assert k8s_bytes(limits["memory"]) == compose_bytes(expected["memory"]), service
        assert GPU not in limits
        replicas = compose_default(compose[service].get("deploy", {}).get("replicas", 1))
        assert deployments[service]["spec"]["replicas"] == int(replicas), service


def test_base_weights_are_an_empty_dir_per_pod():
    deployments = by_kind(rendered("base"), "Deployment")
    for model in MODELS:
        volumes = {v["name"]: v for v in pod_spec(deployments[model])["volumes"]}
        assert "emptyDir" in volumes["weights"]


# ---- overlays and components ------------------------------------------------------------------


def test_gpu_overlay_gives_each_model_pod_a_gpu_as_compose_gpu_does():
    objects = rendered("overlays/gpu")
    deployments, maps = by_kind(objects, "Deployment"), config_maps(objects)
    for model in MODELS:
        spec = pod_spec(deployments[model])
        container = main_container(deployments[model])
        resources = container["resources"]
        assert str(resources["limits"][GPU]) == "1" and str(resources["requests"][GPU]) == "1"
        compose_gpu = f"{model}-gpu0"
        expected = compose_limits(compose_gpu, "compose.gpu.yaml")
        assert cpu_millis(resources["limits"]["cpu"]) == cpu_millis(expected["cpus"])
        assert k8s_bytes(resources["limits"]["memory"]) == compose_bytes(expected["memory"])
        env = container_env(container, maps)
        for variable, value in compose_env(compose_gpu, "compose.gpu.yaml").items():
            assert env.get(variable) == value, (model, variable)
        assert env[f"{model.upper()}_DEVICE"] == "cuda"
        assert spec["nodeSelector"], model
        assert any(t["key"] == GPU and t["effect"] == "NoSchedule" for t in spec["tolerations"])
        # No spare GPU to surge into: a rollout replaces pods one at a time.
        assert deployments[model]["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 0
    for name in ("web", "nginx"):
        assert GPU not in main_container(deployments[name])["resources"]["limits"]
        assert "nodeSelector" not in pod_spec(deployments[name])


def test_scale_overlay_autoscales_the_models():
    objects = rendered("overlays/scale")
    deployments = by_kind(objects, "Deployment")
    autoscalers = by_kind(objects, "HorizontalPodAutoscaler")
    base = by_kind(rendered("base"), "Deployment")
    for model in MODELS:
        hpa = autoscalers[model]["spec"]
        assert hpa["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": model,
        }
        assert base[model]["spec"]["replicas"] < hpa["minReplicas"] <= hpa["maxReplicas"]
        # The autoscaler owns the count: `kubectl apply` must not reset it.
        assert "replicas" not in deployments[model]["spec"], model
    for name in ("web", "nginx"):
        assert deployments[name]["spec"]["replicas"] > base[name]["spec"]["replicas"]


@pytest.mark.parametrize("target", ["base", "overlays/gpu"])
def test_weights_pvc_component_shares_one_claim(tmp_path, target):
    objects = with_components(tmp_path, target, "components/weights-pvc")
    for item in objects:
        kubernetes_validate.validate(item, SCHEMA_VERSION, strict=True)
    [claim] = by_kind(objects, "PersistentVolumeClaim").values()
    # Every model pod, on any node, mounts it at once.
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    deployments = by_kind(objects, "Deployment")
    for model in MODELS:
        spec = pod_spec(deployments[model])
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert volumes["weights"] == {
            "name": "weights",
            "persistentVolumeClaim": {"claimName": claim["metadata"]["name"]},
        }
        [init] = spec["initContainers"]
        assert {m["name"] for m in init["volumeMounts"] if m["mountPath"] == "/weights"} == {
            "weights"
        }
    if target == "overlays/gpu":
        assert GPU in main_container(deployments["detector"])["resources"]["limits"]


# ---- the documentation ------------------------------------------------------------------------


DOCS = REPO_ROOT / "docs/kubernetes.md"


def docs_yaml_blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", DOCS.read_text(), re.S)


def assert_valid(objects: list[dict]) -> None:
    for item in objects:
        kubernetes_validate.validate(item, SCHEMA_VERSION, strict=True)


def test_the_docs_say_what_was_checked_and_name_real_directories():
    text = DOCS.read_text()
    assert "NOT been run on a live cluster" in text
    directories = set(re.findall(r"-k (deploy/kubernetes/[\w/.-]+)", text))
    assert {"deploy/kubernetes/overlays/gpu", "deploy/kubernetes/overlays/scale"} <= directories
    for directory in directories:
        assert (REPO_ROOT / directory / "kustomization.yaml").is_file(), directory


def test_the_documented_overlays_render_and_validate(tmp_path):
    """Each kustomization of the docs (written for a folder beside deploy/) as a user's own."""
    blocks = [b for b in docs_yaml_blocks() if "kind: Kustomization" in b]
    assert len(blocks) >= 3
    for number, block in enumerate(blocks):
        overlay = tmp_path / f"overlay{number}"
        overlay.mkdir()
        relative = os.path.relpath(KUBE_DIR, overlay)
        (overlay / "kustomization.yaml").write_text(block.replace("../deploy/kubernetes", relative))
        objects = kustomize(overlay)
        assert_valid(objects)
        if "images:" in block:  # every image of the stack moved to the registry
            for deployment in by_kind(objects, "Deployment").values():
                spec = pod_spec(deployment)
                for container in spec.get("initContainers", []) + spec["containers"]:
                    assert container["image"].startswith("registry.example.com/"), container


def test_the_documented_public_entries_fit_the_nginx_service(tmp_path):
    """The LoadBalancer patch and the Ingress of the docs, on the base, as the docs say."""
    items = [item for block in docs_yaml_blocks() for item in yaml.safe_load_all(block) if item]
    [service] = [i for i in items if i.get("kind") == "Service"]
    [ingress] = [i for i in items if i.get("kind") == "Ingress"]
    assert_valid([service, ingress])
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "service.yaml").write_text(yaml.safe_dump(service))
    (overlay / "ingress.yaml").write_text(yaml.safe_dump(ingress))
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "resources": [os.path.relpath(KUBE_DIR / "base", overlay), "ingress.yaml"],
                "patches": [{"path": "service.yaml"}],
            }
        )
    )
    objects = kustomize(overlay)
    assert_valid(objects)
    nginx = by_kind(objects, "Service")["nginx"]
    assert nginx["spec"]["type"] == "LoadBalancer"
    assert [p["port"] for p in nginx["spec"]["ports"]] == [exposed_port("nginx")]
    [rule] = by_kind(objects, "Ingress")[ingress["metadata"]["name"]]["spec"]["rules"]
    [path] = rule["http"]["paths"]
    backend = path["backend"]["service"]
    assert backend["name"] == "nginx"
    assert backend["port"]["name"] in {p["name"] for p in nginx["spec"]["ports"]}
    # The controller must pass photos as large as the stack takes.
    body = ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"]
    assert body == f"{config_maps(objects)[stack_config_name(objects)]['MAX_BODY_MB']}m"


def stack_config_name(objects: list[dict]) -> str:
    [name] = [n for n in config_maps(objects) if n.startswith("stack-config-")]
    return name
