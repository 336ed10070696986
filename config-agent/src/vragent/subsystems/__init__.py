"""One module per subsystem, each with the same four steps.

``desired(cfg, topology, settings)`` -> Desired   what the box should look like (pure)
``verify(desired)``                  -> [problem] what cannot be realised (pure)
``render(desired)``                  -> text/Ruleset, golden-tested (pure)
``apply(rendered, settings, dry_run)`` -> [change] the only step touching the system

``ORDER`` is the order they are applied in: filtering is in force before any
address comes up, and routes follow the addresses they depend on.
"""

from . import conntrack, interfaces, netfilter, routes, sysctl, vrrp

# conntrackd's configuration before keepalived's: the resident agent starts
# conntrackd first, so a takeover always has a state cache to commit.
ORDER = (sysctl, netfilter, interfaces, routes, conntrack, vrrp)

__all__ = ["ORDER", "conntrack", "interfaces", "netfilter", "routes", "sysctl", "vrrp"]
