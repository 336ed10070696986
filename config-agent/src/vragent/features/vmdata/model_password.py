"""vm_password.json (``type: vmpassword``): the password a VM fetches once at first boot."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictStr, field_validator

from ...models.common import Bag, IPv4


class VmPassword(Bag):
    type: Literal["vmpassword"]
    ip_address: IPv4
    password: StrictStr = Field(repr=False)

    @field_validator("password")
    @classmethod
    def _password(cls, value: str) -> str:
        # Never echoed: not even in the error about it.
        if not value or len(value) > 512 or any(c in value for c in "\x00\r\n"):
            raise ValueError("must be 1-512 characters without NUL or line breaks")
        return value
