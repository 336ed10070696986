"""The loadbalancer feature. haproxy gets no configuration yet: the health
check says so for every rule the management server expects to be served."""

from __future__ import annotations

from ...feature import Check, Feature
from . import checks

FEATURE = Feature(name="loadbalancer",
                  checks=(Check("haproxy_check.py", "advanced", checks.haproxy),))
