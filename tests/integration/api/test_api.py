"""The router's HTTP API against a running resident agent (supervisord, real
nft, real daemons), reached from the management network as a management
server reaches it: TCP to the control address with the router's token."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from vragent_lab.netns import wait_for

from ..harness import ALL_BAGS, SAMPLE, ns_of
from .conftest import CONTROL_IP, PORT, TOKEN, ApiRouter


def bag(name: str) -> dict[str, Any]:
    return dict(json.loads((SAMPLE / name).read_text()))


def body(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def acl(port: int, **rule: Any) -> dict[str, Any]:
    doc = bag("network_acl_tier1.json")
    doc["ingress_rules"] = [{"type": "tcp", "cidr": "0.0.0.0/0", "first_port": port,
                             "last_port": port, "allowed": True, **rule}]
    return doc


def setup(r: ApiRouter) -> None:
    for name in ALL_BAGS:
        resp = r.http("POST", "/v1/apply", (SAMPLE / name).read_bytes())
        assert resp.status == 200, (name, resp.body)


def test_without_the_token_every_request_gets_401_and_changes_nothing(
        api_router: ApiRouter) -> None:
    r = api_router
    setup(r)
    rev, table = r.rev(), r.nft()
    for token in (None, "", "wrong", TOKEN[:-1] + "x", TOKEN + "x", TOKEN.upper()):
        assert r.http("POST", "/v1/bags/networkacl", body(acl(2222)), token=token).status == 401
        assert r.http("POST", "/v1/rollback", b"{}", token=token).status == 401
        assert r.http("GET", "/v1/config", token=token).status == 401
    for path in ("/metrics", "/openapi.json", "/v1/state", "/v1/health", "/v1/revisions"):
        assert r.http("GET", path, token=None).status == 401, path
    basic = r.http("GET", "/v1/state", token=None, headers=("Authorization: Basic eDp5",))
    assert basic.status == 401
    assert r.rev() == rev and r.nft() == table
    assert TOKEN not in r.appliance.agent_log()


def test_a_valid_bag_applies_and_is_stored(api_router: ApiRouter) -> None:
    r = api_router
    setup(r)
    rev = r.rev()
    resp = r.http("POST", "/v1/bags/networkacl", body(acl(2222)))
    assert resp.status == 200, resp.body
    result = resp.json()
    assert result["outcome"] == "applied" and result["exit_code"] == 0
    assert result["revision"] == rev + 1 == r.rev()
    assert any(c.startswith("netfilter:") for c in result["changes"])
    assert "tcp dport 2222 accept" in r.nft()
    stored = r.http("GET", "/v1/config/networkacl").json()
    assert stored["eth2"]["ingress_rules"][0]["first_port"] == 2222
    # The same bag again: nothing to do, no new revision.
    again = r.http("POST", "/v1/bags/networkacl", body(acl(2222))).json()
    assert again["changes"] == [] and again["revision"] == rev + 1


def test_an_invalid_bag_gets_a_field_level_error_and_changes_nothing(
        api_router: ApiRouter) -> None:
    r = api_router
    setup(r)
    rev, table = r.rev(), r.nft()
    config = r.http("GET", "/v1/config").json()

    resp = r.http("POST", "/v1/bags/networkacl", body(acl(70000)))
    assert resp.status == 422
    result = resp.json()
    assert result["outcome"] == "rejected" and result["exit_code"] == 2
    assert any("ingress_rules.0.first_port" in p and "70000" in p
               for p in result["error"]["problems"]), result

    unrealisable = acl(2222)
    unrealisable["device"] = "eth9"
    unrealisable["mac_address"] = "02:00:0a:00:00:99"
    resp = r.http("POST", "/v1/bags/networkacl", body(unrealisable))
    assert resp.status == 409 and resp.json()["exit_code"] == 3, resp.body

    wrong_type = r.http("POST", "/v1/bags/networkacl", body(bag("static_routes.json")))
    assert wrong_type.status == 422 and "networkacl endpoint" in wrong_type.body.decode()
    assert r.http("POST", "/v1/apply", b'{"type": "networkacl", ').status == 422
    assert r.http("POST", "/v1/apply", b'{"type": "nosuchbag"}').status == 422
    # Over the size limit: refused on its declared length, before any byte is read.
    big = r.http("POST", "/v1/apply", b"{}", headers=("Content-Length: 104857600",), timeout=5)
    assert big.status == 413

    assert r.rev() == rev and r.nft() == table
    assert r.http("GET", "/v1/config").json() == config


def test_rollback_makes_the_previous_revision_current_and_applies_it(
        api_router: ApiRouter) -> None:
    r = api_router
    setup(r)
    assert r.http("POST", "/v1/bags/networkacl", body(acl(2222))).status == 200
    assert r.http("POST", "/v1/bags/networkacl", body(acl(3333))).status == 200
    assert "dport 3333" in r.nft()
    before = r.rev()
    resp = r.http("POST", "/v1/rollback", b"{}")
    assert resp.status == 200, resp.body
    assert resp.json()["revision"] == before + 1
    table = r.nft()
    assert "dport 2222" in table and "dport 3333" not in table
    history = r.http("GET", "/v1/revisions").json()
    assert history[-1]["cause"] == f"rollback to {before - 1}"
    # Back to before the tier had any ACL, from a long one (split into chunk
    # chains that its parent chain jumps to): every chain of it goes at once.
    no_acl = r.rev()
    big = acl(1)
    big["ingress_rules"] = [{"type": "tcp", "cidr": f"10.1.{i >> 8}.{i & 255}/32",
                             "first_port": 1000 + i, "last_port": 1000 + i, "allowed": True}
                            for i in range(3000)]
    assert r.http("POST", "/v1/bags/networkacl", body(big)).status == 200
    assert "acl_in_eth2_" in r.nft()
    first = [h for h in r.http("GET", "/v1/revisions").json() if "networkacl" in h["documents"]]
    before_acl = first[0]["revision"] - 1
    back = r.http("POST", "/v1/rollback", body({"revision": before_acl}))
    assert back.status == 200, back.body
    assert "acl_in_eth2" not in r.nft() and no_acl < r.rev()

    not_kept = r.http("POST", "/v1/rollback", body({"revision": 99999}))
    assert not_kept.status == 404 and "not kept" in not_kept.body.decode()


BAD_BAGS = {
    "port_out_of_range.json": acl(70000),
    "reversed_ports.json": acl(3000, first_port=3000, last_port=2000),
    "bad_cidr.json": acl(22, cidr="10.0.0.300/8"),
    "unknown_tier.json": {**acl(22), "device": "eth9", "mac_address": "02:00:0a:00:00:99"},
    "not_a_bag.json": [1, 2],
}


def test_the_cli_and_the_api_give_the_same_results_for_the_same_bags(
        api_router: ApiRouter, tmp_path: Path) -> None:
    r = api_router
    setup(r)
    for name, doc in BAD_BAGS.items():
        path = tmp_path / name
        path.write_text(json.dumps(doc))
        api = r.http("POST", f"/v1/apply?source={name}", path.read_bytes()).json()
        forwarded = r.router.run("apply", str(path), check=False)
        local = r.router.run("--local", "apply", str(path), check=False)
        assert forwarded.returncode == local.returncode == api["exit_code"] != 0, name
        assert forwarded.stderr == local.stderr == f"vragent: {api['error']['message']}\n", name
        assert forwarded.stdout == local.stdout, name
    good = tmp_path / "acl.json"
    good.write_text(json.dumps(acl(4444)))
    cli = r.router.run("apply", str(good))
    assert "netfilter: replace" in cli.stdout and "dport 4444" in r.nft()
    # Already applied: the API and the in-process command agree there is nothing to do.
    api = r.http("POST", "/v1/apply?source=acl.json", good.read_bytes()).json()
    local = r.router.run("--local", "apply", str(good))
    assert api["changes"] == [] and local.stdout == f"revision {api['revision']}: system " \
                                                     f"already matches\n"
    shown = r.router.run("show", "networkacl").stdout
    assert json.loads(shown) == r.http("GET", "/v1/config/networkacl").json()


def test_the_stored_configuration_is_shown_with_every_secret_redacted(
        api_router: ApiRouter) -> None:
    r = api_router
    setup(r)
    password = {"type": "vmpassword", "ip_address": "10.10.1.10", "password": "s3cret-pw"}
    assert r.http("POST", "/v1/bags/vmpassword", body(password)).status == 200
    text = r.http("GET", "/v1/config").body.decode()
    assert TOKEN not in text and "s3cret-pw" not in text
    assert json.loads(text)["cmdline"]["config"]["api_token"] == "(secret, not shown)"
    assert "s3cret-pw" not in r.appliance.agent_log()


def test_the_api_listens_on_the_control_address_only(api_router: ApiRouter) -> None:
    r = api_router
    setup(r)
    assert r.http("GET", "/v1/state").status == 200
    # A VM towards its gateway, the outside towards a public IP: nothing listens there.
    vm = r.http("GET", "/v1/state", host="10.10.1.1", ns=ns_of(r.router, "vm1"), timeout=3)
    out = r.http("GET", "/v1/state", host="100.64.10.10", ns=ns_of(r.router, "out"), timeout=3)
    assert vm.status == 0 and out.status == 0
    listening = r.router.sh("ss", "-Htln", f"sport = :{PORT}")
    assert listening.split()[3] == f"{CONTROL_IP}:{PORT}" and len(listening.splitlines()) == 1


def test_metrics_count_commands_and_show_the_pair_state(api_router: ApiRouter) -> None:
    r = api_router
    setup(r)
    assert r.http("POST", "/v1/bags/networkacl", body(acl(70000))).status == 422
    text = r.http("GET", "/metrics").body.decode()
    assert f'vragent_commands_total{{kind="apply",outcome="applied"}} {len(ALL_BAGS)}.0' in text
    assert 'vragent_commands_total{kind="apply",outcome="rejected"} 1.0' in text
    assert 'vragent_apply_duration_seconds_bucket{kind="apply",le="+Inf"}' in text
    assert 'vragent_vrrp_state{state="UNKNOWN"} 1.0' in text
    assert "vragent_vrrp_transitions_total" in text
    assert "vragent_conntrack_entries" in text

    # dnsmasq started by the agent, then dying: supervisord restarts it, the metrics say so.
    entry = (SAMPLE / "vm_dhcp_entry_vm1.json").read_bytes()
    assert r.http("POST", "/v1/apply", entry).status == 200
    app = r.appliance
    wait_for(lambda: app.running("dnsmasq"), 20, "dnsmasq to run")
    wait_for(lambda: 'daemon="dnsmasq",event="start"} 1.0' in r.http("GET", "/metrics")
             .body.decode(), 10, "the start to be counted")
    pid = app.pid("dnsmasq")
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: app.pid("dnsmasq") not in (0, pid), 20, "supervisord to restart dnsmasq")
    # Seen at the agent's next look at its daemons: at most 10 s on an idle router.
    wait_for(lambda: 'daemon="dnsmasq",event="died"} 1.0' in r.http("GET", "/metrics")
             .body.decode(), 20, "the death to be counted")


def test_the_openapi_description_carries_the_bag_models(api_router: ApiRouter) -> None:
    doc = api_router.http("GET", "/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    op = doc["paths"]["/v1/bags/networkacl"]["post"]
    ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = doc["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    assert "ingress_rules" in schema["properties"]
    assert {"200", "409", "422"} <= set(op["responses"])
    assert "/v1/local/apply" not in doc["paths"]


SLOW_CLIENT = """
import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
s.sendall(b"POST /v1/apply HTTP/1.1\\r\\nHost: x\\r\\nAuthorization: Bearer " + sys.argv[3].encode()
          + b"\\r\\nContent-Length: 1000\\r\\nContent-Type: application/json\\r\\n\\r\\n{")
