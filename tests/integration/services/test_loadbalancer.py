"""Load balancing with the real haproxy, real HTTP backends and real clients.

The bags are built line for line as a management server builds them
(vragent_lab.loadbalancer: HAProxyConfigurator.generateConfiguration and
generateFwRules, 4.22's SSL bind), applied to the sample VPC router running
as an appliance (supervisord, the resident agent, haproxy in master-worker
mode). The backends are HTTP servers in the VMs' namespaces, one per tier;
the client is the outside host. Upstream's own router (cs/CsLoadBalancer.py)
is the reference for what the bag means.

Upstream files: systemvm/debian/opt/cloud/bin/cs/CsLoadBalancer.py,
systemvm/debian/opt/cloud/bin/get_haproxy_stats.sh.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from vragent.features.loadbalancer.daemon import SOCKET
from vragent.system.haproxy import parse_stat
from vragent_lab import loadbalancer as lb
from vragent_lab.netns import VM1, VM2, wait_for

from ..harness import ALL_BAGS, Router, ns_of
from .conftest import Appliance

PEER = str(Path(__file__).resolve().parents[1] / "http_peer.py")
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
LB_IP = "100.64.10.11"  # the sample VPC's second public IP
OTHER_IP = "100.64.10.12"
STATS_IP = "10.10.1.1"


def tls_pair() -> tuple[str, str]:
    return (FIXTURES / "tls/lb.crt").read_text(), (FIXTURES / "tls/lb.key").read_text()


def command(*rules: lb.Rule) -> lb.Command:
    return lb.Command(rules=list(rules), stats=lb.Stats(STATS_IP))


def web(backends: tuple[str, ...] = (VM1, VM2), **kw: Any) -> lb.Rule:
    return lb.Rule(LB_IP, 80, [(ip, 80) for ip in backends], **kw)


def apply(app: Appliance, tmp: Path, cmd: lb.Command) -> None:
    path = tmp / f"lb-{time.monotonic_ns()}.json"
    path.write_text(json.dumps(lb.bag(cmd, router_ip=STATS_IP)))
    app.router.apply(path)


def admin(app: Appliance, what: str) -> str:
    """A command on haproxy's admin socket ("" while it does not answer)."""
    from vragent.system.haproxy import ask

    try:
        return ask(app.router.root / "run/vragent" / SOCKET.name, what)
    except OSError:
        return ""


def servers(app: Appliance, proxy: str) -> dict[str, str]:
    """The servers of ``proxy`` and their status, as the running haproxy has them."""
    rows = parse_stat(admin(app, "show stat"))
    return {r["svname"]: r["status"] for r in rows
            if r["pxname"] == proxy and r["svname"] not in ("FRONTEND", "BACKEND")}


def get(app: Appliance, url: str, *curl: str, host: str = "out") -> str:
    proc = subprocess.run(["ip", "netns", "exec", ns_of(app.router, host), "curl", "-s",
                           "-m", "3", *curl, url], capture_output=True, text=True, check=False)
    return proc.stdout if proc.returncode == 0 else f"curl exit {proc.returncode}"


def hits(app: Appliance, n: int, url: str = f"http://{LB_IP}/") -> list[str]:
    return [get(app, url).split(" ", 1)[0] for _ in range(n)]


