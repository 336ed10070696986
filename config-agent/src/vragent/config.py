"""A typed view of the whole stored configuration, as the reconcilers read it."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from . import box
from .bags import secret_fields
from .errors import StoreError
from .features import features
from .models import CmdLine, GuestNetwork, IpAddress, IpAlias, describe_errors

M = TypeVar("M", bound=BaseModel)


class Memo:
    """Models by the identity of the stored dict they were validated from.

    The stored documents are never mutated (merges build new dicts for what
    they change), so the same dict object means the same, already valid,
    content. Each entry keeps its dict alive, so an id is never reused while
    it is remembered; only what the last configuration used is kept.
    """

    def __init__(self) -> None:
        self._models: dict[int, tuple[object, BaseModel]] = {}
        self._used: dict[int, tuple[object, BaseModel]] = {}

    def validate(self, cls: type[M], raw: Any) -> M:
        key = id(raw)
        hit = self._models.get(key)
        if hit is not None and hit[0] is raw and type(hit[1]) is cls:
            model = hit[1]
        else:
            model = cls.model_validate(raw)
        self._used[key] = (raw, model)
        return model

    def remember(self, raw: Any, model: BaseModel) -> None:
        """``model`` was validated from ``raw`` already (the incoming bag)."""
        self._models[id(raw)] = (raw, model)

    def done(self) -> None:
        self._models, self._used = self._used, {}


@dataclass(frozen=True)
class RouterConfig:
    """The box's part (boot parameters, addresses, tiers, aliases: what
    ``topology`` resolves) and each feature's own part, as its ``view`` reads
    it from the stored documents (``part``)."""

    cmdline: CmdLine
    ips: dict[str, list[IpAddress]] = field(default_factory=dict)
    guests: dict[str, GuestNetwork] = field(default_factory=dict)
    aliases: list[IpAlias] = field(default_factory=list)
    parts: dict[str, Any] = field(default_factory=dict, repr=False)

    def part(self, feature: str, default: Any = None) -> Any:
        """Feature ``feature``'s view of the configuration."""
        return self.parts.get(feature, default)

    @classmethod
    def from_docs(cls, docs: dict[str, dict[str, Any]], memo: Memo | None = None) -> RouterConfig:
        """Validate the stored documents into models.

        ``memo`` (the resident agent's) carries the models of the previous
        call: a part of the configuration whose stored dict is the very same
        object as last time is not validated again, so one changed ACL among
        many costs only its own validation.
        """
        seen = memo if memo is not None else Memo()
        v = seen.validate
        try:
            cfg = cls(**box.view(docs, v),
                      parts={f.name: f.view(docs, v) for f in features() if f.view is not None})
        except ValidationError as exc:
            # Only reachable if the state directory was edited by hand.
            problems = "; ".join(describe_errors(exc, secret_fields()))
            raise StoreError(f"stored configuration is invalid: {problems}") from None
        seen.done()
        return cfg

    @property
    def redundant(self) -> bool:
        """One of a pair: the addresses VMs and the outside use are keepalived's.

        With a sync link (this appliance's boot keys) or without one
        (CloudStack mode: only the keys a management server sends), the router
        never holds a tier gateway or public IP by itself: two routers each
        holding them would be worse than none.
        """
        return self.ha is not None

    def api_port(self, default: int) -> int | None:
        """The API's TCP port on the control address; None without a token:
        then the API is on the unix socket only."""
        if not self.cmdline.get("api_token"):
            return None
        return int(self.cmdline.get("api_port") or default)

    @property
    def ha(self) -> HaParams | None:
        return HaParams.from_cmdline(self.cmdline)

    @property
    def ha_problem(self) -> str | None:
        """Why a sync link named at boot cannot be used (the pair runs in CloudStack mode)."""
        ha = self.ha
        dev = self.cmdline.get("sync_dev")
        if ha is None or ha.mode != CLOUDSTACK or not dev:
            return None
        return (f"sync_dev={dev}: the boot parameters give no address for it "
                f"({dev}ip/{dev}mask): running as CloudStack does, without a sync link")


SYNC_LINK = "sync-link"
# Fast detection's defaults (boot keys sync_bfd_interval, sync_bfd_multiplier),
# chosen from `make bench-failover` (see README, "Fast detection").
BFD_INTERVAL = 50
BFD_MULTIPLIER = 3
CLOUDSTACK = "cloudstack"


def vrid_of(router_id: int) -> int:
    """VRRP router id (1-255) of CloudStack's router_id (the VPC's id, unbounded)."""
    return (router_id - 1) % 255 + 1


@dataclass(frozen=True)
class HaParams:
    """What the pair is configured with, from the boot parameters.

    Two modes (see README, "The redundant pair"):

    * ``sync-link``: this appliance's keys name a link present from the first
      boot; VRRP and conntrackd run on it, so the pair is redundant at once.
    * ``cloudstack``: only what CloudStack's management server sends
      (``redundant_router=1``, ``router_id`` = the VPC id, ``router_password``,
      ``advert_int``; VirtualNetworkApplianceManagerImpl.createRedundantRouterArgs).
      The links come from the bags: see ``topology.resolve``.
    """

    mode: str
    name: str
    vrid: int
    priority: int
    advert_int: float
    version: int
    password: str
    report_url: str | None
    # sync-link mode only
    sync_dev: str = ""
    sync_ip: str = ""
    sync_prefix: int = 0
    peer: str | None = None  # unicast peer; None means multicast
    vip: str = ""  # carried in every advert; never changes while tiers come and go
    # Fast detection (sync_bfd=1): a BFD session to the peer, in ms and packets.
    bfd_interval: int | None = None
    bfd_multiplier: int = BFD_MULTIPLIER

    @classmethod
    def from_cmdline(cls, cmd: CmdLine) -> HaParams | None:
        if not cmd.flag("redundant_router"):
            return None
        advert_int = float(cmd.get("advert_int", "1") or "1")
        password = cmd.get("router_password")
        # Sub-second adverts exist only in VRRPv3. Without a sync link the
        # adverts cross a network other pairs share: VRRPv2's password keeps
        # them apart, so CloudStack mode defaults to it when it can.
        dev = cmd.get("sync_dev")
        addr = cmd.interfaces().get(dev) if dev else None
        mode = SYNC_LINK if addr is not None else CLOUDSTACK
        default_version = "3"
        if mode == CLOUDSTACK and password and advert_int.is_integer():
            default_version = "2"
        common = {
            "name": cmd.get("name", "router"),
            "vrid": vrid_of(int(cmd.get("router_id", "1") or "1")),
            "priority": int(cmd.get("router_pr", "100") or "100"),
            "advert_int": advert_int,
            "version": int(cmd.get("vrrp_version", default_version)),
            "password": password,
            "report_url": cmd.get("report_url") or None,
            "bfd_interval": int(cmd.get("sync_bfd_interval") or BFD_INTERVAL)
            if cmd.flag("sync_bfd") else None,
            "bfd_multiplier": int(cmd.get("sync_bfd_multiplier") or BFD_MULTIPLIER),
        }
        if addr is None:
            return cls(mode=CLOUDSTACK, **common)  # type: ignore[arg-type]
        ip, mask = addr
        net = ipaddress.IPv4Network(f"{ip}/{mask}", strict=False)
        return cls(
            mode=SYNC_LINK,
            sync_dev=dev,
            sync_ip=ip,
            sync_prefix=net.prefixlen,
            peer=cmd.get("sync_peer") or None,
            vip=cmd.get("sync_vip") or str(net.broadcast_address - 1),
            **common,  # type: ignore[arg-type]
        )
