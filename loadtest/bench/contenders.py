"""The servers the benchmark compares, each started on free loopback ports and stopped after.

Every contender serves the same weights files from one weights directory and gets the same
CPU budget: the machine's two cores, with worker processes x torch threads = 2 wherever the
server has such knobs (the baseline has none: that is part of what it shows). Each context
manager yields an :class:`Endpoint`: how to send one photo and how to check the answer.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import requests

from loadtest.bench.client import CheckFn, SendFn
from loadtest.bench.peer_venv import PeerUnavailable
from loadtest.checks import check_classification, check_detection, describe_error
from loadtest.photos import Photo
from scripts.launch import free_port, start_server, wait_for_http
from services.detector.settings import DEFAULT_MAX_BATCH as DETECTOR_MAX_BATCH
from services.kit.settings import DEFAULT_MAX_BATCH as SERVING_DEFAULT_MAX_BATCH

REPO_ROOT = Path(__file__).resolve().parents[2]
PEERS_DIR = Path(__file__).resolve().parent / "peers"
TOP_K = 5
REQUEST_TIMEOUT_S = 300
# The stack's dynamic batching (CLASSIFIER_MAX_BATCH / _BATCH_WAIT_MS defaults); the peers
# that batch get the same limits, so the comparison is about the servers, not the knobs.
MAX_BATCH = SERVING_DEFAULT_MAX_BATCH
BATCH_WAIT_MS = 2


@dataclass
class Endpoint:
    url: str
    send: SendFn
    check: CheckFn
    settings: dict[str, str] = field(default_factory=dict)


# ---- answer checks -----------------------------------------------------------------------


def _json(response: requests.Response) -> tuple[object | None, str | None]:
    if response.status_code != 200:
        try:
            body = response.json()
        except ValueError:
            body = None
        return None, describe_error(response.status_code, body, response.text)
    try:
        return response.json(), None
    except ValueError:
        return None, "answer is not JSON"


def check_stack_classification(response: requests.Response, photo: Photo) -> str | None:
    body, problem = _json(response)
    if problem:
        return problem
    problems = check_classification(body, photo, TOP_K)
    return "; ".join(problems[:2]) if problems else None


def check_stack_detection(response: requests.Response, photo: Photo) -> str | None:
    body, problem = _json(response)
    if problem:
        return problem
    problems = check_detection(body, photo)
    return "; ".join(problems[:2]) if problems else None


def check_top5_list(response: requests.Response, _photo: Photo) -> str | None:
    """``{"predictions": [{"label", "confidence"}, ...5]}`` (baseline, LitServe)."""
    body, problem = _json(response)
    if problem:
        return problem
    predictions = body.get("predictions") if isinstance(body, dict) else None
    if not isinstance(predictions, list) or len(predictions) != TOP_K:
        return "no top-5 'predictions' list"
    confidences = [p.get("confidence") for p in predictions if isinstance(p, dict)]
    if len(confidences) != TOP_K or not all(
        isinstance(c, float | int) and 0 <= c <= 1 for c in confidences
    ):
        return "confidences missing or outside [0, 1]"
    if confidences != sorted(confidences, reverse=True):
        return "predictions not sorted by confidence"
    return None


def check_torchserve_top5(response: requests.Response, _photo: Photo) -> str | None:
    """TorchServe's image_classifier handler: ``{"<label>": probability, ...5}``."""
    body, problem = _json(response)
    if problem:
        return problem
    if not isinstance(body, dict) or len(body) != TOP_K:
        return "not a {label: probability} object of 5 entries"
    if not all(isinstance(v, float | int) and 0 <= v <= 1 for v in body.values()):
        return "probabilities outside [0, 1]"
    return None


def check_png(response: requests.Response, _photo: Photo) -> str | None:
    if response.status_code != 200:
        return describe_error(response.status_code, None, response.text[:200])
    if not response.content.startswith(b"\x89PNG\r\n\x1a\n"):
        return f"not a PNG ({response.headers.get('Content-Type')})"
    return None


# ---- senders -----------------------------------------------------------------------------


def multipart_sender(url: str, field_name: str, params: dict | None = None) -> SendFn:
    def send(session: requests.Session, photo: Photo) -> requests.Response:
        return session.post(
            url,
            params=params,
            files={field_name: (photo.name, photo.data, photo.mimetype)},
            headers={"Accept": "application/json"},
            timeout=REQUEST_TIMEOUT_S,
        )

    return send


# ---- the contenders ----------------------------------------------------------------------


