"""CloudStack's result files (systemvm/debian/root/monitorServices.py, step 4) and
what systemvm/debian/opt/cloud/bin/getRouterMonitorResults.sh prints of them, read
back as VirtualRoutingResource.parseLinesForHealthChecks reads it."""

from __future__ import annotations

import json
from pathlib import Path

from vragent.features.monitor.results import (
    cloudstack_output,
    failing_file,
    results,
    results_file,
    write,
)
from vragent.settings import Settings

from tests.cloudstack import parse_monitor_output as _parse

CHECK = {"success": "false", "lastUpdate": "1718000000123", "lastRunDuration": "15.2",
         "message": "Missing elements in dnsmasq.dhcp-hosts - \n02:00:0a:02:00:0a 10.10.2.10 vm2"}
LAST_RUN = {"start": "2024-06-10 06:13:20.123456", "end": "2024-06-10 06:13:22.456789",
            "duration": "2.33"}


def test_files_are_upstreams(tmp_path: Path) -> None:
    s = Settings(root=tmp_path)
    write(s, "advanced", {"dhcp_check.py": CHECK, "lastRun": LAST_RUN},
          ["dhcp_check.py", "dns_check.py"])
    text = results_file(s, "advanced").read_text()
    # json.dump with its default separators, on one line (the message's
    # newline is escaped), non-ASCII kept as it is.
    assert text == json.dumps({"dhcp_check.py": CHECK, "lastRun": LAST_RUN})
    assert "\n" not in text
    assert failing_file(s, "advanced").read_bytes() == b"dhcp_check.py,dns_check.py"
    assert results_file(s, "advanced").parent == s.state_dir / "monitor"
    # Nothing failing: the list is removed, not left empty.
    write(s, "advanced", {"lastRun": LAST_RUN}, [])
    assert not failing_file(s, "advanced").exists()


def test_messages_keep_non_ascii_text(tmp_path: Path) -> None:
    s = Settings(root=tmp_path)
    write(s, "basic", {"x.py": {**CHECK, "message": "naïve ☃"}}, [])
    assert "naïve ☃" in results_file(s, "basic").read_text(encoding="utf-8")


def test_nothing_run_yet(tmp_path: Path) -> None:
    s = Settings(root=tmp_path)
    assert cloudstack_output(s) == (
        'FAILING CHECKS:\nMONITOR RESULTS:\n{"basic":\n{}\n,"advanced":\n{}\n}\n')
    assert results(s) == {"basic": {}, "advanced": {}, "failing": []}
    assert _parse(cloudstack_output(s)) == ([], {"basic": {}, "advanced": {}})


def test_output_layout_line_for_line(tmp_path: Path) -> None:
    s = Settings(root=tmp_path)
    basic = {"dhcp.service": {**CHECK, "message": "service down at last check 1718000000"},
             "lastRun": LAST_RUN}
    advanced = {"dhcp_check.py": CHECK, "lastRun": LAST_RUN}
    write(s, "basic", basic, ["dhcp.service", "gateways_check.py"])
    write(s, "advanced", advanced, ["dhcp_check.py"])
    out = cloudstack_output(s)
    assert out == (
        "FAILING CHECKS:\n"
        "dhcp.service,gateways_check.py\n"
        "dhcp_check.py\n"
        "MONITOR RESULTS:\n"
        '{"basic":\n'
        f"{json.dumps(basic)}\n"
        ',"advanced":\n'
        f"{json.dumps(advanced)}\n"
        "}\n")
    failing, parsed = _parse(out)
    assert failing == ["dhcp.service", "gateways_check.py", "dhcp_check.py"]
    assert parsed == {"basic": basic, "advanced": advanced}
    assert results(s) == {"basic": basic, "advanced": advanced, "failing": failing}


def test_files_are_echoed_as_the_shell_splits_them(tmp_path: Path) -> None:
    # echo `cat FILE`: words joined by one space, whatever separated them.
    s = Settings(root=tmp_path)
    s.monitor_results.mkdir(parents=True)
    failing_file(s, "basic").write_text("a.py,b.py\n")
    results_file(s, "basic").write_text('{"x":  {"message":\t"two  spaces"}}\n\n')
    out = cloudstack_output(s)
    assert out.splitlines()[1] == "a.py,b.py"
    assert '{"x": {"message": "two spaces"}}\n,"advanced":' in out


def test_a_broken_file_reads_as_no_results(tmp_path: Path) -> None:
    s = Settings(root=tmp_path)
    s.monitor_results.mkdir(parents=True)
    results_file(s, "basic").write_text('{"torn')
    assert results(s)["basic"] == {}
