"""ip_associations.json (``type: ips``): public, guest and private-gateway addresses."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from .common import Bag, Bool, IPv4, Mac, Netmask, Str

NW_TYPES = ("public", "guest", "control")


class IpAddress(Bag):
    public_ip: IPv4
    netmask: Netmask
    add: Bool = True
    source_nat: Bool = False
    one_to_one_nat: Bool = False
    first_i_p: Bool = False
    new_nic: Bool = False
    is_private_gateway: Bool = False
    gateway: IPv4 | None = None
    vif_mac_address: Mac | None = None
    nic_dev_id: int | None = Field(default=None, ge=0, le=63)
    nw_type: Str = "public"
    # The NIC's MTU (public networks with a configured MTU, CloudStack 4.18+).
    mtu: int | None = Field(default=None, ge=68, le=65535)

    @field_validator("nw_type")
    @classmethod
    def _nw_type(cls, value: str) -> str:
        # Gson keeps the Java enum spelling ("Public"); compare without case.
        if value.lower() not in NW_TYPES:
            raise ValueError(f"expected one of {', '.join(NW_TYPES)}")
        return value

    @model_validator(mode="after")
    def _device_known(self) -> IpAddress:
        if self.vif_mac_address is None and self.nic_dev_id is None:
            raise ValueError("needs vif_mac_address or nic_dev_id to find its device")
        return self

    @property
    def kind(self) -> str:
        return self.nw_type.lower()

    @property
    def device_key(self) -> str:
        """The key CloudStack files the address under: ``eth<nic_dev_id>``."""
        return f"eth{self.nic_dev_id}" if self.nic_dev_id is not None else ""


class Ips(Bag):
    type: Literal["ips"]
    ip_address: list[IpAddress]