@contextlib.contextmanager
def stack(
    weights_dir: Path, detector_model: str, work_dir: Path, replicas: int = 2, compiled=False
) -> Iterator[dict[str, Endpoint]]:
    """The stack as ``make run`` starts it (nginx, N replicas per model, web), on free ports."""
    from scripts.local_stack import ROOM_FOR_EVERY_CLIENT, run_stack

    # The peers queue every request they accept; the stack admits all the bench's clients
    # too, so the comparison is of speed, not of admission control, which `make
    # bench-overload` measures on its own.
    env = {"DETECTOR_MODEL": detector_model, **ROOM_FOR_EVERY_CLIENT}
    if compiled:
        env.update(CLASSIFIER_COMPILE="1", DETECTOR_COMPILE="1")
    # Both replicas of both models build their 4 graphs at once: about two minutes here with
    # a cold cache, more on a slower or busier machine.
    deadline_s = 1200 if compiled else 240
    with run_stack(
        work_dir, weights_dir.resolve(), replicas=replicas, env=env, deadline_s=deadline_s
    ) as running:
        settings = {
            "processes": f"nginx (1 worker) -> {replicas} classifier + {replicas} detector "
            "replicas, gunicorn (1 gthread worker, 16 HTTP threads each), web idle",
            "torch threads": "1 per replica (CLASSIFIER_/DETECTOR_TORCH_THREADS=1)",
            "model": "channels_last, folded batch norms, fp32"
            + (
                ", torch.compile (*_COMPILE=1, a static graph per batch size 1, 2, 4, 8)"
                if compiled
                else ", eager"
            ),
            "input": "classifier: draft JPEG decode, only the centre crop resampled "
            "(*_DRAFT_DECODE=1, the default); detector: draft JPEG decode covering the "
            "letterbox (JSON answers)",
            "admission": f"{ROOM_FOR_EVERY_CLIENT['CLASSIFIER_QUEUE_LIMIT']} requests per "
            "replica (*_QUEUE_LIMIT): every client admitted",
            "batching": f"dynamic, up to {MAX_BATCH} images (detector "
            f"{DETECTOR_MAX_BATCH}), {BATCH_WAIT_MS} ms wait (*_MAX_BATCH, *_BATCH_WAIT_MS "
            "defaults)",
            "request": "POST /v1/classify?top_k=5, POST /v1/detect, multipart field image",
        }
        yield {
            "classify": Endpoint(
                running.url,
                multipart_sender(f"{running.url}/v1/classify", "image", {"top_k": TOP_K}),
                check_stack_classification,
                settings,
            ),
            "detect": Endpoint(
                running.url,
                multipart_sender(f"{running.url}/v1/detect", "image"),
                check_stack_detection,
                settings,
            ),
        }


@contextlib.contextmanager
def external_stack(url: str) -> Iterator[dict[str, Endpoint]]:
    """A stack that is already running (``make run``), as it is configured."""
    wait_for_http(url.rstrip("/") + "/healthz", 10)
    settings = {"processes": f"already running at {url} (its own settings)"}
    yield {
        "classify": Endpoint(
            url,
            multipart_sender(f"{url}/v1/classify", "image", {"top_k": TOP_K}),
            check_stack_classification,
            settings,
        ),
        "detect": Endpoint(
            url, multipart_sender(f"{url}/v1/detect", "image"), check_stack_detection, settings
        ),
    }


@contextlib.contextmanager
def baseline(
    task: str, weights_dir: Path, detector_model: str, work_dir: Path
) -> Iterator[Endpoint]:
    """The original write-up's Flask server for one endpoint (loadtest/bench/baseline)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "loadtest.bench.baseline.app",
        task,
        "--port",
        str(port),
        "--weights-dir",
        str(weights_dir.resolve()),
        "--detector-model",
        detector_model,
    ]
    server = start_server(command, url, work_dir / f"baseline-{task}.log", ready_path="/health")
    try:
        server.wait_ready(120)
        yield Endpoint(
            url,
            multipart_sender(f"{url}/predict", "file"),
            check_top5_list if task == "classify" else check_png,
            {
                "processes": "1 Flask development server (threaded), one per endpoint",
                "torch threads": "torch's default (2 here) in every request thread",
                "batching": "none; the model is built and its weights read on every request",
                "request": "POST /predict, multipart field file; the detector answers a PNG "
                "drawn with matplotlib",
            },
        )
    finally:
        server.stop()


@contextlib.contextmanager
def litserve(
    peer_python: Path, weights_dir: Path, work_dir: Path, workers: int = 2
) -> Iterator[Endpoint]:
    """LitServe 0.2.19 with loadtest/bench/peers/litserve_server.py."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        str(peer_python),
        str(PEERS_DIR / "litserve_server.py"),
        "--weights",
        str((weights_dir / "resnet18.pth").resolve()),
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--threads",
        "1",
        "--max-batch",
        str(MAX_BATCH),
        "--batch-timeout-s",
        str(BATCH_WAIT_MS / 1000),
    ]
    server = start_server(command, url, work_dir / "litserve.log", ready_path="/health")
    try:
        server.wait_ready(180)
        yield Endpoint(
            url,
            multipart_sender(f"{url}/predict", "image"),
            check_top5_list,
            {
                "processes": f"LitServer(accelerator='cpu', workers_per_device={workers}): "
                f"{workers} inference workers + {workers} uvicorn API servers "
                "(num_api_servers default = workers)",
                "torch threads": "1 per worker (torch.set_num_threads in setup)",
                "batching": f"max_batch_size={MAX_BATCH}, batch_timeout={BATCH_WAIT_MS / 1000}",
                "request": "POST /predict, multipart field image",
            },
        )
    finally:
        server.stop()


