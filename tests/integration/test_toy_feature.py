"""The toy feature (tests/toy) end to end: registered by ``$VRAGENT_FEATURES``
alone, it runs on a sample-VPC router in its namespaces as an appliance runs
it (supervisord, the resident agent, ``vragent-launch``), and is checked with
real packets from the VMs.

What is asserted is what the hubs assembled from its declarations: its bag
type is accepted, stored and refused by its own model; its subsystem renders
and installs busybox httpd's files; its daemon is a supervisord program the
agent starts, reloads and restarts; netfilter opens its port, and only that
port, from the guest tiers; the health runner runs its check.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from vragent import daemon_state
from vragent.api.client import Client
from vragent.settings import Settings
from vragent.store import Store
from vragent.supervised import registry
from vragent_lab.netns import wait_for

from tests import toy
from tests.cloudstack import parse_monitor_output
from tests.conftest import SAMPLE

from .harness import ALL_BAGS, connect, ns_of, server, vpc_lab
from .services.conftest import Appliance

BIN = Path(sys.executable).parent
PORT = 7007
MESSAGE = "hello from the toy feature"
GATEWAYS = {"vm1": "10.10.1.1", "vm2": "10.10.2.1"}
PUBLIC_SNAT = "100.64.10.10"
DAEMON = "toyecho"


def bag(port: Any = PORT, message: Any = MESSAGE, **extra: Any) -> dict[str, Any]:
    return {"type": "toyecho", "port": port, "message": message, **extra}


def apply(app: Appliance, tmp: Path, doc: dict[str, Any], name: str,
          check: bool = True) -> subprocess.CompletedProcess[str]:
    path = tmp / name
    path.write_text(json.dumps(doc))
    return app.router.apply(path, check=check)


def fetch(ns: str, host: str, port: int) -> tuple[int, str]:
    """curl's HTTP status and body (status 0: no answer within a second)."""
    proc = subprocess.run(
        ["ip", "netns", "exec", ns, "curl", "-s", "-m", "1", "-o", "-", "-w", "\n%{http_code}",
         f"http://{host}:{port}/"], capture_output=True, text=True, check=False, timeout=30)
    body, _, code = proc.stdout.rpartition("\n")
    return int(code or 0), body


def served(app: Appliance, vm: str, port: int = PORT) -> str | None:
    """What ``vm`` reads at its gateway on ``port``: the message, or None."""
    code, body = fetch(ns_of(app.router, vm), GATEWAYS[vm], port)
    return body.removesuffix("\n") if code == 200 else None


def settled(app: Appliance) -> bool:
    """The toy's daemon runs, having loaded its files as they are now."""
    s = Settings(root=app.router.root)
    d = registry(s).get(DAEMON)
    return app.running(DAEMON) and (
        daemon_state.read_loaded(s.daemon_loaded(DAEMON)) == daemon_state.digests(d))


