"""Locust users for the vision stack: API clients of each model and visitors of the page.

    python -m locust -f loadtest/locustfile.py --headless -H http://127.0.0.1:8080 \
        -u 6 -r 2 -t 60s --csv results/loadtest/locust [DetectorUser ClassifierUser BrowserUser]

``make loadtest`` (``python -m loadtest.run``) wraps this with the plots and the results
folder. Every request is named after its endpoint (``POST /v1/detect``, ...), whichever user
sent it, and an answer counts as a failure when its content is wrong, not only on an error
status (see loadtest/checks.py). When the run ends, the SLO gate (loadtest/slo.py) sets the
exit code: non-zero when the failure ratio or the p95 latency exceeds its limit.

Options added to locust's own (also as LOCUST_* environment variables): --photos,
--top-k, --api-wait-s, --browser-wait-s, --slo-max-failure-ratio, --slo-max-p95-ms,
--slo-endpoint-p95-ms, --request-log, --slo-report.
"""

from __future__ import annotations

import json
import logging
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gevent.pool
from locust import HttpUser, events, task

# locust loads this file by path: make the repository importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loadtest.checks import (
    check_classification,
    check_detection,
    check_models,
    check_page,
    describe_error,
    page_conf_threshold,
    static_assets,
)
from loadtest.photos import DEFAULT_PHOTOS_DIR, Photo, PhotosError, load_photos
from loadtest.requestlog import RequestLogWriter
from loadtest.slo import (
    DEFAULT_MAX_FAILURE_RATIO,
    DEFAULT_MAX_P95_MS,
    SloLimits,
    evaluate,
    parse_endpoint_limits,
)

log = logging.getLogger("loadtest")

# Request names: one statistics row per endpoint, whichever user class sent the request.
DETECT = "POST /v1/detect"
CLASSIFY = "POST /v1/classify"
PAGE = "GET /"
STATIC = "GET /static/*"
MODELS = "GET /v1/models"


@dataclass
class LoadTestState:
    """What every user shares, set once per locust process from its options."""

    photos: list[Photo] = field(default_factory=list)
    top_k: int = 5
    api_wait_s: float = 0.0
    browser_wait_s: tuple[float, float] = (1.0, 3.0)
    request_log: RequestLogWriter | None = None


STATE = LoadTestState()


@events.init_command_line_parser.add_listener
def add_options(parser) -> None:
    parser.add_argument(
        "--photos",
        default=str(DEFAULT_PHOTOS_DIR),
        env_var="LOCUST_PHOTOS",
        help="folder of photos to post, picked at random per request",
    )
    parser.add_argument("--top-k", type=int, default=5, env_var="LOCUST_TOP_K")
    parser.add_argument(
        "--api-wait-s",
        type=float,
        default=0.0,
        env_var="LOCUST_API_WAIT_S",
        help="pause of API users between requests (0: closed loop, next request at once)",
    )
    parser.add_argument(
        "--browser-wait-s",
        default="1,3",
        env_var="LOCUST_BROWSER_WAIT_S",
        help="MIN,MAX seconds a visitor looks at the results before the next photo",
    )
    parser.add_argument(
        "--slo-max-failure-ratio",
        type=float,
        default=DEFAULT_MAX_FAILURE_RATIO,
        env_var="LOCUST_SLO_MAX_FAILURE_RATIO",
    )
    parser.add_argument(
        "--slo-max-p95-ms",
        type=float,
        default=DEFAULT_MAX_P95_MS,
        env_var="LOCUST_SLO_MAX_P95_MS",
        help="limit on the p95 latency of all requests together",
    )
    parser.add_argument(
        "--slo-endpoint-p95-ms",
        default="",
        env_var="LOCUST_SLO_ENDPOINT_P95_MS",
        help='per-endpoint p95 limits, e.g. "POST /v1/detect=5000,POST /v1/classify=800"',
    )
    parser.add_argument(
        "--request-log",
        default="",
        env_var="LOCUST_REQUEST_LOG",
        help="CSV with one row per request (default: <--csv prefix>_requests.csv)",
    )
    parser.add_argument(
        "--slo-report",
        default="",
        env_var="LOCUST_SLO_REPORT",
        help="JSON verdict of the SLO gate (default: <--csv prefix>_slo.json)",
    )


def _beside_csv(options, explicit: str, suffix: str) -> Path | None:
    if explicit:
        return Path(explicit)
    prefix = getattr(options, "csv_prefix", None)
    return Path(f"{prefix}_{suffix}") if prefix else None


def _parse_range(text: str) -> tuple[float, float]:
    low, _, high = text.partition(",")
    low_s, high_s = float(low), float(high or low)
    if not 0 <= low_s <= high_s:
        raise ValueError(f"--browser-wait-s {text!r}: need 0 <= MIN <= MAX")
    return low_s, high_s


@events.init.add_listener
def configure(environment, **_kwargs) -> None:
    options = environment.parsed_options
    if options is None:  # used as a library, without locust's command line
        return
    try:
        STATE.photos = load_photos(options.photos)
        STATE.browser_wait_s = _parse_range(options.browser_wait_s)
        limits(options)
    except (PhotosError, ValueError) as error:
        log.error("loadtest: %s", error)
        sys.exit(2)
    if options.top_k < 1:
        log.error("loadtest: --top-k must be at least 1")
        sys.exit(2)
    STATE.top_k = options.top_k
    STATE.api_wait_s = max(0.0, options.api_wait_s)
    log.info(
        "loadtest: %d photos from %s: %s",
        len(STATE.photos),
        options.photos,
        ", ".join(f"{p.name} {p.width}x{p.height}" for p in STATE.photos),
    )
    request_log = _beside_csv(options, options.request_log, "requests.csv")
    if request_log is not None:
        request_log.parent.mkdir(parents=True, exist_ok=True)
        STATE.request_log = RequestLogWriter(open(request_log, "w", newline=""))  # noqa: SIM115


