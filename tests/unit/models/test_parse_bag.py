"""parse_bag: the single entry point, over every example bag we have."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from vragent.bags import models as _bag_models
from vragent.bags import parse_bag
from vragent.errors import BagError

from tests.conftest import REFERENCE, SAMPLE

BAG_MODELS = _bag_models()

REFERENCE_FILES = sorted(REFERENCE.glob("*.json"))
SAMPLE_FILES = sorted(SAMPLE.glob("*.json"))


def _type_of(path: Path) -> str:
    return json.loads(path.read_text())["type"]


MODELLED = [p for p in REFERENCE_FILES + SAMPLE_FILES if _type_of(p) in BAG_MODELS]
UNMODELLED = [p for p in REFERENCE_FILES if _type_of(p) not in BAG_MODELS]


def test_example_bags_are_present() -> None:
    assert len(REFERENCE_FILES) >= 10
    assert len(SAMPLE_FILES) >= 10


def test_every_modelled_type_has_an_example() -> None:
    assert {_type_of(p) for p in MODELLED} == set(BAG_MODELS)


@pytest.mark.parametrize("path", MODELLED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_example_accepted_unchanged(path: Path) -> None:
    raw = json.loads(path.read_text())
    bag = parse_bag(raw)
    assert bag.type == raw["type"]  # type: ignore[attr-defined]
    # Exactly what was sent comes back: no field dropped, renamed or defaulted in.
    assert bag.model_dump(exclude_unset=True) == raw
    # ...and the text of every value too.
    assert json.loads(bag.model_dump_json(exclude_unset=True)) == raw


def test_unmodelled_types_are_rejected_as_unknown() -> None:
    # The reference bags no feature models yet, and one no version of
    # CloudStack sends (every reference type may be modelled by now).
    for raw in [json.loads(p.read_text()) for p in UNMODELLED] + [{"type": "nosuchbag"}]:
        with pytest.raises(BagError) as info:
            parse_bag(raw)
        assert info.value.bag_type == raw["type"]
        assert info.value.problems == [
            f"type: unknown bag type {raw['type']!r} (known: {', '.join(sorted(BAG_MODELS))})"
        ]


def test_unknown_fields_are_kept_at_every_level() -> None:
    raw = json.loads((REFERENCE / "firewallrules-1.json").read_text())
    bag = parse_bag(raw)
    assert bag.model_extra == {"delete_from_processed_cache": False}
    rule = bag.rules[0]  # type: ignore[attr-defined]
    assert rule.model_extra == {"already_added": False, "purpose": "Firewall"}
    dumped = bag.model_dump(exclude_unset=True)
    assert dumped["rules"][0]["purpose"] == "Firewall"


def test_unknown_field_on_sample_ips_survives() -> None:
    raw = json.loads((SAMPLE / "ip_associations.json").read_text())
    raw["ip_address"][0]["vlan"] = "vlan://100"
    bag = parse_bag(raw)
    assert bag.ip_address[0].model_extra == {"vlan": "vlan://100"}  # type: ignore[attr-defined]
    assert bag.model_dump(exclude_unset=True)["ip_address"][0]["vlan"] == "vlan://100"


def test_models_are_frozen() -> None:
    bag = parse_bag(json.loads((SAMPLE / "static_routes.json").read_text()))
    with pytest.raises(ValueError):
        bag.routes[0].gateway = "10.0.0.1"  # type: ignore[attr-defined]


@pytest.mark.parametrize("raw", [[], "ips", 5, None])
def test_non_object_rejected(raw: object) -> None:
    with pytest.raises(BagError) as info:
        parse_bag(raw, "ips")
    assert info.value.problems == [f"the bag must be a JSON object, got {type(raw).__name__}"]
    assert info.value.exit_code == 2


@pytest.mark.parametrize("bag_type", ["nosuchbag", "", "IPS", 5, None])
def test_unknown_or_bad_type(bag_type: object) -> None:
    with pytest.raises(BagError) as info:
        parse_bag({"type": bag_type, "rules": []})
    assert info.value.problems[0].startswith(f"type: unknown bag type {bag_type!r}")


def test_type_hint_used_when_type_missing() -> None:
    raw = {"routes": [{"network": "10.0.0.0/24", "gateway": "10.1.1.1"}]}
    bag = parse_bag(raw, "staticroutes")
    assert bag.type == "staticroutes"  # type: ignore[attr-defined]
    assert "type" not in raw  # the caller's dict is left alone
    with pytest.raises(BagError, match="unknown bag type ''"):
        parse_bag(raw)


def test_type_in_bag_wins_over_hint() -> None:
    raw = json.loads((SAMPLE / "static_routes.json").read_text())
    assert parse_bag(raw, "ips").type == "staticroutes"  # type: ignore[attr-defined]


def test_every_problem_is_reported_at_once() -> None:
    raw = json.loads((SAMPLE / "ip_associations.json").read_text())
    raw["ip_address"][0]["public_ip"] = "100.64.10.300"
    raw["ip_address"][1]["vif_mac_address"] = "nope"
    raw["ip_address"][2]["add"] = "yes"
    with pytest.raises(BagError) as info:
        parse_bag(raw)
    err = info.value
    assert err.bag_type == "ips"
    assert sorted(err.problems) == sorted([
        "ip_address.0.public_ip: not an IPv4 address (got '100.64.10.300')",
        "ip_address.1.vif_mac_address: not a MAC address (got 'nope')",
        "ip_address.2.add: must be true or false (got 'yes')",
    ])
    for problem in err.problems:
        assert problem in str(err)


def test_long_values_are_shortened_in_messages() -> None:
    raw = json.loads((SAMPLE / "static_routes.json").read_text())
    raw["routes"][0]["gateway"] = "x" * 500
    with pytest.raises(BagError) as info:
        parse_bag(raw)
    (problem,) = info.value.problems
    assert problem.startswith("routes.0.gateway: not an IPv4 or IPv6 address (got 'xxx")
    assert problem.endswith("...)")
    assert len(problem) < 150
