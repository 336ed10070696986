"""site_2_site_vpn.json, remote_access_vpn.json, vpn_user_list.json.

The Java models (core/.../virtualnetwork/model/Site2SiteVpn.java,
RemoteAccessVpn.java, VpnUserList.java, VpnUser.java, serialised by the
facades Site2SiteVpnConfigItem, RemoteAccessVpnConfigItem and
VpnUsersConfigItem with snake_case names). Policies are checked as
NetUtils.isValidS2SVpnPolicy checks them; lifetimes as
Site2SiteVpnManagerImpl does (at most 86,400 s). Secrets (PSKs, passwords)
are never echoed, and reach strongSwan hex-encoded, so no character in them
can mean anything to swanctl's parser.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StrictInt, StrictStr, field_validator

from ...models.common import Bag, Bool, Cidr, IfName, IPv4, _cidr, _rfc1123

CIPHERS = ("3des", "aes128", "aes192", "aes256")
HASHES = ("md5", "sha1", "sha256", "sha384", "sha512")
GROUPS = ("modp1024", "modp1536", "modp2048", "modp3072", "modp4096", "modp6144", "modp8192")
IKE_VERSIONS = ("ike", "ikev1", "ikev2")
MAX_LIFETIME = 86400
_USER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@+-]{0,63}", re.ASCII)
# A peer's IKE identity, as an option beyond upstream (#13512): a domain name
# ("@vpn.example.org" or "vpn.example.org") or a key id ("keyid:" and hex).
_PEER_ID = re.compile(r"(@?[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|keyid:[0-9a-f]{2,128})",
                      re.ASCII)


def policy(value: str, ike: bool) -> list[tuple[str, str, str]]:
    """CloudStack's ``cipher-hash[;modpN]`` list, as (cipher, hash, group)."""
    _printable(value)
    out = []
    for item in value.split(","):
        head, sep, group = item.strip().partition(";")
        cipher, _, hash_ = head.partition("-")
        if cipher not in CIPHERS or hash_ not in HASHES:
            raise ValueError(f"{item.strip()!r} is not '<cipher>-<hash>[;<group>]' with cipher "
                             f"{'|'.join(CIPHERS)} and hash {'|'.join(HASHES)}")
        if sep and group not in GROUPS:
            raise ValueError(f"{item.strip()!r}: {group!r} is not one of {', '.join(GROUPS)}")
        if ike and not group:
            raise ValueError(f"{item.strip()!r}: an IKE policy needs a DH group (;modpN)")
        out.append((cipher, hash_, group))
    return out


def _printable(value: str) -> None:
    # Spaces around items are CloudStack's (it strips them); a control
    # character is never, and would reach messages that show the value.
    if not value.isprintable():
        raise ValueError("holds a control character")


def _ike_policy(value: str) -> str:
    policy(value, ike=True)
    return value


def _esp_policy(value: str) -> str:
    policy(value, ike=False)
    return value


def _cidrs(value: str) -> str:
    _printable(value)
    parts = [p.strip() for p in value.split(",") if p.strip()]
    if not parts:
        raise ValueError("no CIDR")
    for p in parts:
        try:
            _cidr(p)
        except ValueError as exc:
            raise ValueError(f"{p!r}: {exc}") from None
    return value


def _peer(value: str) -> str:
    """An IPv4 address, or a host name (the API takes either)."""
    if re.fullmatch(r"[0-9.]+", value):
        try:
            ipaddress.IPv4Address(value)
        except ValueError:
            raise ValueError("not an IPv4 address") from None
        return value
    try:
        _rfc1123(value)
    except ValueError:
        raise ValueError("not an IPv4 address or host name") from None
    return value


def _secret(value: str) -> str:
    # Never echoed: the message says what is wrong, not what was sent.
    if not value or len(value) > 256 or any(not c.isprintable() for c in value):
        raise ValueError("must be 1-256 printable characters (no control characters)")
    return value


Secret = Annotated[StrictStr, AfterValidator(_secret)]
PeerAddress = Annotated[StrictStr, AfterValidator(_peer)]
CidrList = Annotated[StrictStr, AfterValidator(_cidrs)]
Lifetime = Annotated[StrictInt, Field(ge=60, le=MAX_LIFETIME)]


