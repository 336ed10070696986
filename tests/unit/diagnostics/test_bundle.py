"""The diagnostics zip (get_diagnostics_files.py) holds what upstream's does and
this router's own, and not one secret.

Every feature of a CloudStack-mode router with every secret a management
server sends (the router password, both kinds of VPN PSK, VPN users'
passwords, the load balancer's statistics password and TLS key, a VM's
password) is rendered into a router root the way the agent installs it, the
store holds the configuration, and the logs repeat the secrets; then the zip's
members are gathered and every one is searched for every secret in every form.

Upstream (apache/cloudstack): systemvm/debian/opt/cloud/bin/get_diagnostics_files.py,
server/.../diagnostics/fileprocessor/DiagnosticsFilesList.java
(diagnostics.data.router.defaults), DiagnosticsServiceImpl.java.
"""

from __future__ import annotations

import base64
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest
from vragent import features
from vragent.config import RouterConfig
from vragent.feature import REDACTED, Files
from vragent.features.diagnostics import bundle, entry
from vragent.features.diagnostics.scrub import Scrubber, forms, secrets
from vragent.features.loadbalancer.daemon import shown as haproxy_shown
from vragent.features.vpn.daemon import shown as swanctl_shown
from vragent.features.vrrp.daemon import shown as keepalived_shown
from vragent.models.limits import REDACTED as MODELS_REDACTED
from vragent.reconcile import desired_states
from vragent.settings import Settings
from vragent.store import Store
from vragent.topology import resolve

from tests.unit.builders import cloudstack_pair_docs, sample_links, tls_pair

ROUTER_PASSWORD = "93871234567"  # builders.CLOUDSTACK_BOOT
SECRETS = [ROUTER_PASSWORD, "psk-one", "psk-two", "l2tp-psk", "Alice-Pw-1", "Bob-Pw-2",
           "AdMiN123", "Lab-Pass-4711"]
KEY_LINES = [line for line in tls_pair()[1].splitlines() if line and "-----" not in line]
# What a secret becomes in the files that carry it: keepalived's VRRPv2
# authentication (the password's first 8 characters), strongSwan's 0x-hex.
DERIVED = [ROUTER_PASSWORD[:8], *("0x" + s.encode().hex() for s in SECRETS)]
UPSTREAM_DEFAULTS = (
    "iptables,ipaddr,iprule,iproute,/etc/cloudstack-release,/etc/dnsmasq.conf,"
    "/etc/dhcphosts.txt,/etc/dhcpopts.txt,/etc/dnsmasq.d/cloud.conf,/etc/dnsmasq-resolv.conf,"
    "/var/lib/misc/dnsmasq.leases,/var/log/dnsmasq.log,/etc/hosts,/etc/resolv.conf,"
    "/etc/haproxy/haproxy.cfg,/var/log/haproxy.log,/etc/ipsec.d/l2tp.conf,/var/log/cloud.log,"
    "/var/log/routerServiceMonitor.log,/var/log/daemon.log").split(",")
FILE_ITEMS = [i for i in UPSTREAM_DEFAULTS if i.startswith("/")]


def every_form(secret: str) -> list[str]:
    data = secret.encode()
    return [secret, data.hex(), data.hex().upper(), base64.b64encode(data).decode(),
            json.dumps(secret)[1:-1]]


def assert_no_secret(members: list[tuple[str, bytes]]) -> None:
    for name, data in members:
        text = data.decode("utf-8", "replace")
        for secret in SECRETS:
            for form in every_form(secret):
                assert form not in text, f"{name} holds {secret!r} (as {form!r})"
        for derived in DERIVED:
            assert derived not in text, f"{name} holds {derived!r}"
        for line in KEY_LINES:
            assert line not in text, f"{name} holds a line of the TLS key"


@pytest.fixture
def router(tmp_path: Path) -> Settings:
    """A CloudStack-mode router's root: stored configuration, every daemon's
    files as the agent installs them (declared mode), logs with secrets."""
    settings = Settings(root=tmp_path / "root")
    docs = cloudstack_pair_docs()
    Store(settings).commit(docs, "test: every secret")
    cfg = RouterConfig.from_docs(docs)
    states = desired_states(cfg, resolve(cfg, sample_links()), settings)
    for pkg, feature in zip(features.packages(), features.features(), strict=True):
        if feature.subsystem is None:
            continue
        rendered = feature.subsystem.render(states[feature.name])
        for d in features.daemons_of(pkg, settings):
            if isinstance(rendered, Files):
                texts = {f.path: dict(rendered.files).get(f.path.name, "") for f in d.files}
            else:
                texts = {d.conf: rendered.text()}
            for f in d.files:
                if texts.get(f.path):
                    f.path.parent.mkdir(parents=True, exist_ok=True)
                    f.path.write_text(texts[f.path])
                    f.path.chmod(f.mode)
    settings.log_dir.mkdir(parents=True)
    (settings.log_dir / "agent.log").write_text(
        "".join(f"a log line that repeats {s}\n" for s in SECRETS) + "0x"
        + b"psk-one".hex() + "\n" + tls_pair()[1])
    (settings.log_dir / "dnsmasq.log").write_text("dnsmasq: started\n")
    (settings.root / "etc").mkdir(exist_ok=True)
    (settings.root / "etc/cloudstack-release").write_text("Cloudstack Release vragent-test\n")
    (settings.root / "etc/resolv.conf").write_text("nameserver 100.64.10.1\n")
    return settings


