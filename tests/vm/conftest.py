"""System VMs under QEMU: the disk ``make vm-image`` builds, brought up to date
once per session (a run with nothing changed takes seconds)."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from .harness import IMAGE, REPO, Vm


@pytest.fixture(scope="session")
def systemvm_image() -> Iterator[Path]:
    """The system VM's qcow2, as image/vm.py builds it from this checkout,
    kept for the session (a shared lock: a build for a newer checkout
    leaves it in place)."""
    proc = subprocess.run([sys.executable, str(REPO / "image/vm.py"), "--no-vhd"],
                          capture_output=True, text=True, check=False, timeout=1800)
    assert proc.returncode == 0, f"image/vm.py failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
    disk = IMAGE.resolve()
    with disk.open("rb") as f:
        fcntl.flock(f, fcntl.LOCK_SH)
        yield disk


@pytest.fixture
def prefix() -> str:
    """Names of everything a test creates (namespaces, taps, sockets)."""
    return f"vrvm{os.getpid() % 10000}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, None, None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.stash[FAILED] = report.failed


FAILED = pytest.StashKey[bool]()


def attach_serial_logs(request: pytest.FixtureRequest, vms: list[Vm]) -> None:
    """On a failure, each VM's console (kernel, systemd, the boot steps) in the report."""
    if request.node.stash.get(FAILED, False):
        for vm in vms:
            print(f"\n===== {vm.name}: serial console ({vm.serial}) =====\n{vm.serial_log()}")
