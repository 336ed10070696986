"""What a feature declares about itself: the one contract every hub reads.

A feature is a package under ``vragent/features/`` (VyOS's one conf_mode
script per feature, with its templates under ``templates/<feature>/``). It
declares, in one place:

* its bag types (``BagType``): model, merge rule, store key, secret fields;
* its subsystem's four steps (``Subsystem``: desired, verify, render, apply);
* its daemons (``Daemon``, in the package's light ``daemon.py``): files
  relative to the settings' directories, checker, reload by signal or by
  command, master-only, start order, the steps it runs when the router
  becomes primary or backup, a fitness probe if mastership depends on it,
  and what of its files an operator may be given (``Shown``);
* the traffic it needs (``Traffic``), as data: what the router must accept,
  what keeps its own source address, what it forwards, what it keeps out
  of source NAT and what it counts;
* its health checks (``Check``), in the package's ``checks.py``;
* for the feature that elects the pair's master, what the pair's run time
  needs of the election (``Election``).

The hubs (the bag registry and merge, the stored configuration's view,
netfilter's openings, the pair's transitions and watchdog, the health
runner, supervisord's program list) are assembled from these declarations
and name no feature. This module is pure declarations: it imports nothing
of the agent but the settings, so the system layer and supervisord's
watchdog can use it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from .settings import Settings

if TYPE_CHECKING:
    from pydantic import BaseModel

    from .config import RouterConfig
    from .topology import Topology

Doc = dict[str, Any]
Docs = dict[str, Doc]


# -- what render returns -------------------------------------------------------


@runtime_checkable
class Rendered(Protocol):
    """What ``render`` returns: at least the text an operator and a golden file read."""

    def text(self) -> str: ...


class Text(str):
    """A render that is one text (a sysctl list, keepalived's configuration)."""

    __slots__ = ()

    def text(self) -> str:
        return str(self)


@dataclass(frozen=True)
class Files:
    """A render that is several files of one daemon, by file name (``hosts``, ``opts``…).

    An empty text means the file should not exist. Every name is one of the
    daemon's declared files (``system.daemons`` refuses any other); ``index``
    holds what operators and golden files read but nothing writes (what the
    feature keeps elsewhere, by digest).
    """

    files: tuple[tuple[str, str], ...]
    index: tuple[tuple[str, str], ...] = ()

    def __getitem__(self, name: str) -> str:
        return dict(self.files + self.index)[name]

    def text(self) -> str:
        parts = self.files + self.index
        if not any(body for _, body in parts):
            return ""
        return "".join(f"# ==> {name} <==\n{body}" for name, body in parts if body)


class Subsystem(Protocol):
    """A feature's four steps (VyOS conf_mode: get_config, verify, generate, apply).

    ``desired(cfg, topology, settings)``  what the box should look like (pure)
    ``verify(desired)``                    what of it cannot be realised (pure)
    ``render(desired)``                    a ``Rendered``: what golden tests compare (pure)
    ``apply(desired, rendered, settings, dry_run)``  the only step that touches the system
    """

    NAME: str

    def desired(self, cfg: RouterConfig, topo: Topology, settings: Settings) -> Any: ...

    def verify(self, d: Any) -> list[str]: ...

    def render(self, d: Any) -> Rendered: ...

    def apply(self, d: Any, rendered: Any, settings: Settings,
              dry_run: bool = False) -> list[str]: ...


# -- paths ------------------------------------------------------------------------

Where = Literal["conf", "run", "state", "log"]


@dataclass(frozen=True)
class Place:
    """A file of a feature, relative to one of the settings' directories: its
    name is written once, and every router on a host gets its own copy."""

    where: Where
    name: str

    def of(self, s: Settings) -> Path:
        base = {"conf": s.conf_dir, "run": s.run_dir, "state": s.state_dir,
                "log": s.log_dir}[self.where]
        return base / self.name


# -- bag types --------------------------------------------------------------------

# merge(docs, bag, sent): the new documents. ``sent`` is the bag as it arrived
# (a dict), for types that store it as sent rather than dumped from the model.
Merge = Callable[["Docs", "BaseModel", Any], "Docs"]


@dataclass(frozen=True)
class BagType:
    name: str  # CloudStack's "type"
    model: type[BaseModel]
    merge: Merge
    # The stored document it merges into (one JSON document per key).
    key: str = ""
    # Fields whose values are never shown (errors, the API's configuration).
    secret_fields: frozenset[str] = frozenset()
    # How the stored document is shown with its secrets replaced.
    redact: Callable[[Any], Any] | None = None
    # The stored document is keyed by tier device: a removed tier takes its entry along.
    per_tier: bool = False
    # The stored dict the bag itself became, when stored whole (config.Memo).
    stored_part: Callable[[Docs, BaseModel], Any] | None = None
    # The tier device this bag removes, if it removes one (every per_tier
    # document drops its entry).
    removes_tier: Callable[[BaseModel], str | None] | None = None

    @property
    def store_key(self) -> str:
        return self.key or self.name


def raw(model: BaseModel) -> dict[str, Any]:
    """What is stored of a bag: exactly what was sent (unknown fields
    included), minus nulls."""
    out: dict[str, Any] = model.model_dump(exclude_unset=True, by_alias=True)
    return out


# A feature's typed view of its stored documents: (docs, validate) -> part.
# ``validate(model, raw)`` is config.Memo.validate.
View = Callable[[Docs, Callable[[Any, Any], Any]], Any]


# -- daemons ----------------------------------------------------------------------

OnChange = Literal["reload", "restart"]


@dataclass(frozen=True)
class ConfigFile:
    path: Path
    # "reload": the running daemon re-reads it (``Daemon.reload``);
    # "restart": it only reads it at start.
    on_change: OnChange = "reload"
    # Run through the daemon's checker before it replaces the old one.
    checked: bool = False
    mode: int = 0o644  # 0o600 for files that hold a secret, from the first byte


# What a secret is replaced by wherever one is shown (models.limits.REDACTED).
REDACTED = "(secret, not shown)"


@dataclass(frozen=True)
class Shown:
    """A file of a daemon an operator may be given (getDiagnosticsData's zip):
    ``upstream``, the paths upstream's router keeps the same thing at (the
    management server asks for files by those names), and ``redact``, the
    text with every secret replaced. A configuration file that holds a
    secret (mode 0o600) goes into the zip only through its ``redact``."""

    path: Path
    upstream: tuple[str, ...] = ()
    redact: Callable[[str], str] | None = None


@dataclass(frozen=True)
class PairStep:
    """A command the daemon runs on a pair transition (its control command)."""

    argv: tuple[str, ...]
    # Before the new state is announced (see ha/transitions.py).
    critical: bool = False
    # What logs and the transition's timings call it (default: the argv).
    label: str = ""


@dataclass(frozen=True)
class Fitness:
    """Mastership depends on this daemon: ``probe`` says why it is unfit ("" when
    fit). Asked only once it has been running for ``grace`` seconds; unfit
    after ``fall`` failing ticks in a row (its own restart must not move
    mastership). Runs inside supervisord: keep it light."""

    probe: Callable[[Settings], str]
    fall: int = 1
    grace: float = 0.0


# SCHED_RR priority of a daemon's real-time processes: above every ordinary
# process, below the kernel's interrupt threads (50).
REALTIME = 40


@dataclass(frozen=True)
class Daemon:
    name: str  # supervisord's program name
    subsystem: str  # the feature whose subsystem renders its files
    argv: tuple[str, ...]  # what vragent-launch runs, in the foreground
    # files[0] is the main configuration: while it does not exist the daemon
    # does not run (nothing to do: not a pair, no tier yet…).
    files: tuple[ConfigFile, ...]
    start_order: int
    # The daemon's own checker: "{}" in an argument stands for the candidate
    # file's path; without one, the path is appended.
    check: tuple[str, ...] = ()
    reload_signal: str = "HUP"
    # A reload by command instead of a signal (swanctl --load-all, frr-reload).
    reload_command: tuple[str, ...] = ()
    # Reloads are coalesced to at most one per this many VRRP adverts (0: at once).
    reload_spacing_adverts: float = 0.0
    # On a pair, only the master runs it: it answers on addresses the master holds.
    master_only: bool = False
    # It serves once this unix socket accepts; daemons that need it wait for that.
    ready_socket: Path | None = None
    needs: tuple[str, ...] = ()
    # Left behind by a SIGKILL, refused at the next start: removed first.
    stale: tuple[Path, ...] = ()
    # When it stops, addresses go with it: the box is reconciled afterwards.
    # It is also the daemon that elects: its running says the pair runs.
    owns_addresses: bool = False
    # Run (the daemon's control command) after a restart while this router is backup.
    resync_on_backup: tuple[str, ...] = ()
    # Saves what the running daemon would lose at a reload (haproxy's server
    # state and counters), just before it is asked to reload. Returns what
    # it could not save (logged; the reload goes on).
    before_reload: Callable[[Settings], list[str]] | None = None
    # Drops from the daemon's own state what its configuration no longer has
    # (dnsmasq: leases of removed entries): called with running=False before
    # it starts and running=True after each reload. Returns what it dropped.
    prune: Callable[[Settings, bool], list[str]] | None = None
    # Pid files of its processes that run at real-time priority (REALTIME):
    # a busy host must not delay them. Set by the resident agent.
    realtime: tuple[Path, ...] = ()
    # Pair transitions: run when the router becomes each state, if configured.
    on_primary: tuple[PairStep, ...] = ()
    on_backup: tuple[PairStep, ...] = ()
    on_fault: tuple[PairStep, ...] = ()
    fitness: Fitness | None = None
    # What an operator may be given of its files (``Shown``): its
    # configuration files' redactions and upstream names, and files besides
    # them (its leases). Every log of the daemon is given, secrets scrubbed.
    shown: tuple[Shown, ...] = ()
    # supervisord's [program:…] settings beyond the common ones.
    stop_signal: str = "TERM"
    stop_wait: int = 10

    def check_argv(self, candidate: Path) -> list[str]:
        if any("{}" in a for a in self.check):
            return [a.replace("{}", str(candidate)) for a in self.check]
        return [*self.check, str(candidate)]

    @property
    def conf(self) -> Path:
        return self.files[0].path

    def file(self, name: str) -> ConfigFile:
        for f in self.files:
            if f.path.name == name:
                return f
        raise KeyError(f"{self.name} has no file {name!r}")

    def steps(self, status: str) -> tuple[PairStep, ...]:
        return {"PRIMARY": self.on_primary, "BACKUP": self.on_backup,
                "FAULT": self.on_fault}.get(status, ())


# -- traffic ----------------------------------------------------------------------

# Where a rule applies, by the role a link plays (topology resolves them):
# "vrrp": the link the pair's adverts cross; "sync": where conntrackd
# replicates; "control": the management server's link-local NIC; "guests":
# every guest tier; "public": every public link; "any": whichever link
# (the destination address says where).
Role = Literal["vrrp", "sync", "control", "guests", "public", "any"]


@dataclass(frozen=True)
class Opening:
    """Traffic the router itself must accept (netfilter's input chain)."""

    role: Role
    proto: str | int  # "tcp", "udp" or an IP protocol number
    ports: tuple[int, ...] = ()
    # Source addresses or CIDRs of one family, comma-separated (the peer's),
    # or "" for any.
    saddr: str = ""
    # The router's address it is for (a load balancer's public IP), or "" for any.
    daddr: str = ""
    # Pair traffic is accepted before any public IP's firewall can drop it.
    pair: bool = False
    # Only what arrived inside an IPsec SA (L2TP, which must never be served
    # in the clear).
    ipsec: bool = False


@dataclass(frozen=True)
class OwnSource:
    """Traffic this router sends from its own address on a link: never
    source-NATed, and let out by the backup's public guard (CloudStack mode)."""

    role: Role
    proto: str | int


@dataclass(frozen=True)
class Between:
    """Traffic between networks, by source and destination CIDRs (either
    family; empty: any), optionally of one protocol and destination ports."""

    saddr: tuple[str, ...] = ()
    daddr: tuple[str, ...] = ()
    proto: str = ""  # "tcp", "udp"; "" for any
    ports: tuple[int, ...] = ()


# Where a counted packet is seen: passing through the router, or to or from
# the router itself.
CountPath = Literal["forward", "input", "output"]
# A counter's link-matching side: a role (every link of it), "link" (the
# link the counter is for, see ``Count.per``), or "" for any link.
CountSide = Literal["", "link", "vrrp", "sync", "control", "guests", "public"]
_COUNTER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,99}", re.ASCII)


