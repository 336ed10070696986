"""Every path the agent uses, in one place.

Several routers run side by side on one host (one per network namespace in the
integration tests), so nothing may hard-code a path: everything hangs off
``root``, which is ``/`` on a real router.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    root: Path = Path("/")
    # Numbered so that ip rules/routes the agent owns can be told apart from
    # those of the kernel, keepalived or an operator.
    route_protocol: int = 196
    nft_table: str = "vragent"
    revisions_kept: int = 100

    @property
    def state_dir(self) -> Path:
        """Persistent configuration: survives reboots."""
        return self.root / "var/lib/vragent"

    @property
    def run_dir(self) -> Path:
        """What was applied since boot: lost on reboot, on purpose."""
        return self.root / "run/vragent"

    @property
    def conf_dir(self) -> Path:
        """Generated daemon configuration."""
        return self.root / "etc/vragent"

    @property
    def cmdline_file(self) -> Path:
        """Boot parameters, where CloudStack's early boot writes them."""
        return self.root / "var/cache/cloud/cmd_line.json"

    @property
    def lock_file(self) -> Path:
        return self.state_dir / "lock"

    @property
    def applied_netfilter(self) -> Path:
        return self.run_dir / "netfilter.applied.json"

    @classmethod
    def from_env(cls, root: str | None = None) -> Settings:
        value = root or os.environ.get("VRAGENT_ROOT") or "/"
        return cls(root=Path(value))