@contextmanager
def backend(router: Router, vm: str, port: int = 80) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(["ip", "netns", "exec", ns_of(router, vm), sys.executable, PEER,
                             "serve", vm, str(port)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield proc
    finally:
        proc.kill()
        proc.wait()


@contextmanager
def load(router: Router, tmp: Path, url: str, threads: int = 4) -> Iterator[dict[str, Any]]:
    """Requests from the outside host while the block runs; afterwards the
    dict holds every outcome (``backends``, ``failures``, ``samples``)."""
    stop, out = tmp / f"stop-{time.monotonic_ns()}", tmp / f"load-{time.monotonic_ns()}.json"
    proc = subprocess.Popen(["ip", "netns", "exec", ns_of(router, "out"), sys.executable, PEER,
                             "load", url, str(threads), str(stop), str(out)],
                            stdout=subprocess.PIPE, text=True)
    result: dict[str, Any] = {}
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield result
    finally:
        stop.touch()
        proc.wait(timeout=30)
        result.update(json.loads(out.read_text()))


@pytest.fixture
def lb_app(appliance_base: Appliance, tmp_path: Path) -> Iterator[Appliance]:
    app = appliance_base
    with backend(app.router, "vm1"), backend(app.router, "vm2"):
        apply(app, tmp_path, command(web()))
        wait_for(lambda: app.running("haproxy"), 20, "haproxy to run")
        wait_for(lambda: set(servers(app, "100_64_10_11-80").values()) == {"UP"}, 20,
                 "both backends to pass their health checks")
        yield app


def requests_served(app: Appliance, proxy: str) -> int:
    """The frontend's sessions, the retired workers' included (what the metrics show)."""
    from vragent.features.loadbalancer.daemon import paths
    from vragent.settings import Settings
    from vragent.system.haproxy import stats

    rows = stats(paths(Settings(root=app.router.root)))
    return next(int(r["stot"]) for r in rows if (r["pxname"], r["svname"]) == (proxy, "FRONTEND"))


# -- what the bag means --------------------------------------------------------------


def test_http_to_a_public_ip_is_spread_across_both_backends(lb_app: Appliance) -> None:
    seen = hits(lb_app, 20)
    # roundrobin over two servers: exactly half each.
    assert sorted(set(seen)) == ["vm1", "vm2"] and seen.count("vm1") == 10, seen


def test_exactly_the_bound_ports_are_opened(lb_app: Appliance) -> None:
    rules = lb_app.router.sh("nft", "list", "chain", "inet", "vragent", "input")
    opened = sorted(line.strip() for line in rules.splitlines() if "daddr" in line)
    # add_rules' "100.64.10.11:80:" on the public link; the statistics on the
    # guest address (stat_rules "10.10.1.1:8081:0/0:,"); nothing else.
    assert opened == [f'iifname "eth1" ip daddr {LB_IP} tcp dport 80 accept',
                      f"ip daddr {STATS_IP} tcp dport 8081 accept"]
    # And the public IP's other ports stay closed.
    assert get(lb_app, f"http://{LB_IP}:8081/", "--connect-timeout", "1").startswith("curl exit")


def test_a_backend_that_fails_its_health_check_gets_no_requests(
        lb_app: Appliance, tmp_path: Path) -> None:
    router = lb_app.router
    # vm2's server goes away: haproxy's check (a connect) marks it down.
    subprocess.run(["ip", "netns", "exec", ns_of(router, "vm2"), "pkill", "-f",
                    f"{PEER} serve vm2"], check=False)
    wait_for(lambda: servers(lb_app, "100_64_10_11-80").get("10_10_2_10-80", "")
             .startswith("DOWN"), 20, "haproxy to mark vm2 down")
    assert hits(lb_app, 10) == ["vm1"] * 10
    # The health check reports it, and the metrics show it.
    from vragent.features.loadbalancer.stats import metrics
    from vragent.settings import Settings

    up = next(m for m in metrics(Settings(root=router.root)) if m.name == "vragent_haproxy_up")
    assert (("100_64_10_11-80", "10_10_2_10-80"), 0.0) in up.samples
    assert (("100_64_10_11-80", "10_10_1_10-80"), 1.0) in up.samples


def test_a_removed_backend_gets_no_more_traffic(lb_app: Appliance, tmp_path: Path) -> None:
    apply(lb_app, tmp_path, command(web(backends=(VM1,))))
    wait_for(lambda: list(servers(lb_app, "100_64_10_11-80")) == ["10_10_1_10-80"], 20,
             "haproxy to reload without vm2")
    assert hits(lb_app, 10) == ["vm1"] * 10


def test_cookie_stickiness_sticks(lb_app: Appliance, tmp_path: Path) -> None:
    apply(lb_app, tmp_path, command(web(sticky=("LbCookie", {"cookie-name": "SRVID",
                                                              "indirect": "", "nocache": ""}))))
    wait_for(lambda: "SRVID" in get(lb_app, f"http://{LB_IP}/", "-D", "-"), 20,
             "the cookie rule to be in force")
    jar = tmp_path / "jar"
    first = get(lb_app, f"http://{LB_IP}/", "-c", str(jar)).split(" ")[0]
    assert "SRVID" in jar.read_text()
    again = [get(lb_app, f"http://{LB_IP}/", "-b", str(jar)).split(" ")[0] for _ in range(10)]
    assert again == [first] * 10
    # Without the cookie, roundrobin again.
    assert set(hits(lb_app, 4)) == {"vm1", "vm2"}


def test_application_cookie_stickiness_sticks(lb_app: Appliance, tmp_path: Path) -> None:
    # AppCookie (appsession, gone since haproxy 1.6): the server's own session
    # cookie is learned from its response, and a request carrying it sticks.
    apply(lb_app, tmp_path, command(web(sticky=("AppCookie", {"cookie-name": "JSESSIONID"}))))
    wait_for(lambda: "res.cook(JSESSIONID)" in (lb_app.router.root / "etc/vragent/haproxy.cfg")
             .read_text(), 20, "the application cookie rule to be written")
    jar = tmp_path / "jar"

    def session() -> tuple[str, list[str]]:
        first = get(lb_app, f"http://{LB_IP}/", "-c", str(jar)).split(" ")[0]
        return first, [get(lb_app, f"http://{LB_IP}/", "-b", str(jar)).split(" ")[0]
                       for _ in range(6)]

    wait_for(lambda: (lambda s: s[1] == [s[0]] * 6)(session()), 20,
             "a session to stick to its server")
    first, again = session()
    assert again == [first] * 6
    # Requests without the cookie are balanced as before.
    assert set(hits(lb_app, 4)) == {"vm1", "vm2"}


def test_source_stickiness_sticks(lb_app: Appliance, tmp_path: Path) -> None:
    apply(lb_app, tmp_path, command(web(algorithm="roundrobin", sticky=("SourceBased", {}))))
    wait_for(lambda: "stick on src" in (lb_app.router.root / "etc/vragent/haproxy.cfg")
             .read_text(), 20, "the source rule to be written")
    wait_for(lambda: lb_app.router.run("state").returncode == 0 and len(set(hits(lb_app, 6)))
             == 1, 20, "one client to stick to one backend")
    assert len(set(hits(lb_app, 10))) == 1


def test_tls_offload_serves_the_bags_certificate(lb_app: Appliance, tmp_path: Path) -> None:
    tls = lb.Rule(LB_IP, 443, [(VM1, 80), (VM2, 80)], tls=tls_pair())
    apply(lb_app, tmp_path, command(web(), tls))
    out_ns = ns_of(lb_app.router, "out")

    def handshake() -> str:
        return subprocess.run(["ip", "netns", "exec", out_ns, "openssl", "s_client",
                               "-connect", f"{LB_IP}:443", "-servername", "lb.vpc.lab"],
                              input="", capture_output=True, text=True, timeout=10).stdout

    wait_for(lambda: "CN = lb.vpc.lab" in handshake(), 20, "haproxy to serve TLS on 443")
    body = get(lb_app, f"https://{LB_IP}/", "--cacert", str(FIXTURES / "tls/lb.crt"),
               "--resolve", f"lb.vpc.lab:443:{LB_IP}")
    body = get(lb_app, "https://lb.vpc.lab/", "--cacert", str(FIXTURES / "tls/lb.crt"),
               "--resolve", f"lb.vpc.lab:443:{LB_IP}")
    # Verified against the bag's certificate; the backend learns it was HTTPS.
    assert body.split(" ")[0] in ("vm1", "vm2") and "proto=https" in body, body
    # The key is in a root-only file.
    certs = lb_app.router.root / "etc/vragent/haproxy-certs"
    assert certs.stat().st_mode & 0o777 == 0o700
    assert [p.stat().st_mode & 0o777 for p in certs.iterdir()] == [0o600]


def test_statistics_answer_as_cloudstack_asks(lb_app: Appliance) -> None:
    # get_haproxy_stats.sh <public ip> <port>: the average current sessions of
    # the pool's UP servers, one integer (the hypervisor resources parse it).
    script = Path(sys.executable).parent / "get_haproxy_stats.sh"
    proc = subprocess.run(["ip", "netns", "exec", lb_app.router.ns, "env",
                           f"VRAGENT_ROOT={lb_app.router.root}", str(script), LB_IP, "80"],
                          capture_output=True, text=True, check=False)
    assert (proc.returncode, proc.stdout) == (0, "0\n"), proc.stderr
    # The stats listener, with the bag's credentials.
    # The stats listener on the tier (visibility guest-network), with the bag's credentials.
    page = get(lb_app, f"http://{STATS_IP}:8081/admin?stats;csv", "-u", "admin1:AdMiN123",
               host="vm1")
    assert "100_64_10_11-80,FRONTEND" in page
    assert get(lb_app, f"http://{STATS_IP}:8081/admin?stats", "-o", "/dev/null", "-w",
               "%{http_code}", "-u", "admin1:wrong", host="vm1") == "401"


# -- how a change reaches haproxy -----------------------------------------------------


def test_ten_reloads_under_load_drop_nothing_and_keep_state(
        lb_app: Appliance, tmp_path: Path) -> None:
    proxy = "100_64_10_11-80"
    # An operator's change the next worker must keep: vm2 drained.
    admin(lb_app, f"set server {proxy}/10_10_2_10-80 state maint")
    before = requests_served(lb_app, proxy)
    with load(lb_app.router, tmp_path, f"http://{LB_IP}/") as result:
        wait_for(lambda: requests_served(lb_app, proxy) - before >= 200, 20, "load to flow")
        config = lb_app.router.root / "etc/vragent/haproxy.cfg"
        for i in range(10):
            # Ten real changes: another public IP's rule on and off, the
            # algorithm back and forth; each one a reload.
            rules = [web(algorithm="leastconn" if i % 2 else "roundrobin")]
            if i % 2 == 0:
                rules.append(lb.Rule(OTHER_IP, 8080, [(VM1, 80)]))
            old = config.read_text()
            apply(lb_app, tmp_path, command(*rules))
            wait_for(lambda old=old: config.read_text() != old, 10, "the change")  # type: ignore[misc]
        settled = requests_served(lb_app, proxy)
        wait_for(lambda: requests_served(lb_app, proxy) - settled >= 200, 20,
                 "load after the reloads")
    total = sum(result["backends"].values())
    assert result["failures"] == {} and total >= 2000, (result["failures"], total)
    # The drained server stayed drained through ten reloads (server-state file),
    # so every request went to vm1.
    assert set(result["backends"]) == {"vm1"}
    assert servers(lb_app, proxy)["10_10_2_10-80"] == "MAINT"
    # And the counters carried on across the workers (upstream: reset to 0,
    # #6849): every retiring worker's last figures are read before it leaves,
    # so the frontend counted every request the client made, exactly. The
    # live worker alone has a tenth of them.
    live = next(int(r["stot"]) for r in parse_stat(admin(lb_app, "show stat"))
                if (r["pxname"], r["svname"]) == (proxy, "FRONTEND"))
    carried = requests_served(lb_app, proxy) - before
    print(f"\ncounted across 10 reloads: {carried} of {total} requests, live worker {live}")
    assert carried == total and carried > 3 * live, (carried, live, total)
    reloads = lb_app.agent_log().count("reloading haproxy")
    assert reloads >= 10


def test_rules_of_every_tier_and_public_ip_survive_a_restart(
        lb_app: Appliance, tmp_path: Path) -> None:
    # One rule per public IP, each with a backend on a different tier
    # (upstream #5553 and #8745 lost all but one tier's rules).
    apply(lb_app, tmp_path, command(web(backends=(VM1,)), lb.Rule(OTHER_IP, 80, [(VM2, 80)])))
    wait_for(lambda: get(lb_app, f"http://{OTHER_IP}/").startswith("vm2"), 20,
             "the second public IP's rule")
    lb_app.stop()
    lb_app.start()
    wait_for(lambda: lb_app.running("haproxy"), 20, "haproxy to run after the restart")
    wait_for(lambda: get(lb_app, f"http://{OTHER_IP}/").startswith("vm2")
             and get(lb_app, f"http://{LB_IP}/").startswith("vm1"), 20,
             "both public IPs' rules after the restart")


def test_bad_bag_changes_nothing(lb_app: Appliance, tmp_path: Path) -> None:
    config = (lb_app.router.root / "etc/vragent/haproxy.cfg").read_text()
    bag = lb.bag(command(web()), router_ip=STATS_IP)
    bag["rules"][0]["configuration"].append("\tstats socket /tmp/evil.sock level admin")
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bag))
    proc = lb_app.router.apply(path, check=False)
    assert proc.returncode == 2
    assert "configuration[" in proc.stderr and "stats socket" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert (lb_app.router.root / "etc/vragent/haproxy.cfg").read_text() == config
    assert set(hits(lb_app, 4)) == {"vm1", "vm2"}


@pytest.fixture
def appliance_base(tmp_path: Path) -> Iterator[Appliance]:
    from ..harness import vpc_lab

    with vpc_lab(tmp_path) as router:
        app = Appliance(router)
        try:
            app.start()
            router.apply(*ALL_BAGS)
            yield app
        finally:
            app.stop()
