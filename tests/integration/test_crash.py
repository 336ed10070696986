"""Crash safety: SIGKILL the agent at random points during applies.

Every iteration starts ``vragent apply`` with a bundle of bags that moves the
router to another of a few configurations, kills it with SIGKILL after a random
delay, and then checks

1. the store: it loads, its history is contiguous and every manifest's
   objects exist and match their digests, and the current configuration is
   the previous one or the new one (exactly which follows from whether a new
   revision appeared), ``vragent show`` and ``vragent history`` work;
2. convergence: ``vragent reconcile`` (or re-applying the killed bundle, as the
   management plane would) exits 0, the router's kernel state then equals the
   state a clean, never-killed apply of that same configuration produced, and
   a second ``vragent reconcile`` finds nothing to change.

Each bundle sets every bag type it touches completely (forwards and static
routes outside the variant are revoked), so applying variant ``k`` yields the
same configuration from any starting point, and the expected kernel state of
each variant is recorded once by clean applies before the killing starts. Each
killed apply also carries a marker (an unknown field the agent stores and
ignores), so every commit writes new objects and the new revision can be told
from the old one. The history is filled up to ``revisions_kept`` first, so
every commit also prunes a manifest and its objects.

The delays are drawn over the measured duration of a clean apply of the same
variant, part of them concentrated on the few milliseconds in which the store
commits, so kills land before, inside and after the commit; the phase each
kill hit is counted and printed (``pytest -rP`` or ``-s`` shows it).

One lab serves all iterations; the ``router`` fixture tears it down even when
the test fails.

Environment: ``VRAGENT_STRESS_KILLS`` (default 50) sets the number of kills,
``VRAGENT_STRESS_SEED`` the seed (default: random, always printed; the seed
reproduces the schedule of variants and delays, not the exact timing).
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vragent.cli import main as cli_main
from vragent.settings import Settings
from vragent.store import Store
from vragent_lab.netns import wait_for

from .harness import ALL_BAGS, SAMPLE, Router

KILLS = int(os.environ.get("VRAGENT_STRESS_KILLS", "50"))
SEED_ENV = os.environ.get("VRAGENT_STRESS_SEED")
COMMAND_TIMEOUT = 60.0

PF_IP = "100.64.10.11"  # the sample's port-forwarding address
EXTRA_IP = "100.64.10.13"  # added and removed by the variants
VM1, VM2 = "10.10.1.10", "10.10.2.10"
PGW_PEER = "172.30.0.254"

# -- the configurations the router is moved between ------------------------

FORWARD_UNIVERSE = [
    # (public ports, private ports, protocol, VM)
    ("2222:2222", "22:22", "tcp", VM1),  # the sample's
    ("8000:8000", "80:80", "tcp", VM1),
    ("8443:8443", "443:443", "tcp", VM2),
    ("5000:5009", "5000:5009", "udp", VM2),
    ("6000:6004", "7000:7004", "tcp", VM2),  # shifted: one DNAT rule per port
]
ROUTE_UNIVERSE = ["10.99.0.0/24", "10.99.1.0/24", "10.99.2.0/24", "10.99.3.0/24"]


def _acl_rules(rng: random.Random, count: int, base_port: int) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for i in range(count):
        kind = rng.random()
        cidr = ("0.0.0.0/0" if kind < 0.3 else
                f"10.{rng.randrange(1, 250)}.{rng.randrange(256)}.0/24")
        if kind < 0.05:
            rules.append({"type": "icmp", "cidr": cidr, "icmp_type": rng.choice([-1, 0, 8]),
                          "icmp_code": -1, "allowed": rng.random() < 0.8})
            continue
        first = base_port + i * 7 + rng.randrange(5)
        last = first + (rng.randrange(1, 20) if rng.random() < 0.2 else 0)
        rules.append({"type": rng.choice(["tcp", "udp"]), "cidr": cidr, "first_port": first,
                      "last_port": last, "allowed": rng.random() < 0.85})
    return rules


def _acl_bag(sample: str, ingress: list[dict[str, Any]] | None,
             egress: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    bag: dict[str, Any] = json.loads((SAMPLE / sample).read_text())
    if ingress is not None:
        bag["ingress_rules"] = ingress
    if egress is not None:
        bag["egress_rules"] = egress
    return bag


def _ips_bag(extra: bool) -> dict[str, Any]:
    return {"type": "ips", "ip_address": [{
        "public_ip": EXTRA_IP, "source_nat": False, "add": extra, "one_to_one_nat": False,
        "first_i_p": False, "gateway": "100.64.10.1", "netmask": "255.255.255.0",
        "vif_mac_address": "02:00:0a:00:00:01", "nic_dev_id": 1, "new_nic": False,
        "nw_type": "Public",
    }]}


def _forwards_bag(wanted: set[int]) -> dict[str, Any]:
    rules: list[dict[str, Any]] = []
    for i, (pub, priv, proto, vm) in enumerate(FORWARD_UNIVERSE):
        rules.append({"revoke": i not in wanted, "protocol": proto, "source_ip_address": PF_IP,
                      "source_port_range": pub, "destination_ip_address": vm,
                      "destination_port_range": priv})
    # Adds first, in a fixed order: the stored list then does not depend on history.
    rules.sort(key=lambda r: r["revoke"])
    return {"type": "forwardrules", "rules": rules, "delete_from_processed_cache": False}


def _routes_bag(wanted: set[str]) -> dict[str, Any]:
    return {"type": "staticroutes", "routes": [
        {"revoke": net not in wanted, "ip_address": "172.30.0.1", "gateway": PGW_PEER,
         "network": net} for net in ROUTE_UNIVERSE]}


def make_variants(rng: random.Random) -> list[list[dict[str, Any]]]:
    """Bundles of bags; applying bundle ``k`` yields configuration ``k`` from any state."""
    big_a = _acl_rules(rng, 300, 1000)
    big_b = [dict(r) for r in big_a]
    for r in rng.sample(big_b, 30):  # a few changed rules: a delta of a few chunks
        if "first_port" in r:
            r["first_port"] = r["last_port"] = r["first_port"] + 1
    return [
        [  # the sample bags
            _ips_bag(False),
            _acl_bag("network_acl_tier1.json", None),
            _acl_bag("network_acl_tier2.json", None),
            _forwards_bag({0}),
            _routes_bag({"10.99.0.0/24"}),
        ],
        [
            _ips_bag(True),
            _acl_bag("network_acl_tier1.json", big_a),
            _acl_bag("network_acl_tier2.json", None),
            _forwards_bag({0, 1, 2}),
            _routes_bag({"10.99.0.0/24", "10.99.1.0/24"}),
        ],
        [
            _ips_bag(True),
            _acl_bag("network_acl_tier1.json", big_b, _acl_rules(rng, 40, 20000)),
            _acl_bag("network_acl_tier2.json", _acl_rules(rng, 150, 30000)),
            _forwards_bag({0, 3, 4}),
            _routes_bag({"10.99.2.0/24", "10.99.3.0/24"}),
        ],
        [
            _ips_bag(False),
            _acl_bag("network_acl_tier1.json", _acl_rules(rng, 400, 40000)),
            _acl_bag("network_acl_tier2.json", _acl_rules(rng, 150, 30000)),
            _forwards_bag(set()),
            _routes_bag(set()),
        ],
    ]


MARKER = "test_marker"  # an unknown field: stored with the bag, ignored by the agent


def write_bundle(bags: list[dict[str, Any]], where: Path, marker: str | None) -> list[Path]:
    """The bundle's files; ``marker`` goes into its last ACL, so the commit writes a new object."""
    where.mkdir(parents=True, exist_ok=True)
    paths = []
    for j, bag in enumerate(bags):
        if marker is not None and bag["type"] == "networkacl" and bag["device"] == "eth3":
            bag = {**bag, MARKER: marker}
        path = where / f"{j}_{bag['type']}.json"
        path.write_text(json.dumps(bag))
        paths.append(path)
    return paths


