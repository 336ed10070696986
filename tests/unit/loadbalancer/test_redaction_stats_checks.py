"""What the load balancer shows: the stored bag redacted, the statistics
(get_haproxy_stats.sh, metrics) from ``show stat``, and haproxy_check.

Upstream: systemvm/debian/opt/cloud/bin/get_haproxy_stats.sh and
systemvm/debian/root/health_checks/haproxy_check.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from vragent.bags import parse_bag, redact
from vragent.features import checks as all_checks
from vragent.features.loadbalancer import stats
from vragent.features.monitor.checks import Context
from vragent.features.monitor.model import MonitorService
from vragent.models.limits import REDACTED
from vragent.settings import Settings
from vragent.system.haproxy import parse_stat

from tests.unit.builders import lb_bag, sample_docs, tls_pair

from .helpers import PASSWORD, rule_of

KEY = tls_pair()[1]
KEY_BODY = [line for line in KEY.splitlines() if line and not line.startswith("-----")]

# -- redaction -------------------------------------------------------------------------------


def test_redact_hides_the_stats_password_and_the_key() -> None:
    docs = sample_docs()
    stored = json.dumps(docs["loadbalancer"])
    assert PASSWORD in stored and KEY_BODY[0] in stored  # what is hidden is there
    shown = redact(docs)["loadbalancer"]
    text = json.dumps(shown)
    assert PASSWORD not in text
    assert "PRIVATE KEY" not in text and not any(b in text for b in KEY_BODY)
    rule = shown["rules"][0]
    assert rule["ssl_certs"][0]["key"] == REDACTED
    assert rule["ssl_certs"][0]["cert"] == tls_pair()[0]  # a certificate is public
    auth = [line for item in rule["configuration"] for line in item.split("\n")
            if "stats auth" in line]
    assert auth == ["\tstats auth admin1:(secret, not shown)"]
    # Everything else as stored, and the stored docs untouched.
    assert len(rule["configuration"]) == len(docs["loadbalancer"]["rules"][0]["configuration"])
    assert json.dumps(docs["loadbalancer"]) == stored


def test_redact_hides_a_password_field_only_when_set() -> None:
    docs = sample_docs()
    certs = docs["loadbalancer"]["rules"][0]["ssl_certs"]
    assert "password" not in redact(docs)["loadbalancer"]["rules"][0]["ssl_certs"][0]
    certs[0]["password"] = "pw"
    assert redact(docs)["loadbalancer"]["rules"][0]["ssl_certs"][0]["password"] == REDACTED


def test_rule_repr_hides_the_key() -> None:
    rule = rule_of(lb_bag())
    for text in (repr(rule), str(rule), repr(rule.ssl_certs), repr(rule.config)):
        assert "PRIVATE KEY" not in text and not any(b in text for b in KEY_BODY)
    assert PASSWORD not in repr(rule.config)
    # ...while the key is kept for the certificate file.
    assert rule.certs()["100_64_10_11-443"].pem().endswith(KEY.strip() + "\n")


# -- show stat ------------------------------------------------------------------------------

HEADER = ("# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,"
          "wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,"
          "sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,"
          "check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,"
          "req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,")


def _row(px: str, sv: str, scur: int, status: str, stot: int = 0, econ: str = "",
         hrsp: tuple[int, ...] | None = None) -> str:
    cols = [px, sv, "0", "0", str(scur), "9", "", str(stot), "1000", "2000", "", "", "",
            econ, "0", "0", "0", status, "1", "1", "0", "0", "0", "12", "0", "", "1", "2", "1",
            "", "5", "", "2", "0", "", "3", "L4OK", "", "1"]
    cols += [str(v) for v in hrsp] if hrsp else ["", "", "", "", "", ""]
    cols += ["", "0", "0", "7", "0", "0", ""]
    return ",".join(cols)


SHOW_STAT = "\n".join([
    HEADER,
    _row("100_64_10_11-80", "FRONTEND", 40, "OPEN", stot=120, hrsp=(0, 100, 5, 3, 2, 0)),
    _row("100_64_10_11-80", "10_10_1_10-80", 3, "UP", stot=60, econ="0"),
    _row("100_64_10_11-80", "10_10_2_10-80", 6, "UP", stot=55, econ="1"),
    _row("100_64_10_11-80", "10_10_3_10-80", 100, "DOWN", stot=5, econ="4"),
    _row("100_64_10_11-80", "BACKEND", 109, "UP", stot=120, econ="5",
         hrsp=(0, 100, 5, 3, 2, 0)),
    _row("100_64_10_11-2200", "FRONTEND", 0, "OPEN"),
    _row("100_64_10_11-2200", "10_10_1_10-22", 7, "DOWN"),
    _row("100_64_10_11-2200", "10_10_1_11-22", 2, "MAINT"),
    _row("100_64_10_11-2200", "BACKEND", 0, "DOWN"),
    "",
])
ROWS = parse_stat(SHOW_STAT)


def test_parse_stat_reads_haproxy_26s_columns() -> None:
    assert len(ROWS) == 9
    server = ROWS[1]
    assert (server["pxname"], server["svname"], server["scur"], server["status"]) == (
        "100_64_10_11-80", "10_10_1_10-80", "3", "UP")
    assert server["check_status"] == "L4OK" and server["req_tot"] == "7"
    assert ROWS[0]["hrsp_2xx"] == "100"
    assert parse_stat("") == [] and parse_stat("pxname,svname\nx,y\n") == []


def test_average_sessions_of_the_servers_up() -> None:
    # (3 + 6) // 2: the DOWN server, FRONTEND and BACKEND are not counted.
    assert stats.average_sessions(ROWS, "100.64.10.11", 80) == 4


@pytest.mark.parametrize(("ip", "port"), [("100.64.10.11", 2200), ("100.64.10.11", 443),
                                          ("100.64.10.12", 80)])
def test_average_sessions_is_0_without_a_server_up(ip: str, port: int) -> None:
    assert stats.average_sessions(ROWS, ip, port) == 0


def test_get_haproxy_stats_prints_the_average(monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(stats, "_rows", lambda settings: ROWS)
    assert stats.main(["100.64.10.11", "80"]) == 0
    assert capsys.readouterr().out == "4\n"
    monkeypatch.setattr(stats, "_rows", lambda settings: None)
    assert stats.main(["100.64.10.11", "80"]) == 0
    assert capsys.readouterr().out == "0\n"
    assert stats.main(["100.64.10.11"]) == 1
    assert stats.main(["100.64.10.11", "8x"]) == 1


def _metrics(monkeypatch: pytest.MonkeyPatch, rows: Any) -> dict[str, Any]:
    monkeypatch.setattr(stats, "_rows", lambda settings: rows)
    return {m.name: m for m in stats.metrics(Settings(root=Path("/nonexistent")))}


def test_metrics_from_show_stat(monkeypatch: pytest.MonkeyPatch) -> None:
    got = _metrics(monkeypatch, ROWS)
    sessions = dict(got["vragent_haproxy_sessions"].samples)
    assert sessions[("100_64_10_11-80", "FRONTEND")] == 120.0
    assert sessions[("100_64_10_11-80", "10_10_2_10-80")] == 55.0
    assert got["vragent_haproxy_sessions"].kind == "counter"
    current = dict(got["vragent_haproxy_current_sessions"].samples)
    assert current[("100_64_10_11-80", "10_10_3_10-80")] == 100.0
    assert got["vragent_haproxy_current_sessions"].kind == "gauge"
    # An empty column is no sample (not 0).
    errors = dict(got["vragent_haproxy_connection_errors"].samples)
    assert errors == {("100_64_10_11-80", "10_10_1_10-80"): 0.0,
                      ("100_64_10_11-80", "10_10_2_10-80"): 1.0,
                      ("100_64_10_11-80", "10_10_3_10-80"): 4.0,
                      ("100_64_10_11-80", "BACKEND"): 5.0}
    up = dict(got["vragent_haproxy_up"].samples)
    assert up[("100_64_10_11-80", "FRONTEND")] == 1.0
    assert up[("100_64_10_11-80", "10_10_3_10-80")] == 0.0
    assert up[("100_64_10_11-2200", "10_10_1_11-22")] == 0.0
    codes = dict(got["vragent_haproxy_http_responses"].samples)
    assert codes[("100_64_10_11-80", "FRONTEND", "2xx")] == 100.0
    assert codes[("100_64_10_11-80", "BACKEND", "5xx")] == 2.0
    assert not any(server not in ("FRONTEND", "BACKEND") for _, server, _ in codes)


def test_no_metrics_without_haproxy(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _metrics(monkeypatch, None) == {}


# -- haproxy_check ---------------------------------------------------------------------------

CHECK = next(c for c in all_checks() if c.name == "haproxy_check.py")


def _record(ip: str, port: int, dest: int, vms: str, **extra: str) -> str:
    fields = {"sourcePortStart": str(port), "sourcePortEnd": str(port), "sourceIp": ip,
              "destPortStart": str(dest), "destPortEnd": str(dest), "algorithm": "roundrobin",
              "protocol": "tcp", "stickiness": "None", "keepAliveEnabled": "false",
              "vmIps": vms, **extra}
    return ",".join(f"{k}={v}" for k, v in fields.items()) + ";"


def _ctx(tmp_path: Path, *records: str) -> Context:
    data = {"haproxyData": "global.maxconn=4096,global.maxpipes=1024;" + "".join(records)}
    bag = parse_bag({"type": "monitorservice", "health_checks_enabled": True,
                     "health_checks_config": data})
    assert isinstance(bag, MonitorService)
    return Context(Settings(root=tmp_path), bag, False, "UNKNOWN", supervisor_states={})


def _run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, rows: list[dict[str, str]],
         *records: str) -> tuple[bool, str]:
    monkeypatch.setattr(stats, "_rows", lambda settings: rows)
    result = CHECK.run(_ctx(tmp_path, *records))
    return result.success, result.message


HTTP = _record("100.64.10.11", 80, 80, "10.10.1.10 10.10.2.10 10.10.3.10")


def test_all_rules_served(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert _run(monkeypatch, tmp_path, ROWS, HTTP) == (
        True, "All 1 load balancing rule(s) are served "
              "(down: 100.64.10.11:80 10_10_3_10-80 DOWN)")
    up = [r for r in ROWS if r["svname"] != "10_10_3_10-80"]
    assert _run(monkeypatch, tmp_path, up,
                _record("100.64.10.11", 80, 80, "10.10.1.10 10.10.2.10")) == (
        True, "All 1 load balancing rule(s) are served")


def test_a_rule_without_its_frontend_fails(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    ok, message = _run(monkeypatch, tmp_path, ROWS, HTTP,
                       _record("100.64.10.11", 8080, 8080, "10.10.1.10"))
    assert not ok and message == "100.64.10.11:8080 is not served"
    closed = [{**r, "status": "STOP"} if r["svname"] == "FRONTEND" else r for r in ROWS]
    ok, message = _run(monkeypatch, tmp_path, closed, HTTP)
    assert not ok and message == "100.64.10.11:80 is not served"


def test_a_vm_missing_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ok, message = _run(monkeypatch, tmp_path, ROWS,
                       _record("100.64.10.11", 80, 80, "10.10.1.10 10.10.1.99"))
    assert not ok and message == "100.64.10.11:80: server 10.10.1.99:80 missing"


def test_all_servers_down_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ok, message = _run(monkeypatch, tmp_path, ROWS,
                       _record("100.64.10.11", 2200, 22, "10.10.1.10 10.10.1.11"))
    assert not ok and message == "100.64.10.11:2200: no server is up"


def test_an_ssl_rule_passes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # upstream #12591: "ip:443 ssl crt ..." was compared with "ip:443" and failed.
    rows = parse_stat("\n".join([
        HEADER,
        _row("100_64_10_11-443", "FRONTEND", 1, "OPEN"),
        _row("100_64_10_11-443", "10_10_1_10-80", 1, "UP"),
        _row("100_64_10_11-443", "10_10_2_10-80", 1, "UP"),
        _row("100_64_10_11-443", "BACKEND", 2, "UP")]))
    record = _record("100.64.10.11", 443, 80, "10.10.1.10 10.10.2.10", lbProtocol="ssl",
                     sslcert="/etc/cloudstack/ssl/100_64_10_11-443.pem")
    assert _run(monkeypatch, tmp_path, rows, record) == (
        True, "All 1 load balancing rule(s) are served")


def test_haproxy_not_answering_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(stats, "_rows", lambda settings: None)
    result = CHECK.run(_ctx(tmp_path, HTTP))
    assert (result.success, result.message) == (
        False, "haproxy is not running: 1 load balancing rule(s) not served")
