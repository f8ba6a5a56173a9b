"""The demo page in a real browser (headless Chromium driven by playwright), through nginx.

The page calls /v1/detect and /v1/classify on its own origin, so it runs against the whole
stack (scripts.local_stack: model replicas on stand-in weights, web, nginx in front).
Screenshots go to <repo>/test-artifacts/ for people to look at.
"""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from scripts.launch import IMAGES_DIR, REPO_ROOT
from services.web.tests.fakes import detection_body

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = REPO_ROOT / "test-artifacts"
DOG = IMAGES_DIR / "dog.jpg"
MODEL_CALL_TIMEOUT_MS = 90_000  # stand-in models on two shared CPU cores


@pytest.fixture(scope="module")
def demo_url(stack_weights_dir, tmp_path_factory) -> str:
    # Imported here so that a broken stack helper fails these tests, not the collection.
    from scripts.local_stack import run_stack

    with run_stack(tmp_path_factory.mktemp("stack"), stack_weights_dir) as stack:
        yield stack.url


@pytest.fixture(scope="module")
def browser():
    # The context managers stop Chromium at teardown, also when a test failed.
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Browser):
    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
    try:
        yield context.new_page()
    finally:
        context.close()


def api_calls(page: Page) -> list[str]:
    """A live list of the model API requests the page makes."""
    calls: list[str] = []
    page.on("request", lambda r: calls.append(r.url) if "/v1/" in r.url else None)
    return calls


def test_upload_shows_the_annotated_photo_and_both_result_tables(page: Page, demo_url: str):
    page.goto(demo_url + "/")
    expect(page.locator("h1")).to_have_text("Vision demo")
    expect(page.locator("#banner")).to_be_visible()  # from /v1/models: stand-in weights
    page.set_input_files("#photo-input", DOG)
    expect(page.locator("#preview")).to_be_visible()
    # Stand-in weights are rarely confident: a low threshold shows some boxes to look at.
    page.locator("#conf-threshold").fill("0.25")
    expect(page.locator("#conf-threshold-value")).to_have_text("25%")
    page.click("#submit-button")

    predictions = page.locator("#classification-part table.predictions tbody tr")
    expect(predictions).to_have_count(5, timeout=MODEL_CALL_TIMEOUT_MS)
    detections = page.locator("#detection-part table.detections tbody tr")
    expect(detections.first).to_be_visible(timeout=MODEL_CALL_TIMEOUT_MS)
    expect(page.locator("#status")).to_contain_text("Analysis finished")
    expect(page.locator("#results .message-error")).to_have_count(0)

    photo = page.locator("#result-photo")
    overlay = page.locator(".photo-frame svg.overlay")
    expect(photo).to_be_visible()
    expect(overlay).to_have_attribute("viewBox", "0 0 768 576")
    boxes = overlay.locator("g.detection-box").count()
    if boxes == 0:  # stand-in weights may find nothing: then the table says so
        expect(detections).to_have_text([re.compile("No objects found")])
    else:
        expect(detections).to_have_count(boxes)
    photo_box, overlay_box = photo.bounding_box(), overlay.bounding_box()
    assert photo_box and overlay_box
    for key in ("x", "y", "width", "height"):  # the boxes are scaled to the shown photo
        assert abs(photo_box[key] - overlay_box[key]) < 1.5, key
    expect(page.locator("#banner")).to_contain_text("the detector and the classifier")
    expect(page.locator("#classification-part .model-line")).to_contain_text("resnet18")

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-demo.png"), full_page=True)


def test_the_original_upload_address_shows_the_page_and_it_works(page: Page, demo_url: str):
    """The original write-up says: open /upload in a browser."""
    response = page.goto(demo_url + "/upload")
    assert response is not None and response.status == 200
    assert response.headers["content-type"].startswith("text/html")
    expect(page.locator("h1")).to_have_text("Vision demo")
    page.set_input_files("#photo-input", DOG)
    page.click("#submit-button")
    predictions = page.locator("#classification-part table.predictions tbody tr")
    expect(predictions).to_have_count(5, timeout=MODEL_CALL_TIMEOUT_MS)
    expect(page.locator("#results .message-error")).to_have_count(0)


