"""The server-rendered page and docs: languages, limits, headers, health endpoints."""

import json
import re

import pytest

from services.kit.settings import SettingsError
from services.web import openapi
from services.web.app import create_app
from services.web.settings import WebSettings


def client_config(html: str) -> dict:
    match = re.search(r'<script type="application/json" id="web-config">(.*?)</script>', html)
    assert match, "the page carries its config for the script"
    return json.loads(match.group(1))


def test_page_in_english_by_default(client):
    response = client.get("/")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<html lang="en">' in html
    assert "Upload a photo" in html and "Analyse photo" in html
    assert response.headers["Content-Language"] == "en"
    config = client_config(html)
    assert config["language"] == "en" and config["languageSource"] == "default"
    assert config["results"] is None
    assert set(config["messages"]) == {"en", "zh-CN"}  # the one catalogue, for the script


def test_page_is_a_working_form_without_javascript(client):
    html = client.get("/").get_data(as_text=True)
    assert re.search(
        r'<form id="upload-form" action="/upload" method="post"\s+'
        r'enctype="multipart/form-data">',
        html,
    )
    assert re.search(
        r'<input id="photo-input"[^>]*type="file" name="image" accept="image/\*"', html
    )
    assert '<label id="dropzone" class="dropzone" for="photo-input">' in html


