"""The metadata and password service as a supervised daemon (``service.py``)."""

from __future__ import annotations

from ...feature import ConfigFile, Daemon, Place
from ...settings import Settings

NAME = "metadata"
# Where it listens (re-read on SIGHUP).
CONF = Place("conf", "metadata.json")
# User data and metadata, one file per VM address.
VMDATA = Place("state", "vmdata")
# What was written there, by digest: only VMs whose data changed are rewritten.
VMDATA_INDEX = Place("run", "vmdata.applied.json")
# VM passwords not yet fetched (root-only).
PASSWORDS = Place("state", "passwords.json")
# Digests of the passwords VMs confirmed (``saved_password``): never served again.
SERVED = Place("state", "passwords.served.json")


def daemons(s: Settings) -> tuple[Daemon, ...]:
    return (Daemon(
        name=NAME,
        subsystem="vmdata",
        argv=("vragent-metadata", "--root", str(s.root)),
        files=(ConfigFile(CONF.of(s), "reload"),),
        start_order=40,
        master_only=True,
    ),)
