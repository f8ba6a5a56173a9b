"""The Open Inference Protocol's wire format: JSON and binary tensors, both ways."""

from __future__ import annotations

import base64
import json
import struct

import numpy as np
import pytest

from services.kit.errors import ApiError
from services.kit.inference_protocol import (
    HEADER_LENGTH,
    Tensor,
    build_infer_response,
    parse_infer_request,
    ranked_label_strings,
    requested_top_k,
)


def binary_request(document: dict, blob: bytes) -> tuple[bytes, str]:
    header = json.dumps(document).encode()
    return header + blob, str(len(header))


def test_bytes_elements_in_binary_and_in_base64_json_are_the_same_images():
    images = [b"\xff\xd8one", b"\xff\xd8two"]
    blob = b"".join(struct.pack("<I", len(i)) + i for i in images)
    entry = {"name": "IMAGE", "datatype": "BYTES", "shape": [2]}
    body, length = binary_request(
        {"inputs": [{**entry, "parameters": {"binary_data_size": len(blob)}}]}, blob
    )
    from_binary = parse_infer_request(body, length).inputs[0].array
    as_json = {"inputs": [{**entry, "data": [base64.b64encode(i).decode() for i in images]}]}
    from_json = parse_infer_request(json.dumps(as_json).encode(), None).inputs[0].array
    assert list(from_binary) == list(from_json) == images


def test_numeric_tensors_keep_their_shape():
    pixels = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    entry = {"name": "IMAGE_RAW", "datatype": "UINT8", "shape": [2, 2, 3]}
    body, length = binary_request(
        {"inputs": [{**entry, "parameters": {"binary_data_size": 12}}]}, pixels.tobytes()
    )
    assert (parse_infer_request(body, length).inputs[0].array == pixels).all()


@pytest.mark.parametrize(
    ("body", "length"),
    [
        (b"{", None),
        (b'{"inputs": 3}', None),
        (b'{"inputs": [{"name": "IMAGE", "datatype": "TEXT", "shape": [1], "data": ["x"]}]}', None),
        (
            b'{"inputs": [{"name": "IMAGE", "datatype": "BYTES", "shape": [2], "data": ["eA=="]}]}',
            None,
        ),
        (
            b'{"inputs": [{"name": "IMAGE", "datatype": "BYTES", "shape": [1], "data": ["%%"]}]}',
            None,
        ),
        (b"{}", "99"),
        (b'{"inputs": []}xx', "14"),
    ],
    ids=["not-json", "inputs-not-list", "datatype", "count", "not-base64", "length", "stray-bytes"],
)
def test_malformed_requests_are_400(body, length):
    with pytest.raises(ApiError) as error:
        parse_infer_request(body, length)
    assert error.value.status == 400


def test_binary_outputs_follow_the_json_part():
    request = parse_infer_request(
        json.dumps({"inputs": [], "parameters": {"binary_data_output": True}}).encode(), None
    )
    scores = Tensor("SCORES", "FP32", np.array([[0.5, 0.25]], np.float32))
    body, headers = build_infer_response("m", "1", request, [scores], {"warning": "w"})
    length = int(headers[HEADER_LENGTH])
    document = json.loads(body[:length])
    assert document["outputs"][0]["parameters"]["binary_data_size"] == 8
    assert document["parameters"] == {"warning": "w"}
    assert np.frombuffer(body[length:], np.float32).tolist() == [0.5, 0.25]


def test_the_top_k_extension_writes_value_index_label():
    strings = ranked_label_strings(np.array([[0.1, 0.7, 0.2]]), ["a", "b", "c"], 2)
    assert [s.decode() for s in strings[0]] == ["0.700000:1:b", "0.200000:2:c"]
    assert requested_top_k({"name": "P", "parameters": {"classification": 3}}) == 3
    assert requested_top_k({"name": "P"}) is None
    with pytest.raises(ApiError):
        requested_top_k({"name": "P", "parameters": {"classification": 0}})
