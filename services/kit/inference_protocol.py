"""The Open Inference Protocol (KServe v2, Triton's HTTP/REST) on the wire: pure functions.

Request bytes (JSON, or JSON + binary tensors with the binary tensor extension) in, tensors
out; output tensors in, response bytes and headers out. The routes (services.core.v2) call
these; nothing here knows a model. Errors are :class:`ApiError` (400), which the v2 routes
answer in the protocol's own shape, ``{"error": "<message>"}``.

Binary tensor extension: the ``Inference-Header-Content-Length`` header gives the length of
the JSON part; each input with ``parameters.binary_data_size`` takes that many bytes of what
follows, in order. BYTES elements are serialised as a 4-byte little-endian length and the
bytes. In JSON, a BYTES element that carries an image is a base64 string.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from services.kit.errors import ApiError

HEADER_LENGTH = "Inference-Header-Content-Length"
# Protocol datatype <-> numpy dtype (BYTES: arrays of Python bytes objects).
DTYPES = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
    "BYTES": np.object_,
}


def bad_request(message: str) -> ApiError:
    return ApiError(400, "invalid_inference_request", message)


@dataclass
class Tensor:
    """A named tensor: ``array`` has the protocol datatype's numpy dtype and its shape."""

    name: str
    datatype: str
    array: np.ndarray
    parameters: dict = field(default_factory=dict)

    @property
    def shape(self) -> list[int]:
        return list(self.array.shape)


@dataclass
class InferRequest:
    id: str | None
    inputs: list[Tensor]
    outputs: list[dict]  # requested outputs: {"name", "parameters"}; empty: all of them
    parameters: dict


def parse_infer_request(body: bytes, header_length: str | None) -> InferRequest:
    """The request, from the body and the ``Inference-Header-Content-Length`` header."""
    json_part, binary = body, b""
    if header_length is not None:
        try:
            length = int(header_length)
        except ValueError:
            raise bad_request(
                f"{HEADER_LENGTH} must be an integer, got {header_length!r}."
            ) from None
        if not 0 <= length <= len(body):
            raise bad_request(f"{HEADER_LENGTH}={length} is outside the body of {len(body)} bytes.")
        json_part, binary = body[:length], body[length:]
    try:
        document = json.loads(json_part)
    except (ValueError, UnicodeDecodeError):
        raise bad_request("The inference request is not valid JSON.") from None
    if not isinstance(document, dict) or not isinstance(document.get("inputs"), list):
        raise bad_request("The inference request needs an 'inputs' list.")
    parameters = _object(document.get("parameters", {}), "parameters")
    inputs, offset = [], 0
    for entry in document["inputs"]:
        tensor, offset = _input_tensor(_object(entry, "an input"), binary, offset)
        inputs.append(tensor)
    if offset != len(binary):
        raise bad_request(f"{len(binary) - offset} bytes of binary data belong to no input.")
    outputs = [_object(o, "an output") for o in _list(document.get("outputs", []), "outputs")]
    request_id = document.get("id")
    return InferRequest(
        None if request_id is None else str(request_id), inputs, outputs, parameters
    )


def _object(value, what: str) -> dict:
    if not isinstance(value, dict):
        raise bad_request(f"{what} must be a JSON object.")
    return value


def _list(value, what: str) -> list:
    if not isinstance(value, list):
        raise bad_request(f"'{what}' must be a list.")
    return value


