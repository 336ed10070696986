"""Persistent configuration: the revisioned store (merge rules are the bag types', see ``bags``)."""

from .store import Revision, Store, atomic_write

__all__ = ["Revision", "Store", "atomic_write"]
