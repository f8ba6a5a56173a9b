"""How the benchmark judges each contender's answers."""

from __future__ import annotations

import json

import requests

from loadtest.bench import contenders
from loadtest.photos import Photo

PHOTO = Photo("dog.jpg", b"", "image/jpeg", 768, 576)


def answer(status: int, body: bytes, content_type: str = "application/json") -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body
    response.headers["Content-Type"] = content_type
    return response


def top5(confidences):
    return {"predictions": [{"label": str(i), "confidence": c} for i, c in enumerate(confidences)]}


def test_top5_lists():
    good = answer(200, json.dumps(top5([0.5, 0.2, 0.1, 0.05, 0.01])).encode())
    assert contenders.check_top5_list(good, PHOTO) is None
    short = answer(200, json.dumps(top5([0.5, 0.2])).encode())
    assert contenders.check_top5_list(short, PHOTO) == "no top-5 'predictions' list"
    unsorted = answer(200, json.dumps(top5([0.1, 0.2, 0.3, 0.4, 0.5])).encode())
    assert contenders.check_top5_list(unsorted, PHOTO) == "predictions not sorted by confidence"
    error = answer(503, b'{"error": {"code": "model_not_ready", "message": "loading"}}')
    assert contenders.check_top5_list(error, PHOTO) == "HTTP 503 model_not_ready: loading"


def test_torchserve_answers():
    good = {"tabby": 0.4, "tiger cat": 0.3, "Egyptian cat": 0.1, "lynx": 0.05, "ox": 0.01}
    assert contenders.check_torchserve_top5(answer(200, json.dumps(good).encode()), PHOTO) is None
    assert contenders.check_torchserve_top5(answer(200, b'{"a": 1.5}'), PHOTO)
    assert contenders.check_torchserve_top5(answer(200, b"not json"), PHOTO) == "answer is not JSON"


def test_rendered_pictures():
    png = answer(200, b"\x89PNG\r\n\x1a\n....", "image/png")
    assert contenders.check_png(png, PHOTO) is None
    assert contenders.check_png(answer(200, b"<html>", "text/html"), PHOTO).startswith("not a PNG")
    assert contenders.check_png(answer(500, b"boom", "text/plain"), PHOTO).startswith("HTTP 500")


def test_only_the_servers_own_pytriton_tensor_stores_are_removed(tmp_path):
    from loadtest.bench.contender_pytriton import remove_tensor_stores

    for name in ("pytrtion123-a1", "pytrtion123-b2", "pytrtion1234-c3", "other123-d4"):
        (tmp_path / name).write_bytes(b"x")
    remove_tensor_stores([123, 77], shm=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other123-d4", "pytrtion1234-c3"]