print("sent", flush=True)
time.sleep(60)
"""


def test_a_slow_client_holds_up_nobody_else(api_router: ApiRouter) -> None:
    r = api_router
    setup(r)
    slow = subprocess.Popen(["ip", "netns", "exec", r.ctl, sys.executable, "-c", SLOW_CLIENT,
                             CONTROL_IP, str(PORT), TOKEN], stdout=subprocess.PIPE, text=True)
    try:
        assert slow.stdout is not None and slow.stdout.readline().strip() == "sent"
        resp = r.http("POST", "/v1/bags/networkacl", body(acl(5555)), timeout=10)
        assert resp.status == 200, resp.body
        wait_for(lambda: "dport 5555" in r.nft(), 5, "the rule to be live")
    finally:
        slow.kill()
        slow.wait()


def test_the_load_balancer_is_on_the_metrics_and_its_secrets_are_not_shown(
        api_router: ApiRouter) -> None:
    from vragent_lab import loadbalancer as lb

    r = api_router
    setup(r)
    fixtures = Path(__file__).resolve().parents[2] / "fixtures/tls"
    cert, key = (fixtures / "lb.crt").read_text(), (fixtures / "lb.key").read_text()
    doc = lb.bag(lb.Command(rules=[
        lb.Rule("100.64.10.11", 80, [("10.10.1.10", 80), ("10.10.2.10", 80)]),
        lb.Rule("100.64.10.11", 443, [("10.10.1.10", 80)], tls=(cert, key))],
        stats=lb.Stats("10.10.1.1", auth="admin1:Pa55-w0rd!")), router_ip="10.10.1.1")
    resp = r.http("POST", "/v1/apply", body(doc))
    assert resp.status == 200, resp.body
    # Per frontend, backend and server, read from haproxy at scrape time.
    wait_for(lambda: 'vragent_haproxy_up{proxy="100_64_10_11-443",server="FRONTEND"} 1.0'
             in r.http("GET", "/metrics").body.decode(), 20, "haproxy's figures")
    text = r.http("GET", "/metrics").body.decode()
    for line in ('vragent_haproxy_sessions_total{proxy="100_64_10_11-80",server="FRONTEND"}',
                 'vragent_haproxy_sessions_total{proxy="100_64_10_11-80",server="BACKEND"}',
                 'vragent_haproxy_up{proxy="100_64_10_11-80",server="10_10_1_10-80"}'):
        assert line in text, line
    # The stored bag, as the API shows it: the password and the key redacted.
    shown = r.http("GET", "/v1/config/loadbalancer").body.decode()
    assert "Pa55-w0rd!" not in shown and "admin1:(secret, not shown)" in shown
    assert "PRIVATE KEY" not in shown and "BEGIN CERTIFICATE" in shown
    assert "Pa55-w0rd!" not in r.appliance.agent_log()