def test_the_fixture_plants_every_secret(router: Settings) -> None:
    """What the zip must not hold is there to be found: not an empty test."""
    on_disk = "".join(p.read_text() for p in router.conf_dir.rglob("*") if p.is_file())
    assert f"auth_pass {ROUTER_PASSWORD[:8]}" in on_disk
    assert "AdMiN123" in on_disk
    for psk in ("psk-one", "psk-two", "Alice-Pw-1"):
        assert "0x" + psk.encode().hex() in on_disk
    stored = json.dumps(Store(router).load())
    assert all(s in stored for s in SECRETS) and KEY_LINES[1] in stored


def test_the_zip_holds_upstreams_files_and_the_routers_own_and_no_secret(
        router: Settings) -> None:
    members = bundle.collect(router, FILE_ITEMS)
    names = [n for n, _ in members]
    by_name = dict(members)
    assert_no_secret(members)
    # Upstream's part, by its base names, from where this router keeps them.
    assert {"cloudstack-release", "dnsmasq.conf", "dhcphosts.txt", "cloud.conf", "hosts",
            "resolv.conf", "haproxy.cfg", "cloud.log", "dnsmasq.log"} <= set(names)
    assert b"dhcp-range" in by_name["dnsmasq.conf"]
    assert b"stats auth admin1:" + REDACTED.encode() in by_name["haproxy.cfg"]
    assert by_name["cloud.log"].count(REDACTED.encode()) >= len(SECRETS)
    # This router's own part.
    own = {n for n in names if n.startswith("vragent/")}
    assert {"vragent/configuration.json", "vragent/etc/vragent/keepalived.conf",
            "vragent/etc/vragent/haproxy.cfg", "vragent/etc/vragent/dnsmasq.conf",
            "vragent/etc/vragent/conntrackd.conf", "vragent/var/log/vragent/agent.log"} <= own
    assert b"auth_pass " + REDACTED.encode() in by_name["vragent/etc/vragent/keepalived.conf"]
    swanctl = by_name["vragent/etc/vragent/swanctl.conf"].decode()
    assert swanctl.count(f"secret = {REDACTED}") == 5  # 2 peers (psk), remote access, 2 users
    assert "id-remote = 100.64.30.1" in swanctl
    config = json.loads(by_name["vragent/configuration.json"])
    assert config["revision"] == 1 and config["cause"] == "test: every secret"
    assert config["docs"]["vmpassword"] == {"10.10.1.10": REDACTED}
    assert "site2sitevpn" in config["docs"] and "loadbalancer" in config["docs"]
    # A file that holds secrets and whose feature declares no redaction is left out.
    info = by_name["fileinfo.txt"].decode()
    assert "vragent/etc/vragent/ipsec-index.json Not Given!! holds secrets" in info
    assert not any(n.endswith("ipsec-index.json") for n in names)
    # fileinfo.txt, last, as upstream: what was found, then what was not.
    assert names[-1] == "fileinfo.txt"
    assert "/etc/dhcpopts.txtFile Not Found!!" in info
    assert "/var/log/daemon.logFile Not Found!!" in info
    assert "/etc/dnsmasq.conf (as dnsmasq.conf, from /etc/vragent/dnsmasq.conf)" in info


def test_a_path_any_user_could_not_read_is_not_given(router: Settings) -> None:
    etc = router.root / "etc"
    (etc / "shadow").write_text("root:$6$secret-hash:19000::::::\n")
    (etc / "shadow").chmod(0o640)
    home = router.root / "root"
    home.mkdir(mode=0o700)
    (home / "notes.txt").write_text("private\n")
    (home / "notes.txt").chmod(0o644)
    (etc / "fifo").parent.mkdir(exist_ok=True)
    os.mkfifo(etc / "fifo")
    (etc / "escape").symlink_to("/etc/passwd")
    (router.cache_dir).mkdir(parents=True)
    (router.cache_dir / "site2sitevpn.json.1").write_text('{"ipsec_psk": "psk-one"}')
    (router.cache_dir / "site2sitevpn.json.1").chmod(0o644)
    members = bundle.collect(router, ["/etc/shadow", "/root/notes.txt", "/etc/fifo",
                                      "/etc/escape", "/var/cache/cloud/site2sitevpn.json.1",
                                      "/var/lib/vragent/revisions", "/etc/resolv.conf",
                                      "relative/path", "[MYSCRIPT]", "/no/such/file"])
    names = {n for n, _ in members}
    assert "resolv.conf" in names
    assert not names & {"shadow", "notes.txt", "fifo", "escape", "site2sitevpn.json.1",
                        "revisions", "MYSCRIPT", "myscript.log"}
    info = dict(members)["fileinfo.txt"].decode()
    assert "/etc/shadow Not Given!! readable by its owner only" in info
    assert "/root/notes.txt Not Given!! " in info and "closed to other users" in info
    assert "/etc/fifo Not Given!! not a regular file" in info
    assert "/etc/escape Not Given!! outside the router's filesystem" in info
    assert "/var/cache/cloud/site2sitevpn.json.1 Not Given!! one of the agent's own" in info
    assert "relative/path Not Given!! neither a command name" in info
    assert "[MYSCRIPT] Not Given!! " in info and "no script is run" in info
    assert "/no/such/fileFile Not Found!!" in info