@dataclass(frozen=True)
class Count:
    """Traffic a feature counts (bytes and packets), once the router's
    filtering let it through: a named counter of the netfilter table, which a
    change of the configuration never resets (netfilter keeps it, or carries
    its value over when it reloads the whole table).

    ``per``: one counter per link of that role, ``{link}`` in ``name``
    standing for the link's name, and "link" in ``iif``/``oif`` for that
    link. ``tunnel``: only what came out of ("in") or goes into ("out") a
    VPN tunnel: an IPsec policy of the kernel, or a point-to-point device
    (PPP, or the TUN device of a userspace IPsec data path).
    """

    name: str
    path: CountPath = "forward"
    iif: CountSide = ""
    oif: CountSide = ""
    proto: str = ""  # "tcp", "udp"; "" for any
    tunnel: Literal["", "in", "out"] = ""
    per: Role | None = None

    def counter(self, link: str = "") -> str:
        """The counter's name in the table (for ``link`` when ``per`` is set):
        nft takes letters, digits and ``_.-`` in an object's name, so any other
        character of a link's name becomes ``_``."""
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", link)
        name = self.name.replace("{link}", safe)
        if not _COUNTER_NAME.fullmatch(name):
            raise ValueError(f"count {self.name!r}: {name!r} is not a counter name")
        return name


