"""vm_metadata.json (type vmdata)."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from vragent.bags import parse_bag
from vragent.features.vmdata.model_vmdata import VmData, decode_userdata

from tests.conftest import REFERENCE
from tests.unit.builders import load, sample_bag

from .checks import assert_rejected

BAG = sample_bag("vm_metadata_vm1.json")


def test_reference_and_sample_accepted() -> None:
    for raw in (load(REFERENCE / "vmdata-1.json"), BAG):
        bag = parse_bag(raw)
        assert isinstance(bag, VmData)
        assert bag.model_dump(exclude_unset=True) == raw


def _with_item(item: list[Any]) -> dict[str, Any]:
    return {**BAG, "vm_metadata": [*BAG["vm_metadata"], item]}


@pytest.mark.parametrize(
    ("item", "fragment"),
    [
        (["metadata", "../etc/passwd", "x"], "not a file name"),
        (["metadata", "a/b", "x"], "not a file name"),
        (["metadata", "..", "x"], "not a file name"),
        (["metadata", "a..b", "x"], "not a file name"),
        (["metadata", ".hidden", "x"], "not a file name"),
        (["metadata", "a\nb", "x"], "not a file name"),
        (["metadata", "a\x00b", "x"], "not a file name"),
        (["metadata", "", "x"], "not a file name"),
        (["password", "pw", "x"], "unknown folder"),
        (["metadata", "instance-id"], "must be [folder, file, data]"),
        (["metadata", None, "x"], "file is missing"),
    ],
)
def test_paths_are_one_safe_segment(item: list[Any], fragment: str) -> None:
    assert_rejected(_with_item(item), "vm_metadata", fragment)


def test_vm_address_validated() -> None:
    assert_rejected({**BAG, "vm_ip_address": "10.10.1.999"}, "vm_ip_address", "not an IPv4")


def test_userdata_is_served_decoded_and_anything_else_as_sent() -> None:
    raw = bytes(range(256))
    assert decode_userdata(base64.b64encode(raw).decode()) == raw
    # Upstream sometimes drops the padding.
    assert decode_userdata(base64.b64encode(b"ab").decode().rstrip("=")) == b"ab"
    # The reference bag's placeholder is not base64: served as it is.
    assert decode_userdata("user-data") == b"user-data"
