"""Every script a management server calls (apache/cloudstack
core/src/main/java/com/cloud/agent/resource/virtualnetwork/VRScripts.java)
is either answered (installed where the server calls it) or deliberately
not, as cloudstack.py's docstring and the README say."""

from __future__ import annotations

import importlib.util
import tomllib

from vragent import cloudstack

from tests.conftest import REPO

ANSWERED = {
    "update_config.py", "vr_cfg.sh", "configure.py", "checkrouter.sh", "checkbatchs2svpn.sh",
    "getRouterMonitorResults.sh", "filesystem_writable_check.py", "diagnostics.py",
    "get_diagnostics_files.py", "cleanup.sh", "getRouterAlerts.sh",
}
SYSTEM_VM = {"get_template_version.sh", "patched.sh"}  # the system-VM issue's
NOT_ANSWERED = {
    "bumpup_priority.sh", "update_host_passwd.sh",
    "update_interface_config.sh",
    # before update_config.py, "mostly by HyperV"
    "ipsectunnel.sh", "edithosts.sh", "dnsmasq.sh", "ipassoc.sh", "loadbalancer.sh",
    "monitor_service.sh", "savepassword.sh", "vmdata.py", "vpc_snat.sh", "vpc_staticroute.sh",
    "vpn_l2tp.sh",
}
# VRScripts' script constants (the .json names are the bags' file names).
VRSCRIPTS = ANSWERED | SYSTEM_VM | NOT_ANSWERED


def scripts() -> set[str]:
    doc = tomllib.loads((REPO / "config-agent/pyproject.toml").read_text())
    return set(doc["project"]["scripts"])


def linked_in_image() -> set[str]:
    """The names both images link into /opt/cloud/bin: image/build.py's list,
    which agent-layer.sh links for the container and the system VM alike."""
    spec = importlib.util.spec_from_file_location("image_build", REPO / "image/build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return set(module.cloudstack_entry_points())


def test_every_answered_script_is_installed_where_the_server_calls_it() -> None:
    assert ANSWERED <= scripts()
    assert ANSWERED <= linked_in_image()


def test_no_script_deliberately_not_answered_is_installed() -> None:
    assert not NOT_ANSWERED & scripts()


def test_the_survey_names_every_script() -> None:
    doc = cloudstack.__doc__ or ""
    readme = (REPO / "README.md").read_text()
    for name in VRSCRIPTS:
        assert name in doc, name
        assert name in readme, name


def test_configure_has_nothing_left_to_do() -> None:
    assert cloudstack.configure(["monitor_service.json"]) == 0