def _torchserve_archive(peer_python: Path, weights_dir: Path, store: Path) -> None:
    from torchvision.models import ResNet18_Weights  # names only: no download

    store.mkdir(parents=True, exist_ok=True)
    index = store.parent / "index_to_name.json"
    categories = ResNet18_Weights.DEFAULT.meta["categories"]
    index.write_text(json.dumps({str(i): name for i, name in enumerate(categories)}))
    archiver = peer_python.parent / "torch-model-archiver"
    command = [
        str(archiver),
        "--model-name",
        "resnet18",
        "--version",
        "1.0",
        "--model-file",
        str(PEERS_DIR / "torchserve_model.py"),
        "--serialized-file",
        str((weights_dir / "resnet18.pth").resolve()),
        "--handler",
        "image_classifier",
        "--extra-files",
        str(index),
        "--export-path",
        str(store),
        "--force",
    ]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise PeerUnavailable(
            f"torch-model-archiver exited with {completed.returncode}: "
            + (completed.stderr or completed.stdout).strip()[-500:]
        )


def _wait_torchserve_workers(management: str, workers: int, server, deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise PeerUnavailable(
                "torchserve exited while loading the model:\n" + server.log()[-2000:]
            )
        with contextlib.suppress(requests.RequestException, ValueError, KeyError, IndexError):
            status = requests.get(f"{management}/models/resnet18", timeout=2).json()
            states = [w["status"] for w in status[0]["workers"]]
            if states.count("READY") >= workers:
                return
        time.sleep(0.5)
    raise PeerUnavailable(f"torchserve workers not READY within {deadline_s:.0f}s")


@contextlib.contextmanager
def torchserve(
    peer_python: Path, weights_dir: Path, work_dir: Path, workers: int = 2
) -> Iterator[Endpoint]:
    """TorchServe 0.12.0 with its built-in image_classifier handler and a .mar archive."""
    java = shutil.which("java")
    if java is None:
        raise PeerUnavailable("TorchServe needs Java 17: `java` is not on PATH")
    home = work_dir / "torchserve"
    store = home / "model_store"
    _torchserve_archive(peer_python, weights_dir, store)
    inference, management, metrics = free_port(), free_port(), free_port()
    config = home / "config.properties"
    model_config = {
        "resnet18": {
            "1.0": {
                "defaultVersion": True,
                "marName": "resnet18.mar",
                "minWorkers": workers,
                "maxWorkers": workers,
                "batchSize": MAX_BATCH,
                "maxBatchDelay": BATCH_WAIT_MS,
                "responseTimeout": 120,
            }
        }
    }
    config.write_text(
        "\n".join(
            [
                f"inference_address=http://127.0.0.1:{inference}",
                f"management_address=http://127.0.0.1:{management}",
                f"metrics_address=http://127.0.0.1:{metrics}",
                f"model_store={store}",
                "load_models=resnet18.mar",
                f"default_workers_per_model={workers}",
                "disable_token_authorization=true",
                "enable_model_api=false",
                f"models={json.dumps(model_config)}",
            ]
        )
        + "\n"
    )
    tmp = home / "tmp"
    tmp.mkdir(exist_ok=True)
    env = {
        # As an activated venv would: the frontend starts its Python workers with `python`.
        "PATH": f"{peer_python.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "VIRTUAL_ENV": str(peer_python.parent.parent),
        "OMP_NUM_THREADS": "1",  # workers x threads = 2 cores
        "TMPDIR": str(tmp),  # its pid file, private to this run
        "LOG_LOCATION": str(home / "logs"),  # not ./logs in the repository
        "METRICS_LOCATION": str(home / "logs"),
    }
    command = [
        str(peer_python.parent / "torchserve"),
        "--start",
        "--foreground",
        "--ncs",
        "--ts-config",
        str(config),
        "--model-store",
        str(store),
    ]
    url = f"http://127.0.0.1:{inference}"
    server = start_server(command, url, work_dir / "torchserve.log", env=env, ready_path="/ping")
    try:
        try:
            server.wait_ready(120)
        except RuntimeError as error:
            raise PeerUnavailable(f"torchserve did not start: {error}") from None
        _wait_torchserve_workers(f"http://127.0.0.1:{management}", workers, server, 180)
        yield Endpoint(
            url,
            multipart_sender(f"{url}/predictions/resnet18", "data"),
            check_torchserve_top5,
            {
                "processes": f"Java frontend (Netty, default threads) + {workers} Python "
                f"workers (minWorkers=maxWorkers={workers})",
                "torch threads": "1 per worker (OMP_NUM_THREADS=1)",
                "batching": f"batchSize={MAX_BATCH}, maxBatchDelay={BATCH_WAIT_MS} ms",
                "request": "POST /predictions/resnet18, multipart field data; built-in "
                "image_classifier handler (resize 256, crop 224, normalize, top-5)",
            },
        )
    finally:
        server.stop()
        shutil.rmtree(store, ignore_errors=True)  # a 43 MB copy of the weights
