"""The sysctl feature: kernel settings, checked where they cannot be written."""

from __future__ import annotations

from ...feature import Feature
from . import subsystem

FEATURE = Feature(name=subsystem.NAME, subsystem=subsystem)
