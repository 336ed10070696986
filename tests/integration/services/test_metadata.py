"""User data, metadata and the password server, fetched from the VMs with
curl and with cloud-init's own CloudStack data source.

The bags are vmdata and vmpassword as VmDataConfigItem / SavePasswordConfigItem
build them (user data base64). upstream (systemvm/debian/opt/cloud/bin/):
cs_vmdata.py (the list is the VM's whole data), configure.py CsVmMetadata
(files per VM, the ``.htaccess`` rewrite rules on REMOTE_ADDR: /latest/user-data,
/latest/meta-data/, /latest/meta-data/<file>, /latest/<file>; user data
base64-decoded), cs_vmp.py and passwd_server_ip.py (port 8080,
``DomU_Request: send_my_password`` / ``saved_password``, ``bad_request``).
"""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

from vragent_lab.netns import wait_for

from .conftest import SAMPLE_DIR, Appliance, in_vm, vm_ns

VM1_BAG = json.loads((SAMPLE_DIR / "vm_metadata_vm1.json").read_text())
VM2_BAG = json.loads((SAMPLE_DIR / "vm_metadata_vm2.json").read_text())


def curl(app: Appliance, vm: str, url: str, *headers: str) -> tuple[int, bytes]:
    argv = ["curl", "-s", "-m", "5", "-o", "-", "-w", "\n%{http_code}"]
    for h in headers:
        argv += ["-H", h]
    proc = subprocess.run(["ip", "netns", "exec", vm_ns(app.router, vm), *argv, url],
                          capture_output=True, check=False)
    body, _, code = proc.stdout.rpartition(b"\n")
    return int(code or 0), body


def _meta(bag: dict[str, object], name: str) -> str:
    return next(d for f, n, d in bag["vm_metadata"] if f == "metadata" and n == name)  # type: ignore[attr-defined]


def _userdata(bag: dict[str, object]) -> bytes:
    data = next(d for f, n, d in bag["vm_metadata"] if f == "userdata")  # type: ignore[attr-defined]
    return base64.b64decode(data)


def test_vm_reads_its_own_user_data_and_metadata(appliance: Appliance) -> None:
    code, body = curl(appliance, "vm1", "http://10.10.1.1/latest/user-data")
    assert (code, body) == (200, _userdata(VM1_BAG))
    code, body = curl(appliance, "vm1", "http://10.10.1.1/latest/meta-data/")
    names = [n for f, n, _ in VM1_BAG["vm_metadata"] if f == "metadata"]
    assert code == 200 and body.decode().splitlines() == names  # in the order sent
    for name in ("instance-id", "availability-zone", "public-keys", "local-hostname"):
        code, body = curl(appliance, "vm1", f"http://10.10.1.1/latest/meta-data/{name}")
        assert (code, body.decode()) == (200, _meta(VM1_BAG, name)), name
    # CloudStack's aliases: /latest/<file>.
    code, body = curl(appliance, "vm1", "http://10.10.1.1/latest/instance-id")
    assert (code, body.decode()) == (200, _meta(VM1_BAG, "instance-id"))


def test_a_vm_never_sees_another_vms_data(appliance: Appliance) -> None:
    code, body = curl(appliance, "vm2", "http://10.10.2.1/latest/user-data")
    assert (code, body) == (200, _userdata(VM2_BAG))
    code, body = curl(appliance, "vm2", "http://10.10.2.1/latest/meta-data/instance-id")
    assert body.decode() == _meta(VM2_BAG, "instance-id")
    # Nothing in the request names a VM: no path reaches vm1's data from vm2.
    for path in ("/latest/meta-data/public-keys", "/latest/../10.10.1.10.json",
                 "/latest/meta-data/..%2f10.10.1.10", "/10.10.1.10/latest/user-data"):
        code, body = curl(appliance, "vm2", f"http://10.10.2.1{path}")
        assert code == 404, path
        assert _meta(VM1_BAG, "public-keys").encode() not in body


