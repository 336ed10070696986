"""The interfaces feature: links, MTUs and the addresses the router holds by
itself (the box's ``ips``, ``guestnetwork`` and ``ipaliases``; see ``box``)."""

from __future__ import annotations

from ...feature import Feature
from . import subsystem

FEATURE = Feature(name=subsystem.NAME, subsystem=subsystem)
