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
    # those of the kernel, keepalived or an operator. Not in FRR's range
    # (186-198): zebra takes routes of those protocols as its own and sweeps
    # them at its start (196 is its "static").
    route_protocol: int = 157
    nft_table: str = "vragent"
    # Holds, during a planned switchover only, the rule that silences this
    # router's adverts.
    switchover_table: str = "vragent_switchover"
    revisions_kept: int = 100
    # keepalived reloads are coalesced to at most one per this many adverts.
    reload_spacing_adverts: float = 1.5
    # The API's TCP port on the control address (boot parameter api_port
    # overrides it); 3922 is CloudStack's SSH port to its routers.
    api_port: int = 3923

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
    def cache_dir(self) -> Path:
        """Where the management server puts bags and batches (VRScripts.CONFIG_CACHE_LOCATION)."""
        return self.root / "var/cache/cloud"

    @property
    def processed_dir(self) -> Path:
        """Bag files and batches once processed (update_config.py, vr_cfg.sh)."""
        return self.cache_dir / "processed"

    @property
    def cmdline_file(self) -> Path:
        """Boot parameters, where CloudStack's early boot writes them."""
        return self.cache_dir / "cmd_line.json"

    @property
    def supervisord_conf(self) -> Path:
        """supervisord's configuration as the appliance image installs it."""
        return self.root / "usr/share/vragent/supervisord.conf"

    @property
    def lock_file(self) -> Path:
        return self.state_dir / "lock"

    @property
    def applied_netfilter(self) -> Path:
        return self.run_dir / "netfilter.applied.json"

    @property
    def applied_interfaces(self) -> Path:
        """Addresses the agent put on each link: what to take back when a link is dropped."""
        return self.run_dir / "interfaces.applied.json"

    @property
    def log_dir(self) -> Path:
        return self.root / "var/log/vragent"

    # -- the redundant pair -------------------------------------------------

    def daemon_loaded(self, name: str) -> Path:
        """Digests of the files daemon ``name`` last (re)loaded, written by the resident agent."""
        return self.run_dir / f"{name}.loaded"

    @property
    def notify_fifo(self) -> Path:
        """The elector writes every transition here; the agent reads them in order."""
        return self.run_dir / "vrrp.fifo"

    # -- router services -------------------------------------------------------

    @property
    def scripts_signature(self) -> Path:
        """The md5 of what the router was built or last patched with, where
        CloudStack's systemvm has it (router_version_check.py compares its
        first line with scriptsVersion; see version.py)."""
        return self.cache_dir / "cloud-scripts-signature"

    @property
    def boot_cmdline(self) -> Path:
        """The boot parameters as a KVM host writes them through the guest
        agent (scripts/vm/hypervisor/kvm/patch.sh), one ``key=value ...`` line."""
        return self.cache_dir / "cmdline"

    @property
    def boot_up_done(self) -> Path:
        """Written once a system VM has booted (setup/postinit.sh); what
        get_template_version.sh waits for."""
        return self.cache_dir / "boot_up_done"

    @property
    def router_alerts_log(self) -> Path:
        """Daemons that died and came back, where monitorServices.py logs them
        and getRouterAlerts.sh reads them (see alerts.py)."""
        return self.root / "var/log/routerServiceMonitor.log"

    @property
    def release_file(self) -> Path:
        """The template's release line, where CloudStack's systemvm has it
        (router_version_check.py compares its first line with templateVersion)."""
        return self.root / "etc/cloudstack-release"

    @property
    def agent_socket(self) -> Path:
        """Datagram socket of the resident agent (wake-ups: reload keepalived)."""
        return self.run_dir / "agent.sock"

    @property
    def api_socket(self) -> Path:
        """The resident agent's HTTP API for this host (root-only): the CLI's way in."""
        return self.run_dir / "api.sock"

    @property
    def monitor_results(self) -> Path:
        """Health-check results, CloudStack's layout, one file per kind (basic, advanced)."""
        return self.state_dir / "monitor"

    @property
    def vrrp_health_file(self) -> Path:
        """keepalived's track_file: 0 when fit for mastership, 1 when not
        (written by supervisord's watchdog, ha/watchdog.py)."""
        return self.run_dir / "vrrp-health"

    @property
    def vrrp_health_reason(self) -> Path:
        """Why the watchdog last found this router unfit (empty when fit)."""
        return self.run_dir / "vrrp-health.reason"

    @property
    def vrrp_yield_file(self) -> Path:
        """keepalived's track_file for a planned switchover: 1 lowers this
        router's priority to the floor (written by the resident agent)."""
        return self.run_dir / "vrrp-yield"

    @property
    def vrrp_boost_file(self) -> Path:
        """keepalived's track_file for a fast takeover: 1 raises this router's
        priority to the top while it takes over from a peer BFD found dead."""
        return self.run_dir / "vrrp-boost"

    @property
    def agent_heartbeat(self) -> Path:
        """Touched by the resident agent every loop: the watchdog reads it."""
        return self.run_dir / "agent.heartbeat"

    @property
    def agent_pid(self) -> Path:
        return self.run_dir / "agent.pid"

    @property
    def supervisor_socket(self) -> Path:
        return self.run_dir / "supervisor.sock"

    @property
    def ha_state(self) -> Path:
        """The pair state this router last reached (what ``vragent state`` prints)."""
        return self.state_dir / "ha-state.json"

    @property
    def report_spool(self) -> Path:
        """Transition reports not yet acknowledged by the management server."""
        return self.state_dir / "reports"

    @classmethod
    def from_env(cls, root: str | None = None) -> Settings:
        value = root or os.environ.get("VRAGENT_ROOT") or "/"
        return cls(root=Path(value))
