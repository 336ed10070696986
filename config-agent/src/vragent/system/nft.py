"""nftables: load a script as one transaction, list a table."""

from __future__ import annotations

import subprocess

from ..errors import ApplyError


def load(script: str) -> None:
    """``nft -f -``: the kernel commits all of it or none of it."""
    proc = subprocess.run(["nft", "-f", "-"], input=script, capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise ApplyError(f"nft rejected the ruleset, the previous one stays in force:\n"
                         f"{proc.stderr.strip()}")


def list_table(table: str) -> str | None:
    """Stateless listing (no counter values), so it only changes when rules do."""
    proc = subprocess.run(["nft", "-s", "list", "table", "inet", table], capture_output=True,
                          text=True, check=False)
    return proc.stdout if proc.returncode == 0 else None


def table_handle(table: str) -> int | None:
    import json

    proc = subprocess.run(["nft", "-j", "list", "tables"], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        return None
    for item in json.loads(proc.stdout).get("nftables", []):
        t = item.get("table")
        if t and t["family"] == "inet" and t["name"] == table:
            return int(t["handle"])
    return None
