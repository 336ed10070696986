"""vm_password.json (type vmpassword): never echoed."""

from __future__ import annotations

import pytest
from vragent.bags import parse_bag, redact
from vragent.errors import BagError
from vragent.features.vmdata.model_password import VmPassword

from tests.conftest import REFERENCE
from tests.unit.builders import load


def test_reference_accepted() -> None:
    bag = parse_bag(load(REFERENCE / "vmpassword-1.json"))
    assert isinstance(bag, VmPassword) and bag.password == "20"
    assert "20" not in repr(bag).replace("172.16.1.20", "")


@pytest.mark.parametrize("password", ["", "line\nbreak", "nul\x00", "x" * 513, 1234])
def test_bad_password_rejected_without_echo(password: object) -> None:
    with pytest.raises(BagError) as info:
        parse_bag({"type": "vmpassword", "ip_address": "10.1.1.5", "password": password})
    text = str(info.value)
    assert "password:" in text and "(secret, not shown)" in text
    if isinstance(password, str) and password:
        assert password not in text


def test_redact_hides_passwords_and_the_router_password() -> None:
    docs = {"vmpassword": {"10.1.1.5": "s3cret"},
            "cmdline": {"config": {"router_password": "p4ss", "name": "r-1-VM"}}}
    shown = redact(docs)
    assert "s3cret" not in str(shown) and "p4ss" not in str(shown)
    assert shown["cmdline"]["config"]["name"] == "r-1-VM"
    assert docs["vmpassword"]["10.1.1.5"] == "s3cret"  # the stored copy is untouched
