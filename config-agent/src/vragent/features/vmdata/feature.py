"""The vmdata feature: VM metadata, user data and passwords, from the
``vmdata`` and ``vmpassword`` bags (cs_vmdata.py, cs_vmp.py), served by the
metadata service on every tier gateway."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from ...feature import BagType, Docs, Feature, Opening, Traffic
from ...models.limits import REDACTED
from . import subsystem
from .model_password import VmPassword
from .model_vmdata import VmData

# Metadata and user data (80) and the password server (8080):
# CsAddress.fw_router / fw_vpcrouter.
METADATA_PORT = subsystem.METADATA_PORT
PASSWORD_PORT = subsystem.PASSWORD_PORT


def view(docs: Docs, v: Any) -> tuple[dict[str, Any], dict[str, str]]:
    # VM address -> folder -> file -> data (validated when the bag came in).
    return (dict(sorted(docs.get("vmdata", {}).items())),
            dict(sorted(docs.get("vmpassword", {}).items())))


def traffic(cfg: Any, settings: Any, d: Any) -> Traffic:
    return Traffic(accept=(Opening("guests", "tcp", (METADATA_PORT, PASSWORD_PORT)),))


def _redact_passwords(doc: dict[str, Any]) -> dict[str, Any]:
    return {ip: REDACTED for ip in doc}


def merge_vmdata(docs: Docs, bag: BaseModel, sent: Any = None) -> Docs:
    assert isinstance(bag, VmData)
    vms = dict(docs.get("vmdata", {}))
    # The bag is the VM's whole data (cs_vmdata.merge replaces the list); an
    # empty value means that file is gone (CsVmMetadata deletes it).
    vm: dict[str, dict[str, str]] = {}
    for folder, name, data in bag.files():
        if data:
            vm.setdefault(folder, {})[name] = data
    if vm:
        vms[bag.vm_ip_address] = vm
    else:
        vms.pop(bag.vm_ip_address, None)
    return {**docs, "vmdata": vms}


def merge_vmpassword(docs: Docs, bag: BaseModel, sent: Any = None) -> Docs:
    assert isinstance(bag, VmPassword)
    return {**docs, "vmpassword": {**docs.get("vmpassword", {}), bag.ip_address: bag.password}}


FEATURE = Feature(
    name=subsystem.NAME,
    bags=(
        BagType("vmdata", VmData, merge_vmdata),
        BagType("vmpassword", VmPassword, merge_vmpassword, secret_fields=frozenset({"password"}),
                redact=_redact_passwords),
    ),
    view=view,
    subsystem=subsystem,
    traffic=traffic,
)