def test_a_text_file_gets_a_friendly_message_and_is_not_sent(page: Page, demo_url: str):
    calls = api_calls(page)
    page.goto(demo_url + "/")
    notes = {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not a photo"}
    page.set_input_files("#photo-input", files=[notes])
    message = page.locator("#upload-message")
    expect(message).to_be_visible()
    expect(message).to_have_text(re.compile("“notes.txt” is not a photo"))
    page.click("#submit-button")
    expect(message).to_be_visible()
    expect(page.locator("#results")).to_be_hidden()
    assert not [url for url in calls if "/v1/detect" in url or "/v1/classify" in url]


def test_a_broken_image_shows_each_services_error(page: Page, demo_url: str):
    page.goto(demo_url + "/")
    broken = {"name": "broken.jpg", "mimeType": "image/jpeg", "buffer": b"\xff\xd8 no jpeg"}
    page.set_input_files("#photo-input", files=[broken])
    page.click("#submit-button")
    for part in ("#detection-part", "#classification-part"):
        error = page.locator(f"{part} .message-error")
        expect(error).to_contain_text(
            "could not be read as an image", timeout=MODEL_CALL_TIMEOUT_MS
        )
        expect(error).to_contain_text("invalid_image")
    expect(page.locator("body")).not_to_contain_text("Traceback")


def test_canned_boxes_are_drawn_and_a_failed_part_shows_its_error(page: Page, demo_url: str):
    # Known detections (stand-in weights find random ones) and a gateway timeout from
    # nginx for the classifier: both answered by the browser itself.
    canned = detection_body()
    page.route(
        "**/v1/detect*",
        lambda route: route.fulfill(
            status=200, content_type="application/json", body=json.dumps(canned)
        ),
    )
    page.route(
        "**/v1/classify*",
        lambda route: route.fulfill(
            status=504, content_type="text/html", body="<html>504 Gateway Time-out</html>"
        ),
    )
    page.goto(demo_url + "/")
    page.set_input_files("#photo-input", DOG)
    page.click("#submit-button")

    boxes = page.locator("svg.overlay g.detection-box")
    expect(boxes).to_have_count(2)
    expect(boxes.nth(0).locator("text")).to_have_text("dog 93%")
    expect(boxes.nth(0).locator("rect").first).to_have_attribute("x", "120.5")
    expect(page.locator("#detection-part tbody tr")).to_have_count(2)
    error = page.locator("#classification-part .message-error")
    expect(error).to_contain_text("Classification failed")
    expect(error).to_contain_text("took too long")
    expect(page.locator("#result-photo")).to_have_attribute(
        "alt", "The uploaded photo with 2 detected objects outlined"
    )

    page.click(".lang-switch a[data-lang='zh-CN']")  # results re-rendered in place
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator("#detection-heading")).to_have_text("检测到的物体")
    expect(error).to_contain_text("服务响应超时")
    expect(boxes).to_have_count(2)


def test_language_switch_is_visible_remembered_and_keyboard_usable(page: Page, demo_url: str):
    page.goto(demo_url + "/")
    page.keyboard.press("Tab")
    expect(page.locator(".skip-link")).to_be_focused()
    switch = page.locator(".lang-switch a[data-lang='zh-CN']")
    switch.focus()
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("视觉识别演示")
    expect(page.locator("#submit-button")).to_have_text("分析照片")
    assert {"name": "lang", "value": "zh-CN"}.items() <= next(
        c for c in page.context.cookies() if c["name"] == "lang"
    ).items()
    page.reload()
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")  # the server read it
    page.click(".lang-switch a[data-lang='en']")
    expect(page.locator("h1")).to_have_text("Vision demo")


def test_server_rendered_results_switch_language_in_place(page: Page, demo_url: str):
    page.goto(demo_url + "/")
    page.set_input_files("#photo-input", DOG)
    with page.expect_navigation(url=re.compile(r"/upload$"), timeout=MODEL_CALL_TIMEOUT_MS):
        page.evaluate("document.getElementById('upload-form').submit()")  # the no-JS post
    expect(page.locator("#classification-heading")).to_have_text("Classification (top 5)")
    rows = page.locator("#classification-part tbody tr").count()
    page.click(".lang-switch a[data-lang='zh-CN']")
    expect(page.locator("#classification-heading")).to_have_text("分类（前 5 名）")
    expect(page.locator("#classification-part tbody tr")).to_have_count(rows)
    expect(page.locator("#result-photo")).to_have_attribute("src", re.compile("^data:image/jpeg"))


def test_the_form_works_with_javascript_off(browser: Browser, demo_url: str):
    context = browser.new_context(java_script_enabled=False, locale="en-US")
    try:
        page = context.new_page()
        page.goto(demo_url + "/")
        page.set_input_files("#photo-input", DOG)
        with page.expect_navigation(url=re.compile(r"/upload$"), timeout=MODEL_CALL_TIMEOUT_MS):
            page.click("#submit-button")
        expect(page.locator("#classification-part table.predictions tbody tr")).to_have_count(5)
        expect(page.locator(".photo-frame svg.overlay")).to_be_attached()
        expect(page.locator("#banner")).to_be_visible()
    finally:
        context.close()


def test_phone_sized_screen_has_no_sideways_scrolling(browser: Browser, demo_url: str):
    context = browser.new_context(
        viewport={"width": 390, "height": 844},
        locale="zh-CN",
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    try:
        page = context.new_page()
        canned = detection_body()
        page.route(
            "**/v1/detect*",
            lambda route: route.fulfill(
                status=200, content_type="application/json", body=json.dumps(canned)
            ),
        )
        page.goto(demo_url + "/")
        expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
        page.set_input_files("#photo-input", DOG)
        page.click("#submit-button")
        expect(page.locator("#classification-part tbody tr")).to_have_count(
            5, timeout=MODEL_CALL_TIMEOUT_MS
        )
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "web-demo-phone.png"), full_page=True)
    finally:
        context.close()