def marker_of(docs: dict[str, Any]) -> str | None:
    marker = docs.get("networkacl", {}).get("eth3", {}).get(MARKER)
    return None if marker is None else str(marker)


def canonical(docs: dict[str, Any]) -> str:
    """The configuration without the marker: identifies the variant."""
    acls = {dev: {k: v for k, v in acl.items() if k != MARKER}
            for dev, acl in docs.get("networkacl", {}).items()}
    return json.dumps({**docs, "networkacl": acls}, sort_keys=True)


# -- observing the router and its store -------------------------------------


def normalized(snap: dict[str, str]) -> dict[str, str]:
    """The snapshot without what depends on history rather than on configuration.

    nft lists chains in creation order, which differs between a full table load
    and a delta that adds chains: chains are compared as a set, each with its
    rules in order. ip rules of equal priority list in insertion order; the
    agent's same-priority rules have disjoint selectors, so order is irrelevant.
    """
    chains: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in snap["nft"].splitlines():
        if line.startswith("\tchain "):
            current = chains.setdefault(line.split()[1], [])
        elif line.startswith("\t}"):
            current = None
        elif current is not None and line.strip():
            current.append(line.strip())
    nft = "".join(f"chain {name}\n" + "".join(f"  {r}\n" for r in rules)
                  for name, rules in sorted(chains.items()))
    return {
        "addr": snap["addr"],
        "route": snap["route"],
        "rule": "".join(sorted(snap["rule"].splitlines(keepends=True))),
        "nft": nft,
    }


