"""The loadbalancer feature. haproxy gets no configuration yet: its health
check (checks.py) says so for every rule the management server expects to
be served."""

from __future__ import annotations

from ...feature import Feature

FEATURE = Feature(name="loadbalancer")