class Site2SiteVpn(Bag):
    type: Literal["site2sitevpn"]
    local_public_ip: IPv4
    local_guest_cidr: Cidr
    local_public_gateway: IPv4 | None = None
    peer_gateway_ip: PeerAddress
    peer_guest_cidr_list: CidrList
    esp_policy: Annotated[StrictStr, AfterValidator(_esp_policy)]
    ike_policy: Annotated[StrictStr, AfterValidator(_ike_policy)]
    ipsec_psk: Secret = Field(repr=False)
    ike_lifetime: Lifetime = 86400
    esp_lifetime: Lifetime = 3600
    create: Bool = True
    dpd: Bool = False
    passive: Bool = False
    encap: Bool = False
    split_connections: Bool = False
    ike_version: Literal["ike", "ikev1", "ikev2"] = "ike"
    # Beyond upstream: the peer's IKE identity when it is not its address
    # (a peer behind a dynamic address or NAT; peer_gateway_ip "0.0.0.0"
    # then means any address, and the router only responds).
    peer_id: StrictStr | None = None
    delete_from_processed_cache: Bool = False

    @field_validator("peer_id")
    @classmethod
    def _peer_id(cls, value: str | None) -> str | None:
        if value is not None and not _PEER_ID.fullmatch(value):
            raise ValueError("not a peer identity (a domain name, '@' and a domain name, "
                             "or 'keyid:' and hex)")
        return value

    @property
    def key(self) -> str:
        return self.peer_gateway_ip if not self.any_address else f"id-{self.peer_id}"

    @property
    def any_address(self) -> bool:
        return self.peer_gateway_ip == "0.0.0.0"

    def peer_cidrs(self) -> list[str]:
        return [p.strip() for p in self.peer_guest_cidr_list.split(",") if p.strip()]


def _range(value: str) -> str:
    _printable(value)
    first, sep, last = value.partition("-")
    try:
        a, b = ipaddress.IPv4Address(first.strip()), ipaddress.IPv4Address(last.strip())
    except ValueError:
        raise ValueError("not '<first ipv4>-<last ipv4>'") from None
    if not sep or int(b) < int(a):
        raise ValueError("not '<first ipv4>-<last ipv4>' in order")
    return value


class RemoteAccessVpn(Bag):
    type: Literal["remoteaccessvpn"]
    create: Bool = True
    ip_range: Annotated[StrictStr, AfterValidator(_range)] | None = None
    preshared_key: Secret | None = Field(default=None, repr=False)
    vpn_server_ip: IPv4
    local_ip: IPv4 | None = None
    local_cidr: Cidr | None = None
    public_interface: IfName | None = None
    delete_from_processed_cache: Bool = False

    def addresses(self) -> tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]:
        assert self.ip_range is not None
        first, _, last = self.ip_range.partition("-")
        return ipaddress.IPv4Address(first.strip()), ipaddress.IPv4Address(last.strip())


def _user(value: str) -> str:
    if not _USER.fullmatch(value):
        raise ValueError("not a user name (letters, digits and '_.@+-', 1-64)")
    return value


def _ppp_secret(value: str) -> str:
    """What pppd can take as a chap-secrets secret (L2TP/IPsec's users):
    quoting and escaping carry any other printable character, but a secret
    that starts with '@' names a file pppd reads the secret from (pppd's
    auth.c scan_authfile checks the word after quotes are removed), and
    pppd keeps at most 255 bytes of it (MAXSECRETLEN)."""
    if value.startswith("@"):
        raise ValueError("must not start with '@' (pppd reads such a secret from a file)")
    if len(value.encode()) > 255:
        raise ValueError("must be at most 255 bytes (pppd's limit)")
    return value


class VpnUser(Bag):
    user: Annotated[StrictStr, AfterValidator(_user)]
    password: Annotated[Secret, AfterValidator(_ppp_secret)] = Field(repr=False)
    add: Bool = True


class VpnUserList(Bag):
    type: Literal["vpnuserlist"]
    vpn_users: list[VpnUser]
    # Unused (upstream's py2 merge stored it): a word, never configuration.
    vpn_type: Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9_.-]{0,32}$")] | None = None
    delete_from_processed_cache: Bool = False


__all__ = ["RemoteAccessVpn", "Site2SiteVpn", "VpnUser", "VpnUserList"]