@dataclass(frozen=True)
class Traffic:
    """What a feature needs the router to let through, as data."""

    # To the router itself.
    accept: tuple[Opening, ...] = ()
    # Sent from the router's own address on a link.
    own_source: tuple[OwnSource, ...] = ()
    # Through the router: forwarded once nothing before (the tiers' ACLs, the
    # public IPs' firewall) dropped it (a VPN's peer networks and the tiers).
    forward: tuple[Between, ...] = ()
    # Never source-NATed (a tunnel's traffic keeps the tier's address).
    nat_exempt: tuple[Between, ...] = ()
    # Counted (usage accounting), in counters a reload keeps.
    count: tuple[Count, ...] = ()

    def __add__(self, other: Traffic) -> Traffic:
        return Traffic(self.accept + other.accept, self.own_source + other.own_source,
                       self.forward + other.forward, self.nat_exempt + other.nat_exempt,
                       self.count + other.count)


# -- health checks ---------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    success: bool
    message: str


def ok(message: str) -> Outcome:
    return Outcome(True, message)


def failed(message: str) -> Outcome:
    return Outcome(False, message)


class CheckContext(Protocol):
    """What a check reads (health's ``Context``)."""

    settings: Settings

    def data(self, key: str) -> list[dict[str, str]] | None: ...

    def single(self, key: str) -> dict[str, str]: ...

    def running(self, name: str) -> bool: ...


