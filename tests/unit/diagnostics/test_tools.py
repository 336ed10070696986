"""diagnostics.py's arguments and answer, as runDiagnostics sends and reads them.

Upstream (apache/cloudstack): systemvm/debian/opt/cloud/bin/diagnostics.py
(the defaults -c 4 / -m 20, the three-part answer),
server/.../diagnostics/DiagnosticsServiceImpl.java (prepareShellCmd,
hasValidChars), core/.../diagnostics/DiagnosticsAnswer.java
(getExecutionDetails: the answer split on "&&").
"""

from __future__ import annotations

import pytest
from vragent.features.diagnostics import entry
from vragent.features.diagnostics.tools import (
    ARPING,
    MAX_ARG,
    PING,
    TOOLS,
    TRACEROUTE,
    Refused,
    answer,
    parse,
)
from vragent.system import diagnostics as system


def execution_details(details: str) -> dict[str, str]:
    """DiagnosticsAnswer.getExecutionDetails, line for line: split on "&&",
    at least three parts, each trimmed."""
    parts = details.split("&&")
    if len(parts) < 3:
        raise AssertionError(f"Unsupported diagnostics command type supplied: {details!r}")
    return {"stdout": parts[0].strip(), "stderr": parts[1].strip(), "exitcode": parts[2].strip()}


# -- what runs ----------------------------------------------------------------------------


@pytest.mark.parametrize(("argv", "runs"), [
    # upstream's defaults when the count / hop limit is not given
    (["ping", "10.10.1.10"], ["ping", "-c", "4", "10.10.1.10"]),
    (["traceroute", "10.10.1.10"], ["traceroute", "-m", "20", "10.10.1.10"]),
    (["arping", "10.10.1.10"], ["arping", "-c", "4", "10.10.1.10"]),
    # as prepareShellCmd orders them: type, address, params
    (["ping", "10.10.1.10", "-c", "2", "-W", "1"], ["ping", "-c", "2", "-W", "1", "10.10.1.10"]),
    # getopt's ways of writing options
    (["ping", "10.10.1.10", "-c2", "-nq"], ["ping", "-c", "2", "-n", "-q", "10.10.1.10"]),
    (["ping", "-c", "3", "10.10.1.10"], ["ping", "-c", "3", "10.10.1.10"]),
    (["traceroute", "100.64.10.1", "-m", "5", "-q", "1", "-n", "-I"],
     ["traceroute", "-m", "5", "-q", "1", "-n", "-I", "100.64.10.1"]),
    (["arping", "10.10.1.10", "-I", "eth2", "-c", "1", "-w", "2"],
     ["arping", "-I", "eth2", "-c", "1", "-w", "2", "10.10.1.10"]),
    # a host name, IPv6 where the tool has it
    (["ping", "data-server.vpc.lab"], ["ping", "-c", "4", "data-server.vpc.lab"]),
    (["ping", "fd00::1", "-6"], ["ping", "-6", "-c", "4", "fd00::1"]),
    (["ping", "10.10.1.10", "-Q", "0x10", "-M", "do", "-s", "1472"],
     ["ping", "-Q", "0x10", "-M", "do", "-s", "1472", "-c", "4", "10.10.1.10"]),
])
def test_allowed_commands_run_as_argument_lists(argv: list[str], runs: list[str]) -> None:
    assert parse(argv).argv() == runs


def test_the_default_applies_only_when_the_option_is_absent() -> None:
    assert parse(["ping", "10.0.0.1", "-c", "1"]).argv().count("-c") == 1
    assert parse(["traceroute", "10.0.0.1", "-m", "3"]).argv().count("-m") == 1
    assert parse(["arping", "10.0.0.1", "-c1"]).argv().count("-c") == 1


# -- what is refused -------------------------------------------------------------------------

