"""``get_template_version.sh`` on a router that is not a system VM: the agent
says when its boot is over.

Upstream (apache/cloudstack): systemvm/debian/opt/cloud/bin/setup/postinit.sh
writes ``/var/cache/cloud/boot_up_done`` once the boot has run
update_config.py; systemvm/debian/opt/cloud/bin/get_template_version.sh waits
for that file (up to 240 s) before it answers ``<release>&<signature>``, and it
is the management server's first command to a new router
(VirtualRoutingResource, GetDomRVersionCmd). In a container nothing runs
postinit.sh: the agent writes the file after its first boot, and the
container's first process removes it (a start is a boot).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

from vragent_lab.netns import wait_for

from .conftest import Appliance


def template_version(appliance: Appliance) -> subprocess.CompletedProcess[str]:
    router = appliance.router
    return subprocess.run(["ip", "netns", "exec", router.ns, "env", f"VRAGENT_ROOT={router.root}",
                           str(Path(sys.executable).parent / "get_template_version.sh")],
                          capture_output=True, text=True, check=False, timeout=300)


def test_the_version_answers_once_the_agent_has_booted_the_router(appliance: Appliance) -> None:
    root = appliance.router.root
    (root / "etc").mkdir(parents=True, exist_ok=True)
    (root / "etc/cloudstack-release").write_text("Cloudstack Release vragent-test\n")
    (root / "var/cache/cloud").mkdir(parents=True, exist_ok=True)
    (root / "var/cache/cloud/cloud-scripts-signature").write_text("0123abcd\n")
    # The fixture's router has booted: the agent said so, and the answer comes
    # at once (not after get_template_version.sh's 240 s wait).
    wait_for(lambda: (root / "var/cache/cloud/boot_up_done").exists(), 10,
             "the agent to write boot_up_done after its boot")
    started = time.monotonic()
    done = template_version(appliance)
    assert done.returncode == 0, done
    assert done.stdout == "Cloudstack Release vragent-test&0123abcd\n"
    assert time.monotonic() - started < 30

    # A reboot: the first process (vragent-init, vragent/appliance.py) removes
    # the file and empties the run directory; the agent writes the file again
    # once it has rebuilt the box.
    appliance.stop()
    (root / "var/cache/cloud/boot_up_done").unlink()
    shutil.rmtree(root / "run/vragent")
    appliance.start()
    assert (root / "run/vragent/booted").exists()
    wait_for(lambda: (root / "var/cache/cloud/boot_up_done").exists(), 10,
             "the agent to write boot_up_done after its second boot")
    assert template_version(appliance).returncode == 0
