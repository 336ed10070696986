"""strongSwan's charon: its vici socket, swanctl, the data path, the router's identity.

Everything charon is told goes through swanctl (loading swanctl.conf: the
connections, pools and secrets, checked by swanctl's own parser) and vici
(what SAs exist; terminating and initiating them). Nothing here restarts
charon or reloads a connection that did not change: charon replaces a
loaded connection only when its configuration differs.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import VragentError
from ..store.store import atomic_write
from .cmd import spawn

TIMEOUT = 10.0


@dataclass(frozen=True)
class Paths:
    socket: Path
    swanctl: Path
    index: Path
    synced: Path
    # The router's remote-access private key. swanctl takes keys only from
    # private/ beside the --file it loads (and unloads any key loaded another
    # way, e.g. over vici), so a link to it is kept there.
    key: Path | None = None


@contextlib.contextmanager
def session(path: Path) -> Iterator[Any]:
    import vici  # type: ignore[import-untyped]

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(TIMEOUT)
        sock.connect(str(path))
        yield vici.Session(sock)


def _text(value: Any) -> Any:
    """vici's answer with bytes made text (recursively)."""
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, dict):
        return {k: _text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_text(v) for v in value]
    return value


def sas(path: Path) -> list[dict[str, Any]]:
    """Every IKE SA charon holds: its fields (``name``, ``state``,
    ``uniqueid``, ``remote-host``, ``remote-eap-id``…) and its ``child-sas``."""
    out = []
    with session(path) as v:
        for entry in v.list_sas():
            for name, ike in entry.items():
                out.append({"name": name, **_text(ike)})
    return out


def esp_in_kernel() -> bool:
    """Whether this kernel carries ESP itself: an ESP state is accepted (and
    removed at once). Without it, strongSwan's kernel-libipsec does, over TUN.

    Each probe has an SPI of its own: charon's launcher and the agent probe
    at the same moment when a tunnel and remote access arrive together (seen
    in the system VM), and the second to add one SPI was told "File exists"."""
    for _ in range(3):
        spi = f"{secrets.randbelow(0xFFFFFF00) + 0x100:#010x}"
        add = spawn(["ip", "xfrm", "state", "add", "src", "127.0.0.1", "dst", "127.0.0.1",
                     "proto", "esp", "spi", spi, "mode", "tunnel", "enc", "cbc(aes)",
                     "0x" + "00" * 16, "auth-trunc", "hmac(sha1)", "0x" + "00" * 20, "96"])
        if add.returncode == 0:
            spawn(["ip", "xfrm", "state", "delete", "src", "127.0.0.1", "dst", "127.0.0.1",
                   "proto", "esp", "spi", spi])
            return True
        if "File exists" not in add.stderr:
            return False
    return False


def ensure_identity(cert: Path, key: Path, server: str, dry_run: bool = False) -> list[str]:
    """The router's remote-access certificate (ECDSA P-256, self-signed, for
    ``server``), created once and kept; a new one only for a new address."""
    if cert.exists() and key.exists():
        subject = spawn(["openssl", "x509", "-in", str(cert), "-noout", "-subject",
                         "-nameopt", "RFC2253"])
        if subject.returncode == 0 and subject.stdout.strip() == f"subject=CN={server}":
            return []
    if dry_run:
        return [f"{cert.name} created"]
    cert.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # router.key and router.crt: "router.new" for both would be one file.
    tmp_key, tmp_cert = key.with_name(f"{key.name}.new"), cert.with_name(f"{cert.name}.new")
    done = spawn(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                  "ec_paramgen_curve:prime256v1", "-nodes", "-days", "3650",
                  "-keyout", str(tmp_key), "-out", str(tmp_cert), "-subj", f"/CN={server}",
                  "-addext", f"subjectAltName=IP:{server}"])
    if done.returncode != 0:
        raise VragentError(f"the remote-access certificate could not be created: "
                           f"{done.stderr.strip()}")
    tmp_key.chmod(0o600)
    tmp_key.replace(key)
    tmp_cert.replace(cert)
    return [f"{cert.name} created for {server}"]


def load(paths: Paths) -> None:
    """swanctl.conf into charon: connections (only changed ones replaced,
    removed ones unloaded), pools, secrets. Its parser is the checker."""
    if paths.key is not None:
        private = paths.swanctl.parent / "private"
        private.mkdir(mode=0o700, parents=True, exist_ok=True)
        link = private / paths.key.name
        if paths.key.exists() and not link.is_symlink():
            link.symlink_to(paths.key)
        elif not paths.key.exists():
            link.unlink(missing_ok=True)
    done = spawn(["swanctl", "--load-all", "--noprompt", "--file", str(paths.swanctl),
                  "--uri", f"unix://{paths.socket}"])
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise VragentError(f"swanctl rejected {paths.swanctl.name}: "
                           f"{'; '.join(detail[-3:])}")


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def sync(paths: Paths) -> list[str]:
    """Load swanctl.conf, then settle the SAs against the index: what the
    last sync loaded (``synced``) against what is wanted now. Returns what
    it did."""
    want, had = _json(paths.index), _json(paths.synced)
    conns: dict[str, Any] = want.get("conns", {})
    old_conns: dict[str, Any] = had.get("conns", {})
    users: dict[str, str] = want.get("users", {})
    old_users: dict[str, str] = had.get("users", {})
    done = []
    with session(paths.socket) as v:
        load(paths)
        current = [{"name": n, **_text(ike)} for e in v.list_sas() for n, ike in e.items()]
        stale = {n for n in old_conns if n not in conns}
        stale |= {n for n, c in conns.items() if n in old_conns
                  and old_conns[n].get("digest") != c.get("digest")}
        # Sessions of users removed, or whose password changed: exactly theirs
        # (upstream kills every session whose record merely contains the name).
        gone = {u for u in old_users if users.get(u) != old_users[u]}
        for ike in current:
            why = ("removed or changed" if ike["name"] in stale else
                   "user removed or changed" if ike.get("remote-eap-id") in gone else "")
            if not why:
                continue
            _drain(v.terminate({"ike-id": ike["uniqueid"], "timeout": 2000, "force": "yes"}))
            done.append(f"terminated {ike['name']} #{ike['uniqueid']} "
                        f"({ike.get('remote-eap-id') or ike.get('remote-host', '')}: {why})")
        kept = [ike for ike in current if ike["name"] not in stale]
        installed = {(ike["name"], c.get("name")) for ike in kept
                     for c in ike.get("child-sas", {}).values()
                     if c.get("state") in ("INSTALLED", "INSTALLING", "REKEYING")}
        # An IKE SA being set up carries its first CHILD_SA: not asked twice.
        connecting = {ike["name"] for ike in kept if ike.get("state") == "CONNECTING"}
        for name, c in sorted(conns.items()):
            if not c.get("initiate") or name in connecting:
                continue
            for child in c.get("children", []):
                if (name, child) in installed:
                    continue
                # Explicitly: kernel-libipsec cannot trigger on traffic (no trap policies).
                _drain(v.initiate({"ike": name, "child": child, "timeout": -1}))
                done.append(f"initiating {name}/{child}")
    atomic_write(paths.synced, json.dumps(want, sort_keys=True).encode(), 0o600)
    return done


def _drain(answer: Any) -> None:
    """vici's streamed commands: read to the end; a failure is not fatal."""
    with contextlib.suppress(Exception):
        for _ in answer:
            pass
