"""Persistent configuration: CloudStack merge rules and the revisioned store."""

from .merge import merge
from .store import Revision, Store, atomic_write

__all__ = ["Revision", "Store", "atomic_write", "merge"]
