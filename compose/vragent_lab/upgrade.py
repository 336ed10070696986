"""Upgrading a running redundant pair to a new router image, losing nothing.

``vragent-lab upgrade``.

Upstream upgrades routers by replacing them wholesale. A network or VPC
restart with cleanup (``NetworkOrchestrator.rollingRestartRouters`` in
apache/cloudstack ``engine/orchestration/src/main/java/org/apache/cloudstack/
engine/orchestration/NetworkOrchestrator.java``) destroys the backup
(``destroyExpendableRouters``), deploys a new router and sends it every bag
again, sleeps a fixed ``RVRHandoverTime`` for VRRP, then stops and destroys
the old master: the new router takes over only after its master-down
interval, with whatever connection state it had by then, and another backup
is deployed. Here:

1. the backup is replaced: stopped (a backup has nothing to hand over), and a
   new container created from the new image with the same boot parameters,
   the same NICs (same addresses, hence the same MACs) and the same state
   volume (``/var/lib/vragent``: the stored configuration). Then we wait,
   for conditions rather than a fixed time, until it is a healthy BACKUP in
   its new life: keepalived runs what its agent wrote, the stored revision
   is the one it had (nothing re-sent, nothing lost), and its conntrackd's
   external cache holds every established TCP connection the master tracks
   (it can take over without dropping one);
2. a planned switchover (``vragent switchover`` on the master,
   ``ha/switchover.py``) makes it master, with no instant at which neither
   router forwards;
3. the old master, now the backup, is replaced the same way.

The pair ends with the roles swapped: the router replaced first is master.
Traffic runs through the pair the whole time (a UDP probe every 10 ms and
long-lived TCP connections through source NAT, the port forward and static
NAT), so the report says what the upgrade cost. Lab tooling: the router
never runs this.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
from docker.models.containers import Container

from .lab import OUTSIDE_FAR, PUBLIC_FORWARD, PUBLIC_STATIC, Lab, LabError, run, wait_for
from .scenario import (
    CONNECTIONS,
    ECHO_TCP,
    ECHO_UDP,
    check_services,
    check_traffic,
    servers,
    step,
)
from .traffic import Probe, TcpHolder

CONNTRACKD = ("conntrackd", "-C", "/etc/vragent/conntrackd.conf")
AGENT_LABEL = "org.vragent.agent-version"  # image/Dockerfile labels every router image
RELEASE = "/etc/cloudstack-release"
PROBE_INTERVAL = 0.01
# A new router's boot: the container, supervisord, the agent rebuilding the
# box from its store, keepalived's first adverts heard, conntrackd's resync.
READY_TIMEOUT = 120.0
STOP_TIMEOUT = 15  # the compose file's stop_grace_period
# Docker's image references: name[:tag][@digest], or an image id.
IMAGE_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}")


class UpgradeRefused(LabError):
    """The lab is not in a state an upgrade may start from; nothing was changed."""


# -- pure decisions -------------------------------------------------------------------

def order(statuses: dict[str, str]) -> tuple[str, str]:
    """(the backup, the master): the backup is replaced first.

    Anything but exactly one PRIMARY and one BACKUP is refused: replacing a
    router of a pair that is not whole would leave nobody to forward."""
    masters = [r for r, s in statuses.items() if s == "PRIMARY"]
    backups = [r for r, s in statuses.items() if s == "BACKUP"]
    if len(statuses) != 2 or len(masters) != 1 or len(backups) != 1:
        shown = ", ".join(f"{r}: {s}" for r, s in sorted(statuses.items())) or "no routers"
        raise UpgradeRefused(f"the pair is not healthy ({shown}): an upgrade starts only "
                             "from one PRIMARY and one BACKUP")
    return backups[0], masters[0]


def image_ref(ref: str) -> str:
    """``ref`` if it reads as a docker image reference (it ends up in compose's environment)."""
    if not IMAGE_REF.fullmatch(ref):
        raise UpgradeRefused(f"--image {ref!r}: not an image reference "
                             "(name[:tag], name@digest or an image id)")
    return ref


_FLOW = re.compile(r"src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+)")
Flow = tuple[str, str, int, int]


def established(listing: str) -> set[Flow]:
    """The established TCP connections in a conntrackd cache listing (``-i`` or
    ``-e``), each by its original direction (src, dst, sport, dport)."""
    found: set[Flow] = set()
    for line in listing.splitlines():
        words = line.split()
        if not words or words[0] != "tcp" or "ESTABLISHED" not in words:
            continue
        if m := _FLOW.search(line):
            found.add((m[1], m[2], int(m[3]), int(m[4])))
    return found


def sync_problem(master: set[Flow], backup: set[Flow], at_least: int) -> str:
    """'' when the backup's external cache holds every established connection
    the master tracks, and the master tracks at least the ``at_least`` held
    open (an empty cache on both sides proves nothing); else what is missing."""
    if len(master) < at_least:
        return (f"the master's conntrackd tracks {len(master)} established connections, "
                f"fewer than the {at_least} held open")
    missing = master - backup
    if missing:
        return (f"{len(missing)} of the master's {len(master)} established connections "
                "are not in the backup's conntrackd cache yet")
    return ""


def current_revision(history: str) -> int:
    """The current revision, from ``vragent history`` (oldest first: the last line's number)."""
    lines = [line for line in history.splitlines() if line.strip()]
    first = lines[-1].split()[0] if lines else ""
    if not first.isdigit():
        raise LabError(f"cannot read the current revision from `vragent history`: "
                       f"{history.strip()[-200:]!r}")
    return int(first)


def extra_networks(attached: dict[str, str], declared: set[str],
                   nic_of_mac: dict[str, str], macs: dict[str, str]) -> list[tuple[str, str]]:
    """The networks a router is plugged into beyond its compose file's (tiers
    added at run time), as (network, IPv4 address), in the order of their NICs'
    names, so that plugged into the new container in that order they come back
    under the same names. ``attached``: network -> address; ``macs``: network ->
    the NIC's MAC; ``nic_of_mac``: MAC -> name inside the router."""
    def nic_order(net: str) -> tuple[int, str]:
        name = nic_of_mac.get(macs.get(net, ""), "")
        digits = name.lstrip("abcdefghijklmnopqrstuvwxyz")
        return (int(digits) if digits.isdigit() else 1 << 30, net)

    return [(net, attached[net]) for net in sorted(set(attached) - declared, key=nic_order)]


# The compose variables a router's own record is rendered from (labels: see
# recorded.py), and the label each comes back from.
RECORDED = {"VRLAB_MODE": "org.vragent.lab.mode", "VRLAB_ADVERT_INT": "org.vragent.lab.advert_int"}


def compose_overrides(router: str, image: str, cmdline: str,
                      labels: dict[str, str]) -> dict[str, str]:
    """What the new container of ``router`` is rendered with: the new image,
    and the old container's own boot parameters and lab record, whatever
    options this command was given (a replacement changes the image only)."""
    env = {"VRAGENT_IMAGE": image, f"VRLAB_{router.upper()}_CMDLINE": cmdline}
    env.update({var: labels[label] for var, label in RECORDED.items() if label in labels})
    return env


def phase_losses(marks: list[int], total: int) -> list[int]:
    """Probe packets lost per phase, from the cumulative count at each phase's
    end (``marks``) and the final count: late losses land in the last phase."""
    if not marks:
        return []
    ends = [*marks[:-1], max(total, marks[-1])]
    return [b - a for a, b in zip([0, *ends[:-1]], ends, strict=True)]


# -- the lab's routers ------------------------------------------------------------------

def _env(container: Container, key: str) -> str:
    for item in container.attrs["Config"].get("Env") or []:
        name, _, value = str(item).partition("=")
        if name == key:
            return value
    return ""


def nic_names(lab: Lab, router: str) -> dict[str, str]:
    """MAC -> NIC name inside the router."""
    links = json.loads(lab.exec(router, "ip", "-json", "link", "show"))
    return {str(link["address"]): str(link["ifname"]).split("@")[0] for link in links
            if link.get("link_type") == "ether"}


def revision(lab: Lab, router: str) -> int:
    return current_revision(lab.exec(router, "vragent", "history"))


def config_digest(lab: Lab, router: str) -> str:
    """The stored configuration's digest (``vragent show``, secrets redacted)."""
    return hashlib.sha256(lab.exec(router, "vragent", "show").encode()).hexdigest()[:16]


def release(lab: Lab, router: str) -> str:
    return lab.exec(router, "cat", RELEASE, check=False).strip()


def flows(lab: Lab, router: str, cache: str) -> set[Flow]:
    return established(lab.exec(router, *CONNTRACKD, cache, check=False))


def resolve_image(lab: Lab, ref: str | None) -> tuple[str, str]:
    """(reference, image id) to upgrade to: ``ref``, or what the routers were
    created from (re-created from it: fresh containers, a real replacement)."""
    if ref is None:
        refs = {r: str(lab.container(r).attrs["Config"]["Image"]) for r in lab.routers}
        if len(set(refs.values())) != 1:
            shown = ", ".join(f"{r}: {v}" for r, v in sorted(refs.items()))
            raise UpgradeRefused(f"the routers run different images ({shown}): "
                                 "name the one to upgrade to with --image")
        ref = next(iter(refs.values()))
    ref = image_ref(ref)
    try:
        image = lab.client().images.get(ref)
    except docker.errors.ImageNotFound:
        raise UpgradeRefused(f"--image {ref}: no such image here (`make image` builds "
                             "vragent-router:latest)") from None
    except docker.errors.APIError as exc:
        raise UpgradeRefused(f"--image {ref}: {exc.explanation or exc}") from None
    if AGENT_LABEL not in (image.labels or {}):
        raise UpgradeRefused(f"--image {ref}: not a router image (no {AGENT_LABEL} label; "
                             "`make image` builds one)")
    return ref, str(image.id)


def precheck(lab: Lab) -> tuple[str, str]:
    """(backup, master) of a pair an upgrade may start from, or UpgradeRefused."""
    if len(lab.routers) != 2:
        raise UpgradeRefused("an upgrade without an outage needs a redundant pair "
                             "(--topology redundant-vpc)")
    for r in lab.routers:
        try:
            container = lab.container(r)
        except LabError as exc:
            raise UpgradeRefused(f"the lab is not up: {exc}") from None
        if container.status != "running":
            raise UpgradeRefused(f"the lab is not up: {r} ({container.name}) is not running "
                                 f"({container.status}; `vragent-lab up`)")
    try:
        lab.wait_one_master(10)  # an election just under way settles in this time
    except LabError:
        pass  # refused below, with what each router says
    backup, master = order(lab.statuses())
    if not lab.converged():
        raise UpgradeRefused("the pair is not healthy: a router's keepalived does not run "
                             "the configuration its agent wrote (a change still loading?)")
    return backup, master


# -- one router replaced ------------------------------------------------------------------

@dataclass
class Replacement:
    router: str
    image_before: str
    image_after: str
    release_after: str
    revision_before: int
    revision_after: int
    config_before: str  # the stored configuration's digest
    config_after: str
    extra_networks: list[str]
    stop_ms: float  # graceful stop and removal of the old container
    start_ms: float  # the new container created (same NICs) and started
    ready_ms: float  # until a healthy BACKUP in its new life, config kept, conntrack in sync
    total_ms: float


def _ready(lab: Lab, router: str, master: str, since: float, rev: int, at_least: int) -> str:
    """'' once ``router`` is a healthy backup in sync; else what it still lacks."""
    try:
        state = json.loads(lab.exec(router, "vragent", "state", "--json", check=False))
    except (LabError, docker.errors.APIError, ValueError):
        return "its agent does not answer yet"
    if not state.get("agent_alive") or state.get("status") != "BACKUP" \
            or float(state.get("since", 0)) < since:
        return (f"it is {state.get('status')} ({state.get('reason')}), not yet a BACKUP "
                "in its new life")
    if not lab.converged():
        return "keepalived does not run the configuration its agent wrote yet"
    if (now := revision(lab, router)) != rev:
        return f"its stored revision is {now}, it was {rev} before the replacement"
    return sync_problem(flows(lab, master, "-i"), flows(lab, router, "-e"), at_least)


def wait_ready(lab: Lab, router: str, master: str, since: float, rev: int, at_least: int,
               timeout: float = READY_TIMEOUT) -> None:
    last = [""]

    def ready() -> bool:
        last[0] = _ready(lab, router, master, since, rev, at_least)
        return not last[0]

    try:
        wait_for(ready, timeout, f"{router} to be a healthy backup in sync", interval=0.5)
    except LabError as exc:
        raise LabError(f"{exc}: {last[0]} (look at: docker exec {lab.container(router).name} "
                       "tail /var/log/vragent/agent.log)") from None


def _attach(lab: Lab, router: str) -> None:
    """The namespace handle follows the new container (the traffic tools use the others)."""
    pid = lab.container(router).attrs["State"]["Pid"]
    run(["ip", "netns", "delete", lab.netns(router)], check=False)
    run(["ip", "netns", "attach", lab.netns(router), str(pid)])


def replace(lab: Lab, router: str, master: str, image: str, at_least: int) -> Replacement:
    """Replace the backup ``router`` by a new container from ``image``, keeping
    its boot parameters, NICs and state volume; back once it is a healthy
    backup in sync with ``master``."""
    client = lab.client()
    old = lab.container(router)
    image_before = str(old.image.id)
    cmdline = _env(old, "VRAGENT_CMDLINE")
    rev, digest = revision(lab, router), config_digest(lab, router)
    nics = nic_names(lab, router)
    networks = old.attrs["NetworkSettings"]["Networks"]
    declared = {str(n.name) for n in client.networks.list(
        filters={"label": f"com.docker.compose.project={lab.project}"})}
    extras = extra_networks({n: str(s.get("IPAddress") or "") for n, s in networks.items()},
                            declared, nics,
                            {n: str(s.get("MacAddress") or "") for n, s in networks.items()})
    started = time.monotonic()
    old.stop(timeout=STOP_TIMEOUT)
    old.remove(v=False)  # the state volume is a named one: it stays
    stopped = time.monotonic()
    # Created, not started: the NICs a tier added at run time gave it are
    # plugged in first, so the new router boots with all of them, as a VM
    # restarted with its NICs would. (compose plugs in the declared networks
    # beyond the first only as it starts the container.)
    env = compose_overrides(router, image, cmdline, dict(old.labels))
    lab.compose("up", "--no-start", "--no-deps", router, env=env)
    new = lab.container(router)
    for net, address in extras:
        client.networks.get(net).connect(new, ipv4_address=address)
    since = time.time()
    lab.compose("start", router, env=env)
    new = lab.container(router)
    _attach(lab, router)
    up = time.monotonic()
    wait_ready(lab, router, master, since, rev, at_least)
    ready = time.monotonic()
    if (now := nic_names(lab, router)) != nics:
        raise LabError(f"{router}'s NICs came back under other names: before {nics}, "
                       f"after {now}")
    return Replacement(
        router=router, image_before=image_before, image_after=str(new.image.id),
        release_after=release(lab, router), revision_before=rev,
        revision_after=revision(lab, router), config_before=digest,
        config_after=config_digest(lab, router), extra_networks=[n for n, _ in extras],
        stop_ms=round((stopped - started) * 1000), start_ms=round((up - stopped) * 1000),
        ready_ms=round((ready - up) * 1000), total_ms=round((ready - started) * 1000))


# -- the whole procedure -----------------------------------------------------------------

@dataclass
class UpgradeResult:
    image: str  # the reference upgraded to
    image_id: str
    master_before: str
    master_after: str
    states_after: dict[str, str]
    replaced: list[Replacement]
    switchover_ms: float  # `vragent switchover` on the master, until it answered (backup)
    probe: dict[str, Any]
    lost_per_step: dict[str, int]
    connections: dict[str, list[int]]  # name -> [opened, answering after each step]
    total_ms: float
    traffic_after: dict[str, Any] = field(default_factory=dict)
    services_after: dict[str, bool] = field(default_factory=dict)


def upgrade(lab: Lab, image: str | None = None) -> UpgradeResult:
    """The pair upgraded to ``image`` under traffic, or UpgradeRefused before anything changed."""
    backup, master = precheck(lab)
    ref, image_id = resolve_image(lab, image)
    print(f"upgrading {backup} (backup) and {master} (master) to {ref} ({image_id[:19]})",
          flush=True)
    for r in lab.routers:
        _attach(lab, r)
    with servers(lab), ExitStack() as stack:
        holders = {
            "source_nat": stack.enter_context(TcpHolder(lab.netns("vm1"), OUTSIDE_FAR,
                                                        ECHO_TCP, CONNECTIONS)),
            "port_forward": stack.enter_context(TcpHolder(lab.netns("outside"),
                                                          PUBLIC_FORWARD, 2222, 1)),
            "static_nat": stack.enter_context(TcpHolder(lab.netns("outside"), PUBLIC_STATIC,
                                                        80, 1)),
        }
        probe = stack.enter_context(Probe(lab.netns("vm1"), OUTSIDE_FAR, ECHO_UDP,
                                          interval=PROBE_INTERVAL))
        connections = {k: [h.check()["ok"]] for k, h in holders.items()}
        opened = sum(v[0] for v in connections.values())
        if opened != sum(h.count for h in holders.values()):
            raise UpgradeRefused(f"the pair does not carry traffic as configured: "
                                 f"{connections} connections answered")
        wait_for(lambda: probe.stats()["received"] >= 20, 10, "the probe to get replies")
        problem = [""]

        def synced() -> bool:
            problem[0] = sync_problem(flows(lab, master, "-i"), flows(lab, backup, "-e"),
                                      opened)
            return not problem[0]

        try:
            wait_for(synced, 20, f"the backup ({backup}) to hold the master's connections")
        except LabError:
            raise UpgradeRefused(f"the pair is not healthy: {problem[0]}") from None
        probe.reset()
        started = time.monotonic()
        marks: dict[str, int] = {}

        def mark(name: str) -> None:
            marks[name] = int(probe.stats()["lost"])
            for k, h in holders.items():
                connections[k].append(int(h.check()["ok"]))

        first = step(f"replacing {backup}, the backup, keeping its stored configuration; "
                     "until it is a healthy backup in sync")(replace)(lab, backup, master, ref,
                                                                     opened)
        mark(f"replace {backup}")
        switch = time.monotonic()
        step(f"planned switchover: {master} hands mastership to {backup}")(lab.exec)(
            master, "vragent", "switchover")
        switchover = time.monotonic() - switch
        if (now := lab.wait_one_master()) != backup:
            raise LabError(f"after the switchover {now} is master, not {backup}")
        mark(f"switchover {master} -> {backup}")
        second = step(f"replacing {master}, now the backup, the same way")(replace)(
            lab, master, backup, ref, opened)
        mark(f"replace {master}")
        total = time.monotonic() - started
        stats = probe.stop()
    losses = phase_losses(list(marks.values()), int(stats["lost"]))
    result = UpgradeResult(
        image=ref, image_id=image_id, master_before=master, master_after=lab.wait_one_master(),
        states_after=lab.statuses(), replaced=[first, second],
        switchover_ms=round(switchover * 1000), probe=stats,
        lost_per_step=dict(zip(marks, losses, strict=True)), connections=connections,
        total_ms=round(total * 1000))
    # The stored configuration in force through the new master, re-sent by nobody.
    result.traffic_after = check_traffic(lab, result.master_after)
    result.services_after = check_services(lab)
    return result


def upgrade_report(lab: Lab, result: UpgradeResult) -> Path:
    out = lab.workdir
    out.mkdir(parents=True, exist_ok=True)
    path = out / "lab-upgrade-report.json"
    doc = {**result.__dict__, "replaced": [r.__dict__ for r in result.replaced]}
    path.write_text(json.dumps(doc, indent=1))
    p = result.probe
    kept = ", ".join(f"{k} {v[-1]}/{v[0]}" for k, v in result.connections.items())
    first, second = result.replaced
    print(f"""
    upgrade report ({', '.join(lab.routers)} -> {result.image}, {result.image_id[:19]})
      master before: {result.master_before}, after: {result.master_after} \
({', '.join(f'{r} {s}' for r, s in result.states_after.items())})""")
    for r, when in ((first, "first, as the backup"), (second, "last, after the switchover")):
        print(f"""      {r.router} replaced {when}: {r.total_ms / 1000:.1f} s \
(stop {r.stop_ms / 1000:.1f}, start {r.start_ms / 1000:.1f}, healthy backup in sync \
{r.ready_ms / 1000:.1f})
        image {r.image_before[:19]} -> {r.image_after[:19]} ({r.release_after})
        revision {r.revision_before} -> {r.revision_after}, stored configuration \
{'unchanged' if r.config_before == r.config_after else 'CHANGED'}""")
    print(f"""      switchover: {result.switchover_ms / 1000:.1f} s
      probe: {p['sent']} sent every {PROBE_INTERVAL * 1000:.0f} ms, {p['lost']} lost \
({', '.join(f'{k}: {v}' for k, v in result.lost_per_step.items())}); longest gap \
{p['max_gap_ms']:.0f} ms
      connections kept: {kept}
      total: {result.total_ms / 1000:.1f} s
      written: {path}""")
    return path


def upgrade_job(lab: Lab, image: str | None = None) -> int:
    """``vragent-lab upgrade``: on a running lab, the pair upgraded to ``image``."""
    try:
        upgrade_report(lab, upgrade(lab, image))
    except UpgradeRefused as exc:
        print(f"\nupgrade refused (nothing was changed): {exc}", flush=True)
        return 2
    except (LabError, RuntimeError, OSError, docker.errors.DockerException) as exc:
        print(f"\nupgrade failed: {exc}\n  state: vragent-lab status", flush=True)
        return 1
    return 0