def test_the_zip_is_written_where_the_server_looks_and_cleanup_removes_only_it(
        router: Settings, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("VRAGENT_ROOT", str(router.root))
    assert entry.get_diagnostics_files(["/etc/resolv.conf", "/var/log/cloud.log"]) == 0
    printed = capsys.readouterr().out
    path = Path(printed.strip())
    assert printed == f"{path}\n"  # the path alone: PrepareFilesAnswer's details
    assert path.parent == router.root / "root" and bundle.ZIP_NAME.fullmatch(path.name)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
        assert {"resolv.conf", "cloud.log", "fileinfo.txt"} <= set(zf.namelist())
        assert_no_secret([(n, zf.read(n)) for n in zf.namelist()])
    assert not list(path.parent.glob(".*.tmp"))
    # A second one in the same second gets a name of its own.
    assert entry.get_diagnostics_files(["/etc/resolv.conf"]) == 0
    second = Path(capsys.readouterr().out.strip())
    assert second != path and second.exists() and path.exists()

    # cleanup.sh refuses anything it did not write, and removes nothing then.
    decoy = router.root / "root/diagnostics_files_20200101-000000.zip.keep"
    decoy.write_text("not ours")
    link = router.root / "root/diagnostics_files_20200101-000000.zip"
    link.symlink_to(router.root / "etc/resolv.conf")
    for bad in ["/etc/resolv.conf", str(router.root / "etc/resolv.conf"), str(decoy),
                f"{path.parent}/../root/{path.name}x", "diagnostics_files_1-1.zip",
                str(router.root / "etc" / path.name), str(link)]:
        assert entry.cleanup([bad]) == 1, bad
        assert "nothing removed" in capsys.readouterr().err
    assert entry.cleanup([str(path), str(second)]) == 1
    capsys.readouterr()
    assert decoy.exists() and link.is_symlink() and (router.root / "etc/resolv.conf").exists()
    assert path.exists() and second.exists()
    # Its own zips, with upstream's messages; a missing one is not an error.
    assert entry.cleanup([str(path)]) == 0
    assert capsys.readouterr().out == f"Deleting diagnostics zip file {path}\n"
    assert not path.exists() and second.exists()
    assert entry.cleanup([str(path)]) == 0
    assert capsys.readouterr().out == f"File {path} not found in vm \n"


# -- the pieces ------------------------------------------------------------------------------


def test_secrets_are_what_the_declared_redaction_hides() -> None:
    from vragent.bags import redact

    docs = cloudstack_pair_docs()
    found = secrets(docs, redact(docs))
    assert set(SECRETS) <= found
    assert tls_pair()[1] in found  # the key as stored
    assert "10.10.1.10" not in found and "admin1" not in found  # what stays shown
    assert REDACTED == MODELS_REDACTED


def test_the_scrubber_replaces_every_form_and_short_secrets_only_as_words() -> None:
    scrub = Scrubber(["psk-one", "ab"])
    for form in forms("psk-one"):
        assert scrub.text(f"x {form} y") == f"x {REDACTED} y"
    assert scrub.text("tab ab cab") == f"tab {REDACTED} cab"
    assert Scrubber([]).text("unchanged") == "unchanged"
    assert scrub.data(b"\xff psk-one") == b"\xff " + REDACTED.encode()


@pytest.mark.parametrize(("shown", "text", "expected"), [
    (keepalived_shown, "    authentication {\n        auth_type PASS\n        auth_pass 93871234\n",
     f"    authentication {{\n        auth_type PASS\n        auth_pass {REDACTED}\n"),
    (haproxy_shown, "\tstats auth admin1:'AdMiN123'\n\tstats uri /admin?stats\n",
     f"\tstats auth admin1:{REDACTED}\n\tstats uri /admin?stats\n"),
    (haproxy_shown, "\tstats auth odd'word\n", f"\tstats auth {REDACTED}\n"),
    (swanctl_shown, "\tike-p1 {\n\t\tid-local = 100.64.10.10\n\t\tsecret = 0x70736b\n\t}\n",
     f"\tike-p1 {{\n\t\tid-local = 100.64.10.10\n\t\tsecret = {REDACTED}\n\t}}\n"),
])
def test_the_features_redactions(shown: Any, text: str, expected: str) -> None:
    assert shown(text) == expected
