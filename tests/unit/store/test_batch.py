"""CloudStack's aggregated VR_CFG batch format."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from vragent.errors import BagError
from vragent.store.batch import Command, parse_batch, read_commands

from tests.unit.builders import sample_bag


def _file(name: str, bag: Any, pretty: bool = False) -> str:
    body = json.dumps(bag, indent=2 if pretty else None)
    return f"<file>\n/var/cache/cloud/{name}\n{body}\n</file>\n"


def _script(arg: str, script: str = "/opt/cloud/bin/update_config.py") -> str:
    return f"<script>\n{script} {arg}\n</script>\n"


HEADER = "#Apache CloudStack Virtual Router Config File\n<version>\n1.0\n</version>\n"

IPS = sample_bag("ip_associations.json")
ROUTES = sample_bag("static_routes.json")
GUEST = sample_bag("guest_network_tier1.json")


def test_files_then_scripts_in_script_order() -> None:
    text = (HEADER + _file("ip_associations.json", IPS) + _file("static_routes.json", ROUTES)
            + _file("guest_network.json", GUEST, pretty=True)
            + _script("static_routes.json") + _script("ip_associations.json")
            + _script("guest_network.json"))
    commands = parse_batch(text, "batch.cfg")
    assert commands == [
        Command("batch.cfg:static_routes.json", ROUTES),
        Command("batch.cfg:ip_associations.json", IPS),
        Command("batch.cfg:guest_network.json", GUEST),
    ]


def test_interleaved_blocks_and_file_reuse() -> None:
    first = {"type": "staticroutes", "routes": []}
    text = (HEADER + _file("static_routes.json", first) + _script("static_routes.json")
            + _file("static_routes.json", ROUTES) + _script("static_routes.json")
            + _script("static_routes.json"))
    bags = [c.bag for c in parse_batch(text, "b")]
    # Each script reads the file as last written before it; a file may be used twice.
    assert bags == [first, ROUTES, ROUTES]


def test_script_argument_may_be_a_path_and_vragent_is_accepted() -> None:
    text = (_file("static_routes.json", ROUTES)
            + _script("/var/cache/cloud/static_routes.json")
            + _script("static_routes.json", "/usr/bin/vragent apply"))
    assert [c.source for c in parse_batch(text, "b")] == ["b:static_routes.json"] * 2


def test_blank_lines_and_comments_between_blocks() -> None:
    text = ("\n# generated\n\n" + HEADER + "\n" + _file("static_routes.json", ROUTES)
            + "   \n# next\n" + _script("static_routes.json") + "\n")
    assert [c.bag for c in parse_batch(text, "b")] == [ROUTES]


def test_empty_batch() -> None:
    assert parse_batch("", "b") == []
    assert parse_batch(HEADER, "b") == []
    assert parse_batch(HEADER + _file("static_routes.json", ROUTES), "b") == []


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ("/opt/cloud/bin/update_config.py", "unsupported script"),
        ("rm -rf /", "unsupported script 'rm -rf /'"),
    ],
)
def test_unknown_script_rejected(script: str, message: str) -> None:
    text = HEADER + _file("ip_associations.json", IPS) + f"<script>\n{script}\n</script>\n"
    with pytest.raises(BagError) as info:
        parse_batch(text, "batch.cfg")
    (problem,) = info.value.problems
    assert problem.startswith("batch.cfg#1: ")
    assert message in problem


def test_missing_file_rejected() -> None:
    text = (HEADER + _file("ip_associations.json", IPS) + _script("ip_associations.json")
            + _script("static_routes.json"))
    with pytest.raises(BagError) as info:
        parse_batch(text, "batch.cfg")
    assert info.value.problems == [
        "batch.cfg#2: script refers to 'static_routes.json', no such <file> block"]


def test_file_defined_after_its_script_is_missing() -> None:
    text = _script("static_routes.json") + _file("static_routes.json", ROUTES)
    with pytest.raises(BagError, match="no such <file> block"):
        parse_batch(text, "b")


def test_bad_json_in_file_rejected() -> None:
    text = ("<file>\n/var/cache/cloud/static_routes.json\n{\"routes\": [\n</file>\n"
            + _script("static_routes.json"))
    with pytest.raises(BagError) as info:
        parse_batch(text, "b")
    (problem,) = info.value.problems
    assert problem.startswith("static_routes.json: not valid JSON")


def test_stray_line_rejected() -> None:
    with pytest.raises(BagError) as info:
        parse_batch(HEADER + "ip addr flush dev eth1\n", "batch.cfg")
    assert info.value.problems == ["batch.cfg: unexpected line 'ip addr flush dev eth1'"]


def test_parse_batch_does_not_validate_bags() -> None:
    # Validation is parse_bag's job: the batch parser only splits and decodes.
    odd = {"type": "nonsense", "x": 1}
    text = _file("odd.json", odd) + _script("odd.json")
    assert parse_batch(text, "b") == [Command("b:odd.json", odd)]


def test_read_commands_single_bag_and_batch(tmp_path: Path) -> None:
    single = tmp_path / "static_routes.json"
    single.write_text(json.dumps(ROUTES, indent=2))
    assert read_commands(single) == [Command("static_routes.json", ROUTES)]
    batch = tmp_path / "VR-1234.cfg"
    batch.write_text(HEADER + _file("static_routes.json", ROUTES) + _script("static_routes.json"))
    assert read_commands(batch) == [Command("VR-1234.cfg:static_routes.json", ROUTES)]
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(BagError, match="broken.json: not valid JSON"):
        read_commands(broken)


def test_configure_py_after_a_bag_is_no_extra_command() -> None:
    """SetMonitorServiceConfigItem with reconfigure adds ``configure.py
    monitor_service.json`` after the bag: every bag converges already."""
    text = (HEADER + _file("ip_associations.json", IPS)
            + "<script>\n/opt/cloud/bin/update_config.py ip_associations.json\n</script>\n"
            + "<script>\n/opt/cloud/bin/configure.py ip_associations.json\n</script>\n")
    commands = parse_batch(text, "VR-1.cfg")
    assert [c.source for c in commands] == ["VR-1.cfg:ip_associations.json"]


def test_update_config_false_names_the_file_not_false() -> None:
    text = (HEADER + _file("ip_associations.json.3f0c", IPS)
            + "<script>\n/opt/cloud/bin/update_config.py ip_associations.json.3f0c false\n"
              "</script>\n")
    assert [c.source for c in parse_batch(text, "b")] == ["b:ip_associations.json.3f0c"]
