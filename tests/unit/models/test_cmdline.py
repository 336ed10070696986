"""cmd_line.json (type cmdline): boot parameters, every value a string."""

from __future__ import annotations

import json
from typing import Any

import pytest
from vragent.bags import parse_bag
from vragent.errors import BagError
from vragent.models import CmdLine

from tests.conftest import REFERENCE
from tests.unit.builders import load, mutated, sample_bag

from .checks import assert_rejected

BAG = sample_bag("cmd_line.json")


def _cmd(**values: str) -> CmdLine:
    bag = parse_bag({"type": "cmdline", "cmd_line": values})
    assert isinstance(bag, CmdLine)
    return bag


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("eth0ip", "169.254.0.300", "Octet 300"),
        ("eth0ip", "link-local", "eth0ip='link-local'"),
        ("eth1ip", "100.64.10", "eth1ip='100.64.10'"),
        ("eth0mask", "255.0.255.0", "not a valid address"),
        ("eth2mask", "33", "eth2mask='33'"),
        ("gateway", "100.64.10.1.1", "gateway='100.64.10.1.1'"),
        ("dns1", "dns.example", "dns1='dns.example'"),
        ("guestgw", "10.0.0", "guestgw='10.0.0'"),
        ("vpccidr", "10.10.0.0/40", "vpccidr='10.10.0.0/40'"),
        ("type", "switch", "type='switch': expected one of router, vpcrouter, dhcpsrvr"),
        ("redundant_router", "yes", "redundant_router='yes': expected 0, 1, true or false"),
        ("disable_rp_filter", "2", "disable_rp_filter='2'"),
        ("sync_bfd", "on", "sync_bfd='on': expected 0, 1, true or false"),
        ("sync_bfd_interval", "5", "sync_bfd_interval='5': must be 10-10000 milliseconds"),
        ("sync_bfd_interval", "0.05", "sync_bfd_interval='0.05': not a number"),
        ("sync_bfd_multiplier", "1", "sync_bfd_multiplier='1': must be 2-50"),
        ("advert_int", "abc", "advert_int='abc': not a number"),
        ("advert_int", "0", "advert_int='0': must be between 0 and 255 seconds"),
        ("advert_int", "256", "advert_int='256'"),
        ("router_id", "0", "router_id='0': must be a positive whole number"),
        ("router_id", "-3", "router_id='-3'"),
        ("publicMtu", "20", "publicMtu='20': must be an MTU"),
        ("router_id", "1.5", "router_id='1.5': not a number"),
        # The redundant pair's keys.
        ("router_pr", "0", "router_pr='0': must be 1-254"),
        ("router_pr", "255", "router_pr='255': must be 1-254 (255 is reserved for an address "
                             "owner)"),
        ("router_pr", "abc", "router_pr='abc': not a number"),
        ("vrrp_version", "4", "vrrp_version='4': expected 2 or 3"),
        ("vrrp_version", "v3", "vrrp_version='v3': expected 2 or 3"),
        ("sync_dev", "foo", "sync_dev='foo': expected a boot interface name such as eth1"),
        ("sync_dev", "eth", "sync_dev='eth'"),
        ("sync_dev", "eth1;reboot", "sync_dev='eth1;reboot'"),
        ("sync_peer", "bad", "sync_peer='bad'"),
        ("sync_peer", "10.255.0", "sync_peer='10.255.0'"),
        ("sync_vip", "10.255.0.300", "sync_vip='10.255.0.300'"),
        ("report_url", "ftp://x", "report_url='ftp://x': expected an http:// or https:// URL"),
        ("report_url", "http://mgmt/a b", "report_url='http://mgmt/a b'"),
        ("report_url", "mgmt:8080/ha", "report_url='mgmt:8080/ha'"),
    ],
)
def test_bad_values_rejected(key: str, value: str, reason: str) -> None:
    assert_rejected(mutated(BAG, ("cmd_line", key), value), "cmd_line", reason)


def test_every_bad_value_is_listed() -> None:
    raw = mutated(mutated(BAG, ("cmd_line", "eth0ip"), "x"), ("cmd_line", "router_id"), "0")
    err = assert_rejected(raw, "cmd_line", "eth0ip='x'", "router_id='0'")
    assert len(err.problems) == 1  # one field, both keys named in it


@pytest.mark.parametrize("value", [1, 1.0, True, None, ["1"]])
def test_values_must_be_strings(value: Any) -> None:
    assert_rejected(mutated(BAG, ("cmd_line", "advert_int"), value), "cmd_line.advert_int",
                    f"(got {value!r})")