def test_page_in_chinese_from_accept_language(client):
    response = client.get("/", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    html = response.get_data(as_text=True)
    assert '<html lang="zh-CN">' in html
    visible = re.sub(r'<script type="application/json".*?</script>', "", html, flags=re.S)
    assert "上传照片" in visible and "分析照片" in visible
    assert "Upload a photo" not in visible
    assert response.headers["Content-Language"] == "zh-CN"
    assert "Accept-Language" in response.headers["Vary"]


def test_language_switch_link_sets_a_cookie_that_later_pages_follow(client):
    response = client.get("/?lang=zh-CN", headers={"Accept-Language": "en"})
    assert '<html lang="zh-CN">' in response.get_data(as_text=True)
    assert "lang=zh-CN" in response.headers["Set-Cookie"]
    later = client.get("/", headers={"Accept-Language": "en"})
    assert '<html lang="zh-CN">' in later.get_data(as_text=True)
    assert "Set-Cookie" not in later.headers  # only an explicit choice is stored


def test_switch_offers_both_languages_and_marks_the_current_one(client):
    html = client.get("/").get_data(as_text=True)
    assert re.search(r'href="/\?lang=en"[^>]*data-lang="en" aria-current="true"', html)
    assert re.search(r'href="/\?lang=zh-CN"[^>]*lang="zh-CN" data-lang="zh-CN">中文</a>', html)


def test_index_hides_banner_and_results_until_there_is_something_to_show(client):
    html = client.get("/").get_data(as_text=True)
    assert re.search(r'<div id="banner" class="banner" role="status" hidden>', html)
    assert re.search(r'<section id="results" [^>]*hidden>', html)
    assert 'aria-live="polite"' in html


def test_page_announces_the_stack_wide_upload_limit():
    app = create_app({"MAX_BODY_MB": "5"})
    html = app.test_client().get("/").get_data(as_text=True)
    assert "up to 5 MB" in html
    assert client_config(html)["maxBodyBytes"] == 5 * 1024 * 1024
    assert app.config["MAX_CONTENT_LENGTH"] == 5 * 1024 * 1024


def test_page_loads_nothing_from_other_origins(client):
    response = client.get("/")
    html = response.get_data(as_text=True)
    assert not re.search(r'(src|href)="(https?:)?//', html)
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_static_assets_are_served(client):
    for path, kind in (("/static/app.js", "javascript"), ("/static/style.css", "css")):
        response = client.get(path)
        assert response.status_code == 200 and kind in response.content_type


def test_docs_page_lists_every_documented_endpoint_with_curl(client):
    response = client.get("/docs")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    for path, method, operation in openapi.operations():
        assert f"{method}</span> {path}</code>" in html, (method, path)
        for sample in operation["x-codeSamples"]:
            assert sample["source"].replace("'", "&#39;") in html
    assert "<code>conf_threshold</code>" in html and "<code>top_k</code>" in html  # declared
    assert "curl -F image=@dog.jpg http://localhost:8080/v1/detect" in html
    assert "?render=1&#39; -o out.jpg" in html
    for status, code, _ in openapi.ERROR_CODES:
        assert f"<td>{status}</td><td><code>{code}</code></td>" in html


def test_docs_page_speaks_the_visitors_language(client):
    html = client.get("/docs", headers={"Accept-Language": "zh"}).get_data(as_text=True)
    assert "API 文档" in html and "错误代码" in html
    assert 'href="/docs?lang=en"' in html  # the switch stays on the docs


def test_health_readiness_and_metrics(client):
    assert client.get("/healthz").json == {"status": "alive", "service": "web"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json["status"] == "ready"
    client.get("/")
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert 'vision_http_requests_total{endpoint="/",method="GET",service="web"' in metrics.text


def test_unknown_paths_and_methods_get_json_errors(client):
    missing = client.get("/nope")
    assert missing.status_code == 404 and missing.json["error"]["code"] == "not_found"
    wrong = client.delete("/upload")
    assert wrong.status_code == 405 and wrong.json["error"]["code"] == "method_not_allowed"
    assert set(wrong.headers["Allow"].split(", ")) >= {"GET", "POST"}


def test_the_original_upload_address_shows_the_page(client):
    page = client.get("/upload")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert 'id="photo-input"' in page.get_data(as_text=True)


def test_model_list_aggregates_both_services(client):
    response = client.get("/v1/models")
    assert response.status_code == 200
    assert [entry["service"] for entry in response.json["models"]] == ["detector", "classifier"]


def test_settings_defaults_and_validation():
    settings = WebSettings.from_env({})
    assert settings.detector_url == "http://127.0.0.1:8002"
    assert settings.classifier_url == "http://127.0.0.1:8001"
    assert settings.upstream_timeout_s == 120
    assert settings.max_body_bytes == 20 * 1024 * 1024
    trimmed = WebSettings.from_env({"WEB_DETECTOR_URL": "http://detector:8002/"})
    assert trimmed.detector_url == "http://detector:8002"
    with pytest.raises(SettingsError, match="WEB_CLASSIFIER_URL"):
        WebSettings.from_env({"WEB_CLASSIFIER_URL": "classifier:8001"})
    with pytest.raises(SettingsError, match="WEB_UPSTREAM_TIMEOUT_S"):
        WebSettings.from_env({"WEB_UPSTREAM_TIMEOUT_S": "0"})


def test_model_list_refuses_calls_that_loop_back_to_the_web_service(client):
    response = client.get("/v1/models", headers={"X-Vision-Web-Call": "1"})
    assert response.status_code == 508
    assert response.json["error"]["code"] == "upstream_loop"


@pytest.mark.parametrize("mode", ["replica", "host", "off"])
def test_served_by_says_as_much_as_configured(mode):
    import socket

    response = create_app({"SERVED_BY": mode}).test_client().get("/healthz")
    served_by = response.headers.get("X-Served-By")
    if mode == "off":
        assert served_by is None
    elif mode == "host":
        assert served_by == socket.gethostname()
    else:
        assert served_by.startswith(socket.gethostname() + ":") and "/" in served_by


def test_a_bad_served_by_names_the_variable():
    from services.kit.settings import SettingsError

    with pytest.raises(SettingsError, match="SERVED_BY"):
        create_app({"SERVED_BY": "everything"})


def test_the_v2_server_version_is_the_projects():
    import tomllib

    from scripts.launch import REPO_ROOT
    from services.web.app import STACK_VERSION

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert project["version"] == STACK_VERSION
