"""Optional API keys, enforced once at nginx: JSON 401 without or with a wrong key, the API
with a right one (X-API-Key or Bearer), probes always open, and the web page's calls made
with the caller's key. (Keys off, the default, is what every other stack test runs.)"""

from __future__ import annotations

import pytest
import requests

from scripts.local_stack import run_stack

pytestmark = pytest.mark.slow

KEY = "test-key-0123456789abcdef"


@pytest.fixture(scope="module")
def stack(tmp_path_factory, stack_weights_dir):
    tuning = {"api_keys": (KEY, "second-key-for-rotation")}
    with run_stack(
        tmp_path_factory.mktemp("keys"), stack_weights_dir, nginx_tuning=tuning
    ) as stack:
        yield stack


def classify(stack, photo: bytes, headers: dict | None = None) -> requests.Response:
    return requests.post(
        f"{stack.url}/v1/classify",
        files={"image": ("dog.jpg", photo, "image/jpeg")},
        headers=headers or {},
        timeout=60,
    )


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-API-Key": "wrong-key-0123456789"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": f"Bearer {KEY}x"},
        {"X-API-Key": KEY.upper()},
    ],
    ids=["none", "wrong", "basic", "bearer-wrong", "case-changed"],
)
def test_without_a_right_key_the_api_answers_json_401(stack, images_dir, headers):
    response = classify(stack, (images_dir / "dog.jpg").read_bytes(), headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.headers["X-Request-ID"]
    for path in ("/v1/models", "/detector/v1/models", "/classifier/openapi.json", "/v2"):
        assert requests.get(stack.url + path, headers=headers, timeout=10).status_code == 401


@pytest.mark.parametrize(
    "headers",
    [
        {"X-API-Key": KEY},
        {"Authorization": f"Bearer {KEY}"},
        {"X-API-Key": "second-key-for-rotation"},
    ],
    ids=["x-api-key", "bearer", "second-key"],
)
def test_a_right_key_opens_the_api(stack, images_dir, headers):
    response = classify(stack, (images_dir / "dog.jpg").read_bytes(), headers)
    assert response.status_code == 200, response.text
    assert response.json()["predictions"]
    models = requests.get(f"{stack.url}/v1/models", headers=headers, timeout=30).json()
    assert {entry["service"] for entry in models["models"]} == {"detector", "classifier"}


def test_probes_the_page_and_its_assets_stay_open(stack):
    paths = ("/healthz", "/detector/healthz", "/classifier/readyz", "/web/readyz", "/", "/upload")
    for path in (*paths, "/v2/health/live", "/v2/health/ready"):
        assert requests.get(stack.url + path, timeout=10).status_code == 200, path


def test_the_no_js_form_runs_with_the_callers_key_and_says_when_one_is_missing(stack, images_dir):
    photo = (images_dir / "dog.jpg").read_bytes()

    def upload(headers: dict) -> requests.Response:
        return requests.post(
            f"{stack.url}/upload",
            files={"image": ("dog.jpg", photo, "image/jpeg")},
            headers={"Accept": "text/html", **headers},
            timeout=60,
        )

    refused = upload({})
    assert refused.headers["Content-Type"].startswith("text/html")
    assert "API key" in refused.text
    answered = upload({"X-API-Key": KEY})
    assert answered.status_code == 200
    assert "API key" not in answered.text
    assert 'aria-labelledby="results-heading">' in answered.text  # results shown