def test_user_data_is_served_byte_for_byte(appliance: Appliance, tmp_path: Path) -> None:
    raw = bytes(range(256)) * 64 + b"\x00end"
    bag = {"type": "vmdata", "vm_ip_address": "10.10.1.10", "vm_metadata": [
        ["userdata", "user-data", base64.b64encode(raw).decode()],
        ["metadata", "instance-id", "i-1"]]}
    (tmp_path / "ud.json").write_text(json.dumps(bag))
    appliance.router.apply(tmp_path / "ud.json")
    code, body = curl(appliance, "vm1", "http://10.10.1.1/latest/user-data")
    assert code == 200 and body == raw
    # The bag is the VM's whole data: files it no longer lists are gone.
    code, _ = curl(appliance, "vm1", "http://10.10.1.1/latest/meta-data/public-keys")
    assert code == 404


def test_password_is_served_until_saved_then_never_again(appliance: Appliance) -> None:
    url = "http://10.10.1.1:8080/"
    assert curl(appliance, "vm1", url, "DomU_Request: send_my_password") == (200, b"Lab-Pass-4711")
    # Another VM asking gets nothing of it.
    assert curl(appliance, "vm2", "http://10.10.2.1:8080/",
                "DomU_Request: send_my_password") == (200, b"saved_password")
    assert curl(appliance, "vm1", url, "DomU_Request: saved_password") == (200, b"saved_password")
    assert curl(appliance, "vm1", url, "DomU_Request: send_my_password") == \
        (200, b"saved_password")
    code, body = curl(appliance, "vm1", url, "DomU_Request: something")
    assert body == b"bad_request"
    # Never in show, the logs or a world-readable file.
    shown = appliance.router.run("show", "vmpassword").stdout
    assert "Lab-Pass-4711" not in shown
    assert "Lab-Pass-4711" not in appliance.agent_log()
    pw = appliance.router.root / "var/lib/vragent/passwords.json"
    assert pw.stat().st_mode & 0o077 == 0


def test_a_new_password_for_the_vm_is_served_again(appliance: Appliance, tmp_path: Path) -> None:
    url = "http://10.10.1.1:8080/"
    curl(appliance, "vm1", url, "DomU_Request: saved_password")
    (tmp_path / "pw.json").write_text(json.dumps(
        {"type": "vmpassword", "ip_address": "10.10.1.10", "password": "Reset-0815"}))
    appliance.router.apply(tmp_path / "pw.json")
    wait_for(lambda: curl(appliance, "vm1", url, "DomU_Request: send_my_password")[1]
             == b"Reset-0815", 5, "the reset password")


CLOUD_INIT = r"""
import json, sys, tempfile
from cloudinit import distros, helpers
from cloudinit.sources import DataSourceCloudStack as cs
tmp = tempfile.mkdtemp()
paths = helpers.Paths({"cloud_dir": tmp, "run_dir": tmp})
distro = distros.fetch("debian")("debian", {}, paths)
ds = cs.DataSourceCloudStack(sys_cfg={"datasource_list": ["CloudStack"]}, distro=distro,
                             paths=paths)
# The router is found as a booted VM finds it first: the DNS name "data-server"
# (this namespace has no resolv.conf of its own, so ask the router directly).
import socket
import subprocess
vr = subprocess.run(["dig", "@" + sys.argv[1], "data-server", "+short"], capture_output=True,
                    text=True).stdout.strip()
cs.get_vr_address = lambda d: vr
ds.url_max_wait = 10
ok = ds.get_data()
print(json.dumps({"ok": ok, "vr": vr, "instance_id": ds.get_instance_id(),
                  "az": ds.availability_zone, "userdata": ds.userdata_raw.decode(),
                  "password": ds.get_config_obj().get("password"),
                  "hostname": ds.metadata.get("local-hostname")}))
"""


def test_cloud_init_cloudstack_datasource_reads_everything(appliance: Appliance) -> None:
    out = in_vm(appliance.router, "vm1", ["/usr/bin/python3", "-c", CLOUD_INIT, "10.10.1.1"])
    got = json.loads(out.strip().splitlines()[-1])
    assert got == {"ok": True, "vr": "10.10.1.1", "instance_id": _meta(VM1_BAG, "instance-id"),
                   "az": "zone-lab", "userdata": _userdata(VM1_BAG).decode(),
                   "password": "Lab-Pass-4711", "hostname": "vm1"}
    # cloud-init confirmed it: the password is not handed out again.
    assert curl(appliance, "vm1", "http://10.10.1.1:8080/",
                "DomU_Request: send_my_password") == (200, b"saved_password")