def test_cmd_line_must_be_a_map() -> None:
    assert_rejected(mutated(BAG, ("cmd_line",), "type=vpcrouter"), "cmd_line",
                    "'type=vpcrouter'")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("redundant_router", "1"), ("redundant_router", "TRUE"), ("redundant_router", "0"),
        ("advert_int", "0.5"), ("advert_int", "255"), ("router_id", "255"),
        # CloudStack's router_id is the VPC's id (createRedundantRouterArgs): unbounded.
        ("router_id", "4711"), ("publicMtu", "1450"),
        ("eth0mask", "16"), ("vpccidr", "10.10.0.1/16"), ("type", "dhcpsrvr"),
        ("unknown_key", "anything at all"), ("eth0ip", "0.0.0.0"),
        ("router_pr", "1"), ("router_pr", "254"), ("vrrp_version", "2"), ("vrrp_version", "3"),
        ("sync_dev", "eth5"), ("sync_dev", "eth10"), ("sync_peer", "10.255.0.2"),
        ("sync_vip", "10.255.0.254"), ("report_url", "http://169.254.0.1:8080/ha/report"),
        ("report_url", "https://mgmt.example/client/api?command=x&id=1"),
    ],
)
def test_good_values_accepted(key: str, value: str) -> None:
    bag = parse_bag(mutated(BAG, ("cmd_line", key), value))
    assert bag.cmd_line[key] == value  # type: ignore[attr-defined]


def test_duplicate_keys_last_wins() -> None:
    # cmd_line.json is written from the kernel command line: a key may repeat.
    text = ('{"type": "cmdline", "cmd_line": {"type": "vpcrouter", "advert_int": "1", '
            '"redundant_router": "0", "advert_int": "3", "redundant_router": "1"}}')
    bag = parse_bag(json.loads(text))
    assert isinstance(bag, CmdLine)
    assert bag.get("advert_int") == "3"
    assert bag.flag("redundant_router") is True
    # A bad value that is overridden later is never seen.
    bag = parse_bag(json.loads('{"type": "cmdline", "cmd_line": {"router_id": "0", '
                               '"router_id": "7"}}'))
    assert bag.get("router_id") == "7"  # type: ignore[attr-defined]
    with pytest.raises(BagError, match="router_id='0'"):
        parse_bag(json.loads('{"type": "cmdline", "cmd_line": {"router_id": "7", '
                             '"router_id": "0"}}'))


def test_reference_cmdline() -> None:
    bag = parse_bag(load(REFERENCE / "cmdline-1.json"))
    assert isinstance(bag, CmdLine)
    assert bag.router_type == "vpcrouter"
    assert bag.flag("redundant_router") is True
    assert bag.flag("disable_rp_filter") is True
    assert bag.get("redundant_state") == "PRIMARY"
    assert bag.interfaces() == {"eth0": ("169.254.168.24", "255.255.0.0")}


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("true", True), ("True", True), ("0", False), ("false", False)],
)
def test_flag(value: str, expected: bool) -> None:
    assert _cmd(redundant_router=value).flag("redundant_router") is expected


def test_flag_and_get_defaults() -> None:
    c = _cmd()
    assert c.flag("redundant_router") is False
    assert c.get("gateway") == ""
    assert c.get("gateway", "x") == "x"
    assert c.router_type == "vpcrouter"  # a VPC router unless told otherwise
    assert _cmd(type="router").router_type == "router"


def test_interfaces() -> None:
    c = _cmd(eth0ip="169.254.0.10", eth0mask="255.255.0.0", eth1ip="0.0.0.0",
             eth1mask="255.255.255.0", eth2ip="100.64.1.5", eth3ip="10.0.0.1",
             eth3mask="24", eth10ip="10.10.10.1", eth10mask="255.255.255.0")
    # eth1 unconfigured (0.0.0.0), eth2 has no mask: both left out.
    assert c.interfaces() == {
        "eth0": ("169.254.0.10", "255.255.0.0"),
        "eth3": ("10.0.0.1", "24"),
        "eth10": ("10.10.10.1", "255.255.255.0"),
    }


def test_every_bad_pair_value_is_listed() -> None:
    raw = BAG
    for key, value in (("router_pr", "255"), ("vrrp_version", "4"), ("sync_dev", "foo"),
                       ("sync_peer", "bad"), ("report_url", "ftp://x")):
        raw = mutated(raw, ("cmd_line", key), value)
    assert_rejected(raw, "cmd_line", "router_pr='255'", "vrrp_version='4'", "sync_dev='foo'",
                    "sync_peer='bad'", "report_url='ftp://x'")


@pytest.mark.parametrize(("key", "value"), [
    ("domain", "vpc.lab\nserver=6.6.6.6"), ("domain", "bad_domain"), ("name", "r-1\nx"),
    ("name", ""), ("internaldns1", "8.8.8"), ("useextdns", "yes")])
def test_values_that_reach_dnsmasq_are_checked(key: str, value: str) -> None:
    raw = {"type": "cmdline", "cmd_line": {"type": "vpcrouter", "name": "r-1-VM", key: value}}
    with pytest.raises(BagError, match=key):
        parse_bag(raw)
