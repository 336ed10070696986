"""vm_metadata.json (``type: vmdata``): one VM's user data and metadata files.

``vm_metadata`` is a list of ``[folder, file, data]`` (VmDataCommand's
vmData; cs_vmdata.py stores the list as the VM's whole data): folder
``userdata`` (base64, served decoded) or ``metadata`` (served as is), an
empty ``data`` meaning that file is gone. Names become paths on the router and in
URLs, so they are held to one safe path segment each.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, StrictStr, field_validator

from ...models.common import Bag, Bool, IPv4

FOLDERS = ("userdata", "metadata")
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", re.ASCII)


def _segment(value: str) -> str:
    if not _SEGMENT.fullmatch(value) or ".." in value:
        raise ValueError("not a file name (letters, digits, '.', '_' and '-'; "
                         "no '/', '..', NUL or newline)")
    return value


def _folder(value: str) -> str:
    if value not in FOLDERS:
        raise ValueError(f"unknown folder (expected {' or '.join(FOLDERS)})")
    return value


Folder = Annotated[StrictStr, AfterValidator(_folder)]
FileName = Annotated[StrictStr, AfterValidator(_segment)]


class VmData(Bag):
    type: Literal["vmdata"]
    vm_ip_address: IPv4
    # Lists, not tuples: the bag is stored exactly as it came.
    vm_metadata: list[list[StrictStr | None]]
    delete_from_processed_cache: Bool = False

    @field_validator("vm_metadata")
    @classmethod
    def _items(cls, items: list[list[str | None]]) -> list[list[str | None]]:
        for i, item in enumerate(items):
            if len(item) != 3:
                raise ValueError(f"item {i}: must be [folder, file, data]")
            folder, name, _ = item
            for what, value, check in (("folder", folder, _folder), ("file", name, _segment)):
                if value is None:
                    raise ValueError(f"item {i}: {what} is missing")
                try:
                    check(value)
                except ValueError as exc:
                    raise ValueError(f"item {i}: {what} {value[:64]!r}: {exc}") from None
        return items

    def files(self) -> list[tuple[str, str, str | None]]:
        return [(str(f), str(n), d) for f, n, d in self.vm_metadata]


def decode_userdata(data: str) -> bytes:
    """User data as the VM gets it.

    CloudStack stores and sends it base64-encoded, sometimes without padding
    (CsVmMetadata pads it, then decodes). Anything that is not base64 (the
    reference bag's placeholder "user-data") is served as sent, rather than
    decoded leniently into garbage as upstream does.
    """
    try:
        return base64.b64decode(data + "=" * (-len(data) % 4), validate=True)
    except binascii.Error:
        return data.encode()
