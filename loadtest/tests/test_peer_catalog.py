"""Every peer's version comes from its own pins file, and each pins file pins everything."""

from __future__ import annotations

import pytest

from loadtest.bench.peer_catalog import PEERS, pinned_version
from loadtest.bench.publish import document_path, plot_name


@pytest.mark.parametrize("peer", PEERS.values(), ids=PEERS.keys())
def test_a_peer_is_named_after_its_pinned_version(peer):
    assert peer.label == f"{peer.product} {peer.version}"
    lines = [
        line.strip()
        for line in peer.requirements_path.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines and all("==" in line for line in lines), peer.requirements
    assert any(line.startswith(("torch==2.14.1",)) for line in lines)


def test_an_unpinned_package_is_an_error(tmp_path):
    pins = tmp_path / "pins.txt"
    pins.write_text("# peers\nray==2.60.0\nPillow==13.0.0\n")
    assert pinned_version(pins, "ray") == "2.60.0"
    assert pinned_version(pins, "pillow") == "13.0.0"
    with pytest.raises(ValueError, match="bentoml is not pinned"):
        pinned_version(pins, "bentoml")


def test_a_side_run_never_overwrites_the_main_tables():
    main = {"settings": {"publish_as": ""}}
    phone = {"settings": {"publish_as": "phone"}}
    assert document_path(main).name == "benchmarks.md"
    assert document_path(phone).name == "benchmarks-phone.md"
    assert plot_name(main, "classify") == "bench_classify.png"
    assert plot_name(phone, "classify") == "bench_phone_classify.png"