def limits(options) -> SloLimits:
    return SloLimits(
        options.slo_max_failure_ratio,
        options.slo_max_p95_ms,
        parse_endpoint_limits(options.slo_endpoint_p95_ms),
    )


@events.request.add_listener
def log_request(name, response_time, response_length, exception=None, start_time=None, **_kw):
    if STATE.request_log is None:
        return
    started = start_time if start_time is not None else time.time() - response_time / 1000
    error = "" if exception is None else (str(exception).replace("\n", " ")[:300] or "error")
    STATE.request_log.write(started, name, response_time, response_length or 0, error)


@events.quitting.add_listener
def slo_gate(environment, **_kwargs) -> None:
    """Judge the run and set the process exit code (0 only when the SLO holds)."""
    if STATE.request_log is not None:
        STATE.request_log.close()
        STATE.request_log = None
    options = environment.parsed_options
    if options is None or environment.runner is None:
        return
    total = environment.stats.total
    p95 = total.get_response_time_percentile(0.95) if total.num_requests else None
    per_endpoint = {
        entry.name: entry.get_response_time_percentile(0.95) if entry.num_requests else None
        for entry in environment.stats.entries.values()
    }
    verdict = evaluate(
        total.num_requests,
        total.num_failures,
        p95,
        limits(options),
        task_errors=sum(row["count"] for row in environment.runner.exceptions.values()),
        endpoint_p95_ms=per_endpoint,
    )
    (log.info if verdict.passed else log.error)("%s", verdict.summary())
    report = _beside_csv(options, options.slo_report, "slo.json")
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps(verdict.as_dict(), indent=2) + "\n")
    environment.process_exit_code = 0 if verdict.passed else 1


# ---- one request of each kind, judged on its content --------------------------------------


def _judge(response, check: Callable[[Any], list[str]]) -> None:
    """Mark a ``catch_response`` answer as success or failure with a one-line reason."""
    if getattr(response, "error", None) is not None and not response.status_code:
        response.failure(f"connection: {response.error}")
        return
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200:
        response.failure(describe_error(response.status_code, body, response.text or ""))
        return
    if body is None:
        response.failure(f"answer is not JSON ({response.headers.get('Content-Type')})")
        return
    problems = check(body)
    if problems:
        response.failure("wrong content: " + "; ".join(problems[:3]))
    else:
        response.success()


def post_detect(user: HttpUser, photo: Photo, conf_threshold: float | None = None) -> None:
    with user.client.post(
        "/v1/detect",
        params=None if conf_threshold is None else {"conf_threshold": conf_threshold},
        files=photo.multipart(),
        headers={"Accept": "application/json"},
        name=DETECT,
        catch_response=True,
    ) as response:
        _judge(response, lambda body: check_detection(body, photo, conf_threshold=conf_threshold))


def post_classify(user: HttpUser, photo: Photo) -> None:
    with user.client.post(
        "/v1/classify",
        params={"top_k": STATE.top_k},
        files=photo.multipart(),
        headers={"Accept": "application/json"},
        name=CLASSIFY,
        catch_response=True,
    ) as response:
        _judge(response, lambda body: check_classification(body, photo, STATE.top_k))


def random_photo() -> Photo:
    return random.choice(STATE.photos)


class DetectorUser(HttpUser):
    """An API client of the detector: one photo per request, back to back by default."""

    weight = 1

    def wait_time(self) -> float:
        return STATE.api_wait_s

    @task
    def detect(self) -> None:
        post_detect(self, random_photo())


class ClassifierUser(HttpUser):
    """An API client of the classifier (``top_k`` from --top-k)."""

    weight = 1

    def wait_time(self) -> float:
        return STATE.api_wait_s

    @task
    def classify(self) -> None:
        post_classify(self, random_photo())


class BrowserUser(HttpUser):
    """A visitor of the page, doing what the page's script does.

    Loads the page, its scripts and styles (once: a browser caches them) and the model list,
    then sends one photo to both APIs in parallel (the detector with the threshold the
    page's slider starts at, as its script does), looks at the results for a while
    (--browser-wait-s) and starts over with another photo.
    """

    weight = 1

    def wait_time(self) -> float:
        return random.uniform(*STATE.browser_wait_s)

    def on_start(self) -> None:
        self.cached_assets: set[str] = set()

    @task
    def analyse_a_photo(self) -> None:
        page = self._load_page()
        if page is None:
            return
        for asset in static_assets(page):
            if asset not in self.cached_assets:
                with self.client.get(asset, name=STATIC, catch_response=True) as response:
                    if response.status_code == 200 and response.content:
                        self.cached_assets.add(asset)
                        response.success()
                    else:
                        response.failure(f"{asset}: HTTP {response.status_code}")
        with self.client.get(
            "/v1/models", headers={"Accept": "application/json"}, name=MODELS, catch_response=True
        ) as response:
            _judge(response, check_models)
        photo = random_photo()
        calls = gevent.pool.Group()
        calls.spawn(post_detect, self, photo, page_conf_threshold(page))
        calls.spawn(post_classify, self, photo)
        calls.join()

    def _load_page(self) -> str | None:
        with self.client.get("/", name=PAGE, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")
                return None
            problems = check_page(response.text, response.headers.get("Content-Type", ""))
            if problems:
                response.failure("wrong content: " + "; ".join(problems))
                return None
            response.success()
            return response.text