def snapshot_diff(got: dict[str, str], want: dict[str, str]) -> str:
    out: list[str] = []
    for key, value in want.items():
        if got.get(key) != value:
            out += difflib.unified_diff(value.splitlines(), got.get(key, "").splitlines(),
                                        f"expected {key}", f"actual {key}", lineterm="", n=1)
    return "\n".join(out[:80])


def netns_pids(ns: str) -> list[str]:
    proc = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True,
                          check=False)
    return proc.stdout.split()


def cmdline(pid: int) -> list[bytes]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return []


def is_agent(pid: int) -> bool:
    """Has ``ip netns exec`` exec'd the agent yet (the same pid, now running python)?"""
    return cmdline(pid)[:3] == [sys.executable.encode(), b"-m", b"vragent"]


def cli(root: Path, *args: str) -> str:
    """``vragent`` commands that only read the store run in-process (no netns needed)."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = cli_main(["--root", str(root), *args])
    assert code == 0, f"vragent {' '.join(args)}: exit {code}\n{buf.getvalue()}"
    return buf.getvalue()


def store_files(store: Store) -> tuple[set[str], set[str]]:
    """Names in objects/ and revisions/ (temp files included)."""
    return set(os.listdir(store.objects)), set(os.listdir(store.revisions))


def check_store(root: Path, store: Store, most: int) -> list[int]:
    """Everything a crashed command may not break; returns the kept revision numbers.

    ``most``: how many revisions may be kept. A kill before pruning leaves one too
    many, which the next completed prune removes along with its own.
    """
    docs = store.load()  # must not raise
    numbers = store._revision_numbers()
    assert numbers, "no revision left"
    assert numbers == list(range(numbers[0], numbers[-1] + 1)), f"history has gaps: {numbers}"
    assert len(numbers) <= most, f"{len(numbers)} revisions kept, at most {most} expected"
    for n in numbers:
        r = store.revision(n)
        assert r.rev == n, f"manifest {n} says rev {r.rev}"
        for bag_type, digest in r.docs.items():
            data = (store.objects / f"{digest}.json").read_bytes()
            assert hashlib.sha256(data).hexdigest() == digest, f"rev {n} {bag_type}: corrupt"
    shown = json.loads(cli(root, "show"))
    assert shown == docs, "vragent show differs from the store"
    lines = cli(root, "history").splitlines()
    assert [int(ln.split()[0]) for ln in lines] == numbers, "vragent history lists other revisions"
    return numbers


# -- running the agent --------------------------------------------------------


def agent_argv(router: Router, *args: str) -> list[str]:
    # ``ip netns exec`` execs the command: the Popen pid becomes the agent itself.
    return ["ip", "netns", "exec", router.ns, sys.executable, "-m", "vragent",
            "--root", str(router.root), *args]


def run_agent(router: Router, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(agent_argv(router, *args), capture_output=True, text=True,
                          timeout=COMMAND_TIMEOUT, check=False)
    assert proc.returncode == 0, (f"vragent {args[0]}: exit {proc.returncode}\n"
                                  f"{proc.stdout}\n{proc.stderr}")
    return proc


@dataclass
class Timing:
    objects: float  # first new file in objects/ (the commit starts)
    manifest: float  # the new manifest is in place (the commit is done)
    total: float  # the agent exited


def timed_apply(router: Router, store: Store, bundle: list[Path], check_pid: bool) -> Timing:
    """A clean apply, watching when the commit starts and ends."""
    objects0, _ = store_files(store)
    rev0 = store.current_rev()
    start = time.monotonic()
    proc = subprocess.Popen(agent_argv(router, "apply", *map(str, bundle)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t_obj = t_man = None
    deadline = start + COMMAND_TIMEOUT
    verified = not check_pid
    while proc.poll() is None:
        assert time.monotonic() < deadline, "apply did not finish"
        now = time.monotonic() - start
        if not verified and is_agent(proc.pid):
            # The signal must reach the agent, not a wrapper that would leave it running:
            # the pid we signal runs python and is still our own child.
            stat = Path(f"/proc/{proc.pid}/stat").read_text()
            assert int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid(), stat
            verified = True
        if t_obj is None and set(os.listdir(store.objects)) - objects0:
            t_obj = now
        if t_man is None and store.current_rev() != rev0:
            t_man = now
        time.sleep(0.0005)  # polling interval while watching the commit
    total = time.monotonic() - start
    out, err = proc.communicate()
    assert proc.returncode == 0, f"clean apply failed:\n{out}\n{err}"
    assert verified, "never saw the agent run under the Popen pid"
    assert store.current_rev() == rev0 + 1, "a clean apply of another variant made no revision"
    t_man = total if t_man is None else t_man
    return Timing(t_man if t_obj is None else t_obj, t_man, total)


@dataclass
class Expected:
    canon: str  # the configuration, marker removed
    snap: dict[str, str]  # normalized kernel state after a clean apply of it
    timings: list[Timing] = field(default_factory=list)


def seed_history(store: Store, keep_free: int) -> None:
    """Fill the history up to near ``revisions_kept`` so that the killed commits also prune.

    The filler revisions carry a distinct cmdline document each, so a prune
    deletes manifests and objects; the last commit restores the configuration
    the system runs.
    """
    with store.locked():
        current = store.load()
        while len(store._revision_numbers()) < store.settings.revisions_kept - keep_free:
            n = store.current_rev()
            filler = {**current, "cmdline": {**current["cmdline"], "test-filler": n}}
            store.commit(filler, f"test filler {n}")
        store.commit(current, "test: back to the running configuration")


PHASES = [
    ("before", "killed in ip netns exec (agent not started)"),
    ("before", "agent running, store untouched"),
    ("mid-commit", "store files written, manifest not in place"),
    ("mid-commit", "manifest in place, pruning unfinished"),
    ("after", "committed, system still old"),
    ("after", "committed, system partly changed"),
    ("after", "committed, system fully changed"),
    ("after", "agent exited before the kill"),
]


def test_sigkill_during_apply_store_loads_and_reapply_converges(router: Router,
                                                                tmp_path: Path) -> None:
    seed = int(SEED_ENV) if SEED_ENV else random.SystemRandom().randrange(2**32)
    print(f"\ncrash test: seed {seed} (VRAGENT_STRESS_SEED={seed} reproduces the schedule), "
          f"{KILLS} kills")
    rng = random.Random(seed)
    t_start = time.monotonic()
    store = Store(Settings(root=router.root))
    run_agent(router, "apply", *(str(SAMPLE / b) for b in ALL_BAGS))
    variants = make_variants(rng)
    bundles = [write_bundle(bags, tmp_path / f"v{k}", None) for k, bags in enumerate(variants)]

    # Clean applies: the configuration and kernel state of every variant, and how
    # long applying it takes. Two rounds in different orders also show that the
    # state reached depends only on the configuration, not on the way there.
    seen: dict[int, Expected] = {}
    current = -1  # the sample bags' configuration is variant 0's: start elsewhere
    for k in [1, 2, 3, 0, 2, 0, 3, 1, 0, 2]:
        assert k != current
        timing = timed_apply(router, store, bundles[k], check_pid=not seen)
        canon = canonical(store.load())
        snap = normalized(router.snapshot())
        if k not in seen:
            seen[k] = Expected(canon, snap)
        else:
            assert canon == seen[k].canon, f"variant {k}: configuration depends on history"
            assert snap == seen[k].snap, (f"variant {k}: kernel state depends on history\n"
                                          f"{snapshot_diff(snap, seen[k].snap)}")
        seen[k].timings.append(timing)
        current = k
    expected = [seen[k] for k in range(len(variants))]
    variant_of = {e.canon: k for k, e in enumerate(expected)}
    assert len(variant_of) == len(expected), "two variants are the same configuration"
    for k, e in enumerate(expected):
        t = e.timings
        print(f"variant {k}: apply {min(x.total for x in t) * 1000:.0f}-"
              f"{max(x.total for x in t) * 1000:.0f} ms, commit between "
              f"{min(x.objects for x in t) * 1000:.0f} and "
              f"{max(x.manifest for x in t) * 1000:.0f} ms")
    seed_history(store, keep_free=0)  # from here on, every commit prunes
    run_agent(router, "reconcile")
    assert normalized(router.snapshot()) == expected[current].snap

    phases: Counter[str] = Counter()
    recoveries: Counter[str] = Counter()
    orphans = 0
    for i in range(KILLS):
        new = rng.choice([k for k in range(len(variants)) if k != current])
        e = expected[new]
        t_total = max(x.total for x in e.timings)
        # Most kills at a uniformly random instant of a typical apply; the others
        # shortly after the agent's first write into the store, since the commit
        # lasts only a few milliseconds and uniform kills would rarely hit it.
        aimed = rng.random() < 0.35
        delay = rng.uniform(0.0, 0.002) if aimed else rng.uniform(0.0, t_total)
        recover = rng.choice(["reconcile", "reapply"])
        where = (f"seed {seed}, kill {i}: variant {current} -> {new}, delay "
                 f"{delay * 1000:.1f} ms{' after the first store write' if aimed else ''}, "
                 f"recovery by {recover}")
        marker = f"kill-{i}"
        bundle = write_bundle(variants[new], tmp_path / f"kill{i}", marker)

        rev0 = store.current_rev()
        kept0 = len(store._revision_numbers())
        docs0 = store.load()
        files0 = store_files(store)
        proc = subprocess.Popen(agent_argv(router, "apply", *map(str, bundle)),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if aimed:
            # Busy-wait (no sleep: temp files live for about a millisecond).
            deadline = time.monotonic() + COMMAND_TIMEOUT
            while proc.poll() is None and store_files(store) == files0:
                assert time.monotonic() < deadline, f"{where}: the agent never wrote"
        # The one deliberate sleep: the random instant of the kill is the point of the test.
        time.sleep(delay)
        exited = proc.poll() is not None
        started = is_agent(proc.pid)
        if not exited:
            proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=COMMAND_TIMEOUT)
        if proc.returncode != -signal.SIGKILL:  # it finished first, maybe just before
            exited = True
            assert proc.returncode == 0, f"{where}: apply failed on its own:\n{err}"
        # Commands the agent started (ip, nft) outlive it; let them finish first
        # (see test_commands_of_a_killed_agent_do_not_race_the_next_command).
        if netns_pids(router.ns):
            orphans += 1
            wait_for(lambda: not netns_pids(router.ns), 10.0, "the killed agent's children")

        # (1) the store loads and holds the previous or the new configuration
        numbers = check_store(router.root, store, max(kept0, store.settings.revisions_kept) + 1)
        rev1 = store.current_rev()
        docs1 = store.load()
        if rev1 == rev0:
            assert docs1 == docs0, f"{where}: no new revision, yet the configuration changed"
        else:
            assert rev1 == rev0 + 1, f"{where}: revision {rev0} -> {rev1}"
            assert canonical(docs1) == e.canon and marker_of(docs1) == marker, (
                f"{where}: revision {rev1} is neither the old configuration nor the new one")

        # Which phase the kill hit.
        objects1, revisions1 = store_files(store)
        live = {d for n in numbers for d in store.revision(n).docs.values()}
        unreferenced = {o for o in objects1 if o.endswith(".json") and o[:-5] not in live}
        if exited:
            phase = PHASES[7]
        elif not started:
            phase = PHASES[0]
        elif rev1 == rev0:
            phase = PHASES[2] if (objects1, revisions1) != files0 else PHASES[1]
            assert normalized(router.snapshot()) == expected[current].snap, (
                f"{where}: the system changed before the commit")
        elif len(numbers) > store.settings.revisions_kept or unreferenced:
            phase = PHASES[3]
        else:
            snap = normalized(router.snapshot())
            phase = (PHASES[6] if snap == e.snap else
                     PHASES[4] if snap == expected[current].snap else PHASES[5])
        phases[f"{phase[0]}: {phase[1]}"] += 1

        # (2) recovery converges to the state of a clean apply of the stored configuration
        if recover == "reconcile":
            run_agent(router, "reconcile")
            assert store.load() == docs1, f"{where}: reconcile changed the configuration"
        else:
            run_agent(router, "apply", *map(str, bundle))
            assert marker_of(store.load()) == marker, where
        recoveries[recover] += 1
        final = variant_of[canonical(store.load())]
        assert recover == "reconcile" or final == new, where
        snap = normalized(router.snapshot())
        assert snap == expected[final].snap, (
            f"{where}: after {recover} the system differs from a clean apply of variant "
            f"{final}\n{snapshot_diff(snap, expected[final].snap)}")
        again = run_agent(router, "reconcile")
        assert again.stdout.strip().endswith("system already matches"), (
            f"{where}: a second reconcile still changed things:\n{again.stdout}")
        assert normalized(router.snapshot()) == snap, f"{where}: not converged"
        current = final

    numbers = check_store(router.root, store, 2 * store.settings.revisions_kept)
    leftovers = [n for n in os.listdir(store.objects) + os.listdir(store.revisions)
                 if n.endswith(".tmp")]
    by_group: Counter[str] = Counter()
    for name, count in phases.items():
        by_group[name.split(":")[0]] += count
    print(f"crash test: {KILLS} kills in {time.monotonic() - t_start:.1f} s "
          f"(seed {seed}); by phase:")
    for group, text in PHASES:
        print(f"  {phases[f'{group}: {text}']:5d}  {group}: {text}")
    print(f"  totals: {dict(by_group)}; recovered by {dict(recoveries)}; "
          f"{orphans} kill(s) left agent children running; "
          f"{len(leftovers)} temp file(s) left in the store; "
          f"revisions {numbers[0]}-{numbers[-1]} kept")
    if KILLS >= 20:
        assert by_group["before"] and by_group["after"], "the kills did not spread over the apply"


def test_commands_of_a_killed_agent_do_not_race_the_next_command(router: Router,
                                                                  tmp_path: Path) -> None:
    """A SIGKILLed agent's ``ip address del`` must not land after the next apply succeeded.

    The agent runs ``ip`` through ``PATH``; a wrapper that makes address
    deletions slow keeps the killed agent's child alive long enough for the
    next command to start, as a slow system or a loaded box would.
    """
    real_ip = shutil.which("ip")
    assert real_ip
    wrappers = tmp_path / "bin"
    wrappers.mkdir()
    slow = wrappers / "ip"
    slow.write_text(f'#!/bin/sh\ncase "$*" in *"address del"*) sleep 1;; esac\n'
                    f'exec {real_ip} "$@"\n')
    slow.chmod(0o755)
    variants = make_variants(random.Random(0))
    bundles = [write_bundle(bags, tmp_path / f"v{k}", None) for k, bags in enumerate(variants)]
    run_agent(router, "apply", *(str(SAMPLE / b) for b in ALL_BAGS))
    run_agent(router, "apply", *map(str, bundles[1]))  # with EXTRA_IP

    argv = agent_argv(router, "apply", *map(str, bundles[0]))  # removes EXTRA_IP
    argv[0] = real_ip
    killed = subprocess.Popen(argv, env={**os.environ, "PATH": f"{wrappers}:{os.environ['PATH']}"},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def deleting() -> bool:
            return any(b"del" in cmdline(int(pid)) and EXTRA_IP.encode() in b" ".join(
                cmdline(int(pid))) for pid in netns_pids(router.ns))
        wait_for(deleting, 10.0, "the agent to delete the extra address")
    finally:
        killed.send_signal(signal.SIGKILL)
        killed.wait(COMMAND_TIMEOUT)

    # The management plane retries at once: back to the configuration with EXTRA_IP.
    run_agent(router, "apply", *map(str, bundles[1]))
    wait_for(lambda: not netns_pids(router.ns), 10.0, "the killed agent's children")
    diff = run_agent(router, "diff").stdout
    assert diff.strip().endswith("system already matches"), (
        f"the apply succeeded, yet the system no longer matches its configuration:\n{diff}")
