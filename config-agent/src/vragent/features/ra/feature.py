"""The ra feature: router advertisements (SLAAC prefix and RDNSS) on the
dual-stack tiers, by radvd (cs/CsVpcGuestNetwork.py add_radvd_conf).

It has no bag of its own: the guestnetwork bag's IPv6 fields say everything.
"""

from __future__ import annotations

from ...feature import Feature
from . import subsystem

FEATURE = Feature(name=subsystem.NAME, subsystem=subsystem)
