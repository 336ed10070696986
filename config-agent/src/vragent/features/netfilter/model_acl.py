"""network_acl.json (``type: networkacl``): per-tier ordered ACLs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from ...models.common import (
    AclPort,
    Bag,
    Bool,
    CidrList,
    IfName,
    IPv4,
    Mac,
    Netmask,
    Str,
    check_protocol,
)

ACL_TYPES = ("tcp", "udp", "icmp", "all", "protocol")


class AclRule(Bag):
    # ``type`` is the protocol name; "protocol" means "the number in ``protocol``".
    type: Str
    cidr: CidrList
    allowed: Bool
    first_port: AclPort | None = None
    last_port: AclPort | None = None
    icmp_type: int | None = Field(default=None, ge=-1, le=255)
    icmp_code: int | None = Field(default=None, ge=-1, le=255)
    protocol: int | None = Field(default=None, ge=0, le=255)

    @field_validator("type")
    @classmethod
    def _type(cls, value: str) -> str:
        return check_protocol(value, ACL_TYPES)

    @model_validator(mode="after")
    def _ports(self) -> AclRule:
        if self.first_port is not None and self.last_port:
            if self.first_port > self.last_port:
                raise ValueError(
                    f"port range is reversed: first_port {self.first_port} > "
                    f"last_port {self.last_port}"
                )
        if self.type.lower() == "protocol" and self.protocol is None:
            raise ValueError("type 'protocol' needs a protocol number")
        return self

    @property
    def proto(self) -> str:
        """Protocol as nft spells it; "" means any."""
        low = self.type.lower()
        if low == "all":
            return ""
        if low == "protocol":
            return str(self.protocol)
        return low

    @property
    def ports(self) -> tuple[int, int] | None:
        """The destination ports matched; None means every port.

        The management server sends tcp/udp items without ports as 0-0
        (SetNetworkAclConfigItem builds TcpAclRule/UdpAclRule from the
        "start;end" it encoded, 0 for none); 0-65535 means the same.
        """
        if self.first_port is None:
            return None
        first, last = self.first_port, self.last_port
        if last is None or last == 0:
            last = first
        if first == 0 and last in (0, 65535):
            return None
        return max(first, 1), last


class NetworkAcl(Bag):
    type: Literal["networkacl"]
    device: IfName
    mac_address: Mac | None = None
    nic_ip: IPv4 | None = None
    nic_netmask: Netmask | None = None
    private_gateway_acl: Bool = False
    ingress_rules: list[AclRule] = []
    egress_rules: list[AclRule] = []