def health(app: Appliance) -> tuple[list[str], dict[str, Any]]:
    """``getRouterMonitorResults.sh true`` in the router's namespace, as the
    management server runs it: the failing names and the results."""
    proc = subprocess.run(
        ["ip", "netns", "exec", app.router.ns, "env", f"VRAGENT_ROOT={app.router.root}",
         str(BIN / "getRouterMonitorResults.sh"), "true"],
        capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return parse_monitor_output(proc.stdout)


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """The one registration line, in the environment every process of the
    router inherits (supervisord, the agent, vragent-launch, the command line)."""
    for name in ("VRAGENT_FEATURES", "PYTHONPATH"):
        monkeypatch.setenv(name, toy.env()[name])


@pytest.fixture
def app(registered: None, tmp_path: Path) -> Iterator[Appliance]:
    """A sample-VPC router with its tiers and the toy bag, its daemon serving."""
    with vpc_lab(tmp_path) as router:
        appliance = Appliance(router)
        try:
            appliance.start()
            router.apply(*ALL_BAGS)
            apply(appliance, tmp_path, bag(), "toyecho.json")
            wait_for(lambda: settled(appliance), 20, "the agent to start the toy's daemon")
            for vm in GATEWAYS:
                wait_for(lambda vm=vm: served(appliance, vm) == MESSAGE,
                         10, f"the toy's daemon to answer {vm}")
            yield appliance
        finally:
            appliance.stop()


def test_the_toy_serves_its_message_on_its_port_and_nothing_else_is_opened(
        app: Appliance) -> None:
    router = app.router
    assert " RUNNING " in app.supervisorctl("status", DAEMON)
    for vm in GATEWAYS:
        assert served(app, vm) == MESSAGE
    # The input chain accepts exactly the toy's port from the tiers: a listener
    # on the next port answers the router itself, never a VM.
    with server(router.ns, PORT + 1):
        assert connect(router.ns, GATEWAYS["vm1"], PORT + 1) == GATEWAYS["vm1"]
        for vm, gateway in GATEWAYS.items():
            assert connect(ns_of(router, vm), gateway, PORT + 1, timeout=1) is None
    # httpd listens on every address, the public one too: only the tiers get through.
    assert fetch(ns_of(router, "out"), PUBLIC_SNAT, PORT) == (0, "")
    ruleset = router.sh("nft", "list", "table", "inet", "vragent")
    assert [line.strip() for line in ruleset.splitlines() if str(PORT) in line] == [
        'iifname { "eth2", "eth3", "eth4" } tcp dport 7007 accept']
    # The stored bag, as sent; what it renders to, through the agent's API.
    assert json.loads(router.run("show", "toyecho").stdout) == bag()
    status, text = Client(Settings(root=router.root).api_socket).call("GET", "/v1/render/toy")
    assert status == 200, text
    assert text.decode() == (
        "# ==> toyecho.port <==\n7007\n"
        "# ==> toyecho.httpd.conf <==\n"
        "# busybox httpd, for the toy feature (tests/toy): rendered by vragent.\n"
        "# Only the guest tiers may ask.\n"
        "A:10.10.1.0/24\nA:10.10.2.0/24\nD:*\nI:message.txt\n"
        ".txt:text/plain; charset=utf-8\n"
        f"# ==> message.txt <==\n{MESSAGE}\n")


def test_a_new_message_is_a_reload_and_a_new_port_a_restart(app: Appliance,
                                                              tmp_path: Path) -> None:
    pid = app.pid(DAEMON)
    apply(app, tmp_path, bag(message="a second message"), "message.json")
    wait_for(lambda: served(app, "vm1") == "a second message", 10, "the new message")
    wait_for(lambda: settled(app), 10, "the agent to reload the toy's daemon")
    assert served(app, "vm2") == "a second message"
    assert app.pid(DAEMON) == pid
    # The port is read at start only (its file is declared "restart").
    apply(app, tmp_path, bag(port=PORT + 3, message="a second message"), "port.json")
    wait_for(lambda: served(app, "vm1", PORT + 3) == "a second message", 10, "the new port")
    wait_for(lambda: settled(app), 10, "the agent to restart the toy's daemon")
    assert app.pid(DAEMON) not in (0, pid)
    # The old port is closed in the input chain, and nothing listens there.
    with server(app.router.ns, PORT):
        assert served(app, "vm1", PORT) is None
        assert connect(ns_of(app.router, "vm1"), GATEWAYS["vm1"], PORT, timeout=1) is None


BAD_BAGS = [
    (bag(port=80000), "port: Input should be less than or equal to 65535 (got 80000)"),
    (bag(port=80), "port: Input should be greater than or equal to 1024 (got 80)"),
    (bag(port="7007"), "port: must be a whole number (got '7007')"),
    (bag(message="ring\x07bell"),
     "message: control character '\\x07' at 4 (printable text only) (got 'ring\\x07bell')"),
    (bag(message="two\nlines"), "message: control character '\\n' at 3"),
    (bag(message="x" * 257), "message: must be 1-256 characters, got 257"),
]


def test_a_bad_toy_bag_is_refused_naming_its_field_and_changes_nothing(
        app: Appliance, tmp_path: Path) -> None:
    router = app.router
    store = Store(Settings(root=router.root))
    rev, stored, before = store.current_rev(), store.load(), router.snapshot()
    pid = app.pid(DAEMON)
    for doc, problem in BAD_BAGS:
        proc = apply(app, tmp_path, doc, "bad.json", check=False)
        assert proc.returncode == 2, (doc, proc.stdout + proc.stderr)
        assert "rejected toyecho from bad.json: nothing was changed by it" in proc.stderr
        assert problem in proc.stderr, (doc, proc.stderr)
        assert (store.current_rev(), store.load()) == (rev, stored)
    assert router.snapshot() == before
    assert served(app, "vm1") == MESSAGE
    assert settled(app) and app.pid(DAEMON) == pid


def test_the_toy_check_passes_then_fails_once_its_daemon_is_stopped(app: Appliance,
                                                                     tmp_path: Path) -> None:
    monitor = json.loads((SAMPLE / "monitor_service.json").read_text())
    apply(app, tmp_path, monitor, "monitor_service.json")
    _, results = health(app)
    assert results["basic"]["toy_check"]["success"] == "true", results["basic"]["toy_check"]
    assert results["basic"]["toy_check"]["message"] == (
        "toyecho serves its message on 2 gateways, port 7007")
    assert results["basic"]["toyecho.service"]["message"] == "service is running"
    # The agent would start it again within a second: it goes first.
    app.supervisorctl("stop", "agent")
    app.supervisorctl("stop", DAEMON)
    wait_for(lambda: not app.running(DAEMON), 10, "the toy's daemon to stop")
    failing, results = health(app)
    assert {"toy_check", "toyecho.service"} <= set(failing)
    assert results["basic"]["toy_check"] == {**results["basic"]["toy_check"], **{
        "success": "false",
        "message": "toyecho does not serve its message -\n10.10.1.1:7007 'Connection refused', "
                   "10.10.2.1:7007 'Connection refused'"}}