HOSTILE = [
    # shell metacharacters, in every place they could hide
    (["ping", ";"], "ipaddress"),
    (["ping", "10.0.0.1;reboot"], "ipaddress"),
    (["ping", "10.0.0.1 && reboot"], "ipaddress"),
    (["ping", "$(reboot)"], "ipaddress"),
    (["ping", "`reboot`"], "ipaddress"),
    (["ping", "10.0.0.1", "$(reboot)"], "params"),
    (["ping", "10.0.0.1", "`id`"], "params"),
    (["ping", "10.0.0.1", ";", "reboot"], "params"),
    (["ping", "10.0.0.1", "|", "sh"], "params"),
    (["ping", "10.0.0.1", ">/etc/passwd"], "params"),
    (["ping", "10.0.0.1", "-c", "4;id"], "params"),
    (["ping", "10.0.0.1", "-c", "$(id)"], "params"),
    (["ping", "10.0.0.1", "-c4;id"], "params"),
    (["ping", "10.0.0.1", "-I", "eth0;id"], "params"),
    (["ping", "10.0.0.1", "-I", "eth0`id`"], "params"),
    (["ping", "10.0.0.1\n", "-c", "1"], "ipaddress"),
    (["ping", "10.0.0.1", "-c", "1\nid"], "params"),
    # options outside the allow-list
    (["ping", "10.0.0.1", "-f"], "params"),  # flood
    (["ping", "10.0.0.1", "-l", "100"], "params"),  # preload
    (["ping", "10.0.0.1", "-A"], "params"),  # adaptive
    (["ping", "10.0.0.1", "-nf"], "params"),  # hidden in a group
    (["ping", "10.0.0.1", "--help"], "params"),
    (["traceroute", "10.0.0.1", "-A"], "params"),  # whois lookups on the Internet
    (["traceroute", "10.0.0.1", "-g", "10.0.0.2"], "params"),  # source routing
    (["traceroute", "10.0.0.1", "--mtu"], "params"),
    (["arping", "10.0.0.1", "-U"], "params"),  # rewrites the neighbours' caches
    (["arping", "10.0.0.1", "-A"], "params"),
    # values out of range
    (["ping", "10.0.0.1", "-c", "1000"], "params"),
    (["ping", "10.0.0.1", "-c", "0"], "params"),
    (["ping", "10.0.0.1", "-c", "-1"], "params"),
    (["ping", "10.0.0.1", "-i", "0.001"], "params"),
    (["ping", "10.0.0.1", "-s", "99999999"], "params"),
    (["ping", "10.0.0.1", "-M", "sometimes"], "params"),
    (["ping", "10.0.0.1", "-c"], "params"),
    (["traceroute", "10.0.0.1", "-m", "255"], "params"),
    (["arping", "10.0.0.1", "-s", "fd00::1"], "params"),
    # not addresses
    (["ping", "999.1.1.1"], "ipaddress"),
    (["ping", "1.2.3.4.5"], "ipaddress"),
    (["ping", "a..b"], "ipaddress"),
    (["ping", "host-.lab"], "ipaddress"),
    (["ping", "-"], "ipaddress"),
    (["ping", "ex ample.lab"], "ipaddress"),
    (["ping", "\uff11.\uff12.\uff13.\uff14"], "ipaddress"),  # fullwidth digits
    (["arping", "fd00::1"], "ipaddress"),  # ARP is IPv4's
    (["ping"], "ipaddress"),
    (["ping", "-c", "1"], "ipaddress"),
    (["ping", "10.0.0.1", "10.0.0.2"], "params"),
    # overly long
    (["ping", "a" * 300], "ipaddress"),
    (["ping", ("a" * 63 + ".") * 3 + "a" * 62], "ipaddress"),  # 254: a name is 253 at most
    (["ping", "10.0.0.1", "-I" + "a" * 300], "params"),
    (["ping", "10.0.0.1", "-p", "f" * 40], "params"),
    (["ping", "10.0.0.1", *["-n"] * 40], "params"),
    # not a tool
    (["nslookup", "10.0.0.1"], "type"),
    (["sh", "-c", "id"], "type"),
    (["ping;id", "10.0.0.1"], "type"),
    ([], "type"),
]


@pytest.mark.parametrize(("argv", "field"), HOSTILE)
def test_hostile_arguments_are_refused_naming_the_field(argv: list[str], field: str) -> None:
    with pytest.raises(Refused) as exc:
        parse(argv)
    assert exc.value.field == field
    message = str(exc.value)
    assert message.startswith(f"diagnostics.py: {field} ")
    # The message goes into the answer: one line, no "&" to split it on.
    assert "\n" not in message and "&" not in message
    assert len(message) < 400


@pytest.mark.parametrize(("argv", "field"), HOSTILE)
def test_a_refusal_is_an_answer_in_upstreams_layout(argv: list[str], field: str,
                                                     capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    def ran(*args: object) -> None:
        raise AssertionError(f"a refused command ran: {args}")

    monkeypatch.setattr(system, "run_tool", ran)
    assert entry.diagnostics(argv) == 0  # upstream's script exits 0 once it answered
    details = execution_details(capsys.readouterr().out)
    assert details["stdout"] == ""
    assert details["exitcode"] == "2"
    assert details["stderr"].startswith(f"diagnostics.py: {field} ")


def test_every_allowed_option_has_a_letter_and_only_known_tools_run() -> None:
    assert set(TOOLS) == {"ping", "traceroute", "arping"}  # DiagnosticsType
    for tool in (PING, TRACEROUTE, ARPING):
        assert all(len(o) == 1 for o in tool.options)
        assert tool.default[0][1:] in tool.options
    assert "f" not in PING.options and "U" not in ARPING.options
    assert MAX_ARG == 255


# -- the answer's layout ----------------------------------------------------------------------


def test_answer_splits_into_stdout_stderr_and_exit_code() -> None:
    text = answer("PING 10.0.0.1\n1 received\n", "warning: x\n", 1)
    assert text == "PING 10.0.0.1\n1 received&&\nwarning: x&&\n1\n"
    assert execution_details(text) == {"stdout": "PING 10.0.0.1\n1 received",
                                       "stderr": "warning: x", "exitcode": "1"}
    assert execution_details(answer("", "", 0)) == {"stdout": "", "stderr": "", "exitcode": "0"}


def test_a_separator_inside_the_output_cannot_shift_the_parts() -> None:
    details = execution_details(answer("a && b", "c&&d", 0))
    assert details == {"stdout": "a & & b", "stderr": "c& &d", "exitcode": "0"}
