"""CloudStack's entry points on a running router, called as its management
server calls them (apache/cloudstack):

- ``update_config.py <file> [false]``: systemvm/debian/opt/cloud/bin/update_config.py,
  merge.py QueueFile (the file in /var/cache/cloud, gzipped to processed/);
  the name as AbstractConfigItemFacade.appendUuidToJsonFiles makes it;
- ``vr_cfg.sh -c <file>``: vr_cfg.sh, the file laid out as
  VirtualRoutingResource.execute(AggregationControlCommand) writes it
  (FileConfigItem / ScriptConfigItem.getAggregateCommand);
- ``checkrouter.sh``: CheckRouterAnswer.parseDetails reads ``Status: ...``.
"""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from .api.conftest import ApiRouter, api_router  # noqa: F401 - the fixture
from .harness import SAMPLE

BIN = Path(sys.executable).parent


def entry(r: ApiRouter, script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", r.router.ns, "env",
                           f"VRAGENT_ROOT={r.router.root}", str(BIN / script), *args],
                          capture_output=True, text=True, check=False, timeout=120)


def one_line(name: str, **change: Any) -> str:
    """A bag as the management server's Gson writes it: one line."""
    return json.dumps({**json.loads((SAMPLE / name).read_text()), **change},
                      separators=(",", ":"))


def cache(r: ApiRouter) -> Path:
    return r.router.root / "var/cache/cloud"


def drop(r: ApiRouter, name: str, text: str) -> str:
    remote = f"{name}.{uuid.uuid4()}"
    (cache(r) / remote).write_text(text)
    return remote


def test_update_config_applies_the_file_and_moves_it_to_processed(
        api_router: ApiRouter) -> None:  # noqa: F811
    r = api_router
    for name in ("ip_associations.json", "guest_network_tier1.json"):
        remote = drop(r, name, one_line(name))
        proc = entry(r, "update_config.py", remote)
        assert proc.returncode == 0, proc.stderr
        assert not (cache(r) / remote).exists()
        archived = cache(r) / "processed" / f"{remote}.gz"
        assert gzip.decompress(archived.read_bytes()).decode() == one_line(name)
    assert "10.10.1.1/24" in r.router.sh("ip", "-4", "addr", "show", "eth2")
    rev = r.rev()

    # Already processed: a success, nothing done again (upstream's shortcut).
    assert entry(r, "update_config.py", remote).returncode == 0 and r.rev() == rev
    missing = entry(r, "update_config.py", "ip_associations.json.nosuchfile")
    assert missing.returncode == 1
    assert "Unable to read and access" in missing.stderr
    assert entry(r, "update_config.py", "../../etc/passwd").returncode == 1
    assert entry(r, "update_config.py").returncode == 1

    # "false": processed, then deleted rather than kept.
    remote = drop(r, "network_acl_tier1.json", one_line("network_acl_tier1.json"))
    assert entry(r, "update_config.py", remote, "false").returncode == 0
    assert not (cache(r) / remote).exists()
    assert not (cache(r) / "processed" / f"{remote}.gz").exists()
    assert "tcp dport 22 accept" in r.nft()

    # A bag the router rejects: the command's exit code and message, nothing changed.
    rev, table = r.rev(), r.nft()
    bad = one_line("network_acl_tier1.json", ingress_rules=[
        {"type": "tcp", "cidr": "0.0.0.0/0", "first_port": 70000, "last_port": 70000,
         "allowed": True}])
    remote = drop(r, "network_acl_tier1.json", bad)
    proc = entry(r, "update_config.py", remote)
    assert proc.returncode == 2 and "ingress_rules.0.first_port" in proc.stderr
    assert r.rev() == rev and r.nft() == table


def aggregated(items: list[tuple[str, str]], scripts: list[str] | None = None) -> str:
    """The VR-<uuid>.cfg file VirtualRoutingResource writes for a queue of bags."""
    out = ["#Apache CloudStack Virtual Router Config File", "<version>", "1.0", "</version>"]
    for remote, content in items:
        out += ["<file>", f"/var/cache/cloud/{remote}", content, "</file>",
                "<script>", f"/opt/cloud/bin/update_config.py {remote}", "</script>"]
    for script in scripts or []:
        out += ["<script>", f"/opt/cloud/bin/{script}", "</script>"]
    return "\n".join(out) + "\n"


def test_vr_cfg_applies_an_aggregated_batch_in_order(api_router: ApiRouter) -> None:  # noqa: F811
    r = api_router
    names = ["ip_associations.json", "guest_network_tier1.json", "guest_network_tier2.json",
             "network_acl_tier1.json", "forwarding_rules.json"]
    items = [(f"{n}.{uuid.uuid4()}", one_line(n)) for n in names]
    cfg = cache(r) / f"VR-{uuid.uuid4()}.cfg"
    cfg.write_text(aggregated(items, ["configure.py monitor_service.json"]))
    rev = r.rev()
    proc = entry(r, "vr_cfg.sh", "-c", str(cfg))
    assert proc.returncode == 0, proc.stderr
    assert r.rev() == rev + 1  # one command, one revision
    assert (cache(r) / "processed" / cfg.name).read_text().startswith("#Apache CloudStack")
    assert not cfg.exists()
    table = r.nft()
    assert "tcp dport 22 accept" in table and "dnat ip to 10.10.1.10:22" in table

    # An item that fails: those before it stay applied, those after it are not,
    # the server is told (exit 1 and upstream's line on stderr).
    good = (f"static_routes.json.{uuid.uuid4()}", one_line("static_routes.json"))
    bad = (f"network_acl_tier2.json.{uuid.uuid4()}",
           one_line("network_acl_tier2.json", egress_rules="not a list"))
    after = (f"staticnat_rules.json.{uuid.uuid4()}", one_line("staticnat_rules.json"))
    cfg = cache(r) / f"VR-{uuid.uuid4()}.cfg"
    cfg.write_text(aggregated([good, bad, after]))
    proc = entry(r, "vr_cfg.sh", "-c", str(cfg))
    assert proc.returncode == 1
    assert f'VR config: execution failed: "{cfg.name}"' in proc.stderr
    assert "egress_rules" in proc.stderr
    shown = json.loads(r.router.run("show").stdout)
    assert "staticroutes" in shown and "staticnatrules" not in shown
    assert (cache(r) / "processed" / cfg.name).exists()


def test_checkrouter_prints_the_status_line_cloudstack_parses(
        api_router: ApiRouter) -> None:  # noqa: F811
    proc = entry(api_router, "checkrouter.sh")
    assert proc.returncode == 0
    assert re.fullmatch(r"Status: (PRIMARY|BACKUP|FAULT|UNKNOWN)\n", proc.stdout)
    assert proc.stdout == api_router.router.run("state").stdout
    state = api_router.http("GET", "/v1/state").json()
    assert proc.stdout == state["status_line"] + "\n"
