"""The ceiling with the services' input path in its loop: every timed batch is decoded from
the photos' bytes as a replica decodes them, not taken from tensors prepared once."""

from __future__ import annotations

import pytest

from loadtest.bench import ceiling
from services.kit import imaging

pytestmark = pytest.mark.slow  # a real network, seconds of measuring


def test_every_timed_batch_is_decoded_from_the_jpeg_bytes(
    stack_weights_dir, images_dir, monkeypatch
):
    decoded = []
    real_decode = imaging.decode_photo

    def counting_decode(data, max_pixels, needed=None):
        decoded.append(needed is not None)  # the replica's draft decoding, not a full one
        return real_decode(data, max_pixels, needed)

    monkeypatch.setattr(imaging, "decode_photo", counting_decode)
    args = ceiling.parse_args(
        [
            "--task", "detect",
            "--detector-model", "yolov3-tiny",
            "--weights-dir", str(stack_weights_dir),
            "--photos", str(images_dir),
            "--threads", "1",
            "--batches", "1,2",
            "--seconds", "0.1",
            "--fold-batchnorm",
            "--with-decoding",
        ]
    )  # fmt: skip
    result = ceiling.run(args)
    assert result["with_decoding"] is True
    assert [row["batch"] for row in result["per_batch"]] == [1, 2]
    timed = sum(row["batch"] * row["iterations"] for row in result["per_batch"])
    warm_up = 1 + 2
    assert len(decoded) == timed + warm_up and all(decoded)