def _input_tensor(entry: dict, binary: bytes, offset: int) -> tuple[Tensor, int]:
    name, datatype, shape = entry.get("name"), entry.get("datatype"), entry.get("shape")
    if not isinstance(name, str):
        raise bad_request("Every input needs a 'name'.")
    if datatype not in DTYPES:
        raise bad_request(f"Input {name}: datatype {datatype!r} is not one of {', '.join(DTYPES)}.")
    if not (
        isinstance(shape, list)
        and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise bad_request(f"Input {name}: 'shape' must be a list of non-negative integers.")
    parameters = _object(entry.get("parameters", {}), f"input {name}'s parameters")
    count = int(np.prod(shape)) if shape else 1
    size = parameters.get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or size < 0 or offset + size > len(binary):
            raise bad_request(f"Input {name}: binary_data_size {size!r} runs past the body.")
        raw, offset = binary[offset : offset + size], offset + size
        array = _from_binary(name, datatype, raw, count)
    elif "data" in entry:
        array = _from_json(name, datatype, entry["data"], count)
    else:
        raise bad_request(f"Input {name} has neither 'data' nor binary_data_size.")
    return Tensor(name, datatype, array.reshape(shape), parameters), offset


def _from_binary(name: str, datatype: str, raw: bytes, count: int) -> np.ndarray:
    if datatype == "BYTES":
        elements, position = [], 0
        while position < len(raw):
            if position + 4 > len(raw):
                raise bad_request(f"Input {name}: a BYTES element's length is cut off.")
            (length,) = struct.unpack_from("<I", raw, position)
            position += 4
            if position + length > len(raw):
                raise bad_request(f"Input {name}: a BYTES element runs past its data.")
            elements.append(raw[position : position + length])
            position += length
        array = np.empty(len(elements), dtype=np.object_)
        array[:] = elements
    else:
        itemsize = np.dtype(DTYPES[datatype]).itemsize
        if len(raw) != count * itemsize:
            raise bad_request(
                f"Input {name}: {len(raw)} bytes of binary data for {count} {datatype} values."
            )
        array = np.frombuffer(raw, dtype=np.dtype(DTYPES[datatype]).newbyteorder("<"))
    if array.size != count:
        raise bad_request(f"Input {name}: {array.size} elements for a shape of {count}.")
    return array


def _flatten(data) -> list:
    if isinstance(data, list):
        return [item for element in data for item in _flatten(element)]
    return [data]


def _from_json(name: str, datatype: str, data, count: int) -> np.ndarray:
    flat = _flatten(data)
    if len(flat) != count:
        raise bad_request(f"Input {name}: {len(flat)} elements for a shape of {count}.")
    if datatype == "BYTES":
        array = np.empty(count, dtype=np.object_)
        try:
            array[:] = [base64.b64decode(item, validate=True) for item in flat]
        except (binascii.Error, TypeError, ValueError):
            raise bad_request(
                f"Input {name}: in JSON, each BYTES element must be a base64 string "
                "(or send the bytes as binary data)."
            ) from None
        return array
    try:
        return np.asarray(flat, dtype=DTYPES[datatype])
    except (TypeError, ValueError):
        raise bad_request(f"Input {name}: its data are not {datatype} values.") from None


# ---- the response ------------------------------------------------------------------------


TOP_K_PARAMETER = "classification"  # the extension's name for it, on a requested output


def requested_top_k(output: dict) -> int | None:
    """The ``classification: k`` parameter of a requested output (None: not asked)."""
    k = (output.get("parameters") or {}).get(TOP_K_PARAMETER)
    if k is None:
        return None
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        name = output.get("name")
        raise bad_request(f"Output {name}: 'classification' must be a positive integer.")
    return k


def ranked_label_strings(probabilities: np.ndarray, labels: list[str], k: int) -> np.ndarray:
    """The classification extension: Tensor[N, C] -> BYTES [N, k] of ``value:index:label``,
    most likely first, as Triton writes them."""
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    rows = [
        [f"{probabilities[n, i]:f}:{i}:{labels[i]}".encode() for i in order[n]]
        for n in range(probabilities.shape[0])
    ]
    array = np.empty((len(rows), min(k, probabilities.shape[1])), dtype=np.object_)
    for n, row in enumerate(rows):
        array[n, :] = row
    return array


def _bytes_element(value) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def _serialise(tensor: Tensor) -> bytes:
    if tensor.datatype == "BYTES":
        return b"".join(
            struct.pack("<I", len(b)) + b
            for b in (_bytes_element(v) for v in tensor.array.reshape(-1))
        )
    return np.ascontiguousarray(
        tensor.array, dtype=np.dtype(DTYPES[tensor.datatype]).newbyteorder("<")
    ).tobytes()


def _json_data(tensor: Tensor) -> list:
    flat = tensor.array.reshape(-1)
    if tensor.datatype == "BYTES":
        return [_bytes_element(v).decode("utf-8", "replace") for v in flat]
    return flat.tolist()


def build_infer_response(
    model_name: str,
    model_version: str,
    request: InferRequest,
    outputs: list[Tensor],
    parameters: Mapping[str, object],
) -> tuple[bytes, dict[str, str]]:
    """The response body and headers; outputs asked for with ``binary_data`` (or all, with
    the request's ``binary_data_output``) follow the JSON part as binary data."""
    wanted = {
        o.get("name"): _object(o.get("parameters", {}), "output parameters")
        for o in request.outputs
    }
    binary_default = bool(request.parameters.get("binary_data_output", False))
    entries, blobs = [], []
    for tensor in outputs:
        options = wanted.get(tensor.name, {})
        entry: dict = {"name": tensor.name, "datatype": tensor.datatype, "shape": tensor.shape}
        if options.get("binary_data", binary_default):
            blob = _serialise(tensor)
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            entry["data"] = _json_data(tensor)
        entries.append(entry)
    document: dict = {"model_name": model_name, "model_version": model_version}
    if request.id is not None:
        document["id"] = request.id
    if parameters:
        document["parameters"] = dict(parameters)
    document["outputs"] = entries
    header = json.dumps(document, separators=(",", ":")).encode()
    if not blobs:
        return header, {"Content-Type": "application/json"}
    return header + b"".join(blobs), {
        "Content-Type": "application/octet-stream",
        HEADER_LENGTH: str(len(header)),
    }