Kind = Literal["basic", "advanced"]


@dataclass(frozen=True)
class Check:
    name: str  # upstream's script name: the key results are stored and excluded by
    kind: Kind
    run: Callable[[Any], Outcome]


# -- metrics ----------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """Figures a feature reads when the metrics endpoint is scraped (Prometheus's
    gauge or counter family), by label values."""

    name: str
    help: str
    kind: Literal["gauge", "counter"]
    labels: tuple[str, ...] = ()
    samples: tuple[tuple[tuple[str, ...], float], ...] = ()


# -- the pair's election -----------------------------------------------------------


@dataclass(frozen=True)
class Takeover:
    """Fast takeover (ha/fast.py): when the elector reports ``down_priority``
    (a session to the master found it dead) this router raises its priority,
    and once the elector reports ``boosted_priority`` hands it ``resignation``,
    the packet a dying master would have sent, injected on ``dev``."""

    dev: str
    peer: str
    resignation: bytes
    down_priority: int
    boosted_priority: int


@dataclass(frozen=True)
class Election:
    """What the pair's run time (``ha``) needs of the feature that elects the
    master: it never reads the elector's configuration itself."""

    interface: str  # where the adverts go
    vip: str  # the address every advert carries: the master holds it
    # (address, link) the master holds and announces (gratuitous ARP, the
    # dual-master probe).
    announce: tuple[tuple[str, str], ...] = ()
    takeover: Takeover | None = None
    # Links where a backup holds no address at all (CloudStack mode's public
    # NIC): a neighbour entry it began there was never solicited, and a new
    # master forgets it (ha/transitions.py NEIGHBOURS).
    unsourced: tuple[str, ...] = ()


# -- the feature ------------------------------------------------------------------


@dataclass(frozen=True)
class Feature:
    name: str
    bags: tuple[BagType, ...] = ()
    # The feature's typed part of the stored configuration (RouterConfig.part).
    view: View | None = None
    subsystem: Subsystem | None = None
    # What the router must let through for it: (configuration, settings,
    # the desired state of its subsystem or None) -> Traffic.
    traffic: Callable[[RouterConfig, Settings, Any], Traffic] | None = None
    # Its health checks are in the package's checks.py (``CHECKS``), imported
    # only where checks run (``features.checks``).
    # Its daemons are in the package's daemon.py (``features.daemons``),
    # imported on its own where only daemons are needed (supervisord's
    # watchdog, vragent-launch).
    # The feature that elects the pair's master says what the pair's run time
    # needs of it: (configuration, topology, settings) -> Election, or None
    # while there is no election (not a pair, or not yet).
    election: Callable[[RouterConfig, Topology, Settings], Election | None] | None = None
    # Its figures on the metrics endpoint, read at scrape time (light: every
    # scrape asks every feature).
    metrics: Callable[[Settings], list[Metric]] | None = None
