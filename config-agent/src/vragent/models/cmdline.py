"""cmd_line.json: the boot parameters (``type: cmdline``).

Every value arrives as a string, because it was a ``key=value`` of a kernel
command line. Keys the agent acts on are checked; the rest are kept as sent.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import field_validator

from .common import Bag
from .limits import REDACTED, escape

# Boot keys whose values are secrets: never echoed in an error or shown.
SECRET_KEYS = frozenset({"router_password", "api_token"})

ROUTER_TYPES = ("router", "vpcrouter", "dhcpsrvr")
_ETH_KEY = re.compile(r"^eth(\d+)(ip|mask)$", re.ASCII)
_ETH_DEV = re.compile(r"^eth\d+$", re.ASCII)
_IP_KEYS = ("gateway", "dns1", "dns2", "internaldns1", "internaldns2", "guestgw", "localgw",
            "sync_peer", "sync_vip")
# Both reach daemon configuration files (dnsmasq's domain, its header).
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*", re.ASCII)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", re.ASCII)
_MTU_KEYS = ("publicMtu", "privateMtu")
_URL = re.compile(r"^https?://[A-Za-z0-9.\[\]:-]+(:\d{1,5})?(/[A-Za-z0-9._~%/?&=+-]*)?$", re.ASCII)
_BOOL_VALUES = ("0", "1", "true", "false")
# The resident agent's API token: compared in constant time, never shown.
_TOKEN = re.compile(r"[A-Za-z0-9._~+/=-]{32,256}", re.ASCII)


_INT = re.compile(r"[0-9]{1,19}", re.ASCII)
# keepalived reads advert_int in hundredths of a second, 0.01-255.
_DECIMAL = re.compile(r"[0-9]{1,3}(\.[0-9]{1,2})?", re.ASCII)


def _shown(key: str, text: str) -> str:
    return REDACTED if key in SECRET_KEYS else escape(text, 60)


def _int(text: str) -> int:
    # int() also takes " 7", "1_0" and other scripts' digits; the daemons do not.
    if not _INT.fullmatch(text):
        raise ValueError("not a number (a whole number, digits 0-9)")
    return int(text)


def _decimal(text: str) -> float:
    if not _DECIMAL.fullmatch(text):
        raise ValueError("not a number (seconds such as 1 or 0.5, at most 2 decimals)")
    return float(text)


class CmdLine(Bag):
    type: Literal["cmdline"]
    cmd_line: dict[str, str]

    @field_validator("cmd_line")
    @classmethod
    def _check(cls, value: dict[str, str]) -> dict[str, str]:
        problems: list[str] = []
        for key, text in value.items():
            match = _ETH_KEY.fullmatch(key)
            try:
                if match and match.group(2) == "ip":
                    ipaddress.IPv4Address(text)
                elif match:
                    ipaddress.IPv4Network(f"0.0.0.0/{text}")
                elif key in _IP_KEYS:
                    ipaddress.IPv4Address(text)
                elif key == "vpccidr":
                    ipaddress.IPv4Network(text, strict=False)
                elif key == "type" and text not in ROUTER_TYPES:
                    raise ValueError(f"expected one of {', '.join(ROUTER_TYPES)}")
                elif key == "domain" and text and not _DOMAIN.fullmatch(text):
                    raise ValueError("not a domain name")
                elif key == "name" and not _NAME.fullmatch(text):
                    raise ValueError("not a router name (letters, digits, '.', '_' and '-')")
                elif key in ("redundant_router", "disable_rp_filter", "useextdns",
                             "sync_bfd", "is_routed") and (
                    text.lower() not in _BOOL_VALUES
                ):
                    raise ValueError("expected 0, 1, true or false")
                elif key == "advert_int" and not 0.01 <= _decimal(text) <= 255:
                    raise ValueError("must be between 0 and 255 seconds")
                elif key == "router_id" and not 1 <= _int(text) < 2**63:
                    # CloudStack sends the VPC's id (createRedundantRouterArgs);
                    # the VRRP router id is derived from it (config.vrid_of).
                    raise ValueError("must be a positive whole number")
                elif key == "router_pr" and not 1 <= _int(text) <= 254:
                    raise ValueError("must be 1-254 (255 is reserved for an address owner)")
                elif key in _MTU_KEYS and not 68 <= _int(text) <= 65535:
                    raise ValueError("must be an MTU between 68 and 65535")
                elif key == "vrrp_version" and text not in ("2", "3"):
                    raise ValueError("expected 2 or 3")
                elif key == "sync_dev" and not _ETH_DEV.fullmatch(text):
                    raise ValueError("expected a boot interface name such as eth1")
                elif key == "sync_bfd_interval" and not 10 <= _int(text) <= 10000:
                    raise ValueError("must be 10-10000 milliseconds")
                elif key == "sync_bfd_multiplier" and not 2 <= _int(text) <= 50:
                    raise ValueError("must be 2-50 (missed BFD packets before the peer is down)")
                elif key == "api_token" and not _TOKEN.fullmatch(text):
                    raise ValueError("expected 32-256 letters, digits or ._~+/=-")
                elif key == "api_port" and not 1 <= _int(text) <= 65535:
                    raise ValueError("must be a TCP port, 1-65535")
                elif key == "report_url" and not _URL.fullmatch(text):
                    raise ValueError("expected an http:// or https:// URL")
            except ValueError as exc:
                problems.append(f"{key}={_shown(key, text)}: {_reason(exc)}")
        if problems:
            raise ValueError("; ".join(problems))
        return value

    def get(self, key: str, default: str = "") -> str:
        return self.cmd_line.get(key, default)

    def flag(self, key: str) -> bool:
        return self.cmd_line.get(key, "0").lower() in ("1", "true")

    @property
    def router_type(self) -> str:
        return self.cmd_line.get("type", "vpcrouter")

    def interfaces(self) -> dict[str, tuple[str, str]]:
        """Addresses given on the boot command line, by device: {"eth0": (ip, mask)}."""
        found: dict[str, tuple[str, str]] = {}
        for key, text in self.cmd_line.items():
            match = _ETH_KEY.fullmatch(key)
            if match and match.group(2) == "ip" and text != "0.0.0.0":
                dev = f"eth{match.group(1)}"
                mask = self.cmd_line.get(f"{dev}mask")
                if mask:
                    found[dev] = (text, mask)
        return found


def _reason(exc: ValueError) -> str:
    text = str(exc)
    if text.startswith(("invalid literal", "could not convert")):
        return "not a number"
    if "does not appear to be" in text or "has host bits" in text or "is not a valid" in text:
        return "not a valid address"
    return text
