"""Property-based hostile input, run inside a lab router's network namespace.

    ip netns exec <router-ns> python properties_worker.py ROOT EXAMPLES

Started by ``test_properties.py``: the whole run is one process in the
namespace, so the agent's commands run in-process (the CLI's ``main``, the
resident agent's ``Agent.boot``) at hypothesis speed, and every accepted bag
is really applied: nft loads its ruleset in this namespace, keepalived's and
dnsmasq's own checkers judge their files. Prints one JSON line of counts and
failures.

Properties, for every bag type:
- a generated bag (a sample bag with one field replaced by hostile values, or
  any JSON at all) ends in exit 0, 2 or 3, never a traceback or exit 4;
- a rejected one changes nothing: same revision, same system;
- an accepted one was installed: the daemons' checkers accepted its files;
- cmd_line.json, as the resident agent reads it at boot: any bytes end in a
  clean error or a boot, never another exception.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import sys
import traceback
import unicodedata
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "compose/vragent_lab/sample"
REFERENCE = REPO / "tests/fixtures/cloudstack"

from vragent import cli  # noqa: E402
from vragent import log as vlog  # noqa: E402
from vragent.agent import Agent  # noqa: E402
from vragent.api.app import create_app  # noqa: E402
from vragent.api.client import Client  # noqa: E402
from vragent.api.metrics import Metrics  # noqa: E402
from vragent.api.server import ApiServer  # noqa: E402
from vragent.api.service import CommandService  # noqa: E402
from vragent.bags import models as _bag_models  # noqa: E402
from vragent.errors import ApplyError, VragentError  # noqa: E402
from vragent.settings import Settings  # noqa: E402
from vragent.store import Store  # noqa: E402

BAG_MODELS = _bag_models()

BASE = ["ip_associations.json", "guest_network_tier1.json", "guest_network_tier2.json",
        "network_acl_tier1.json"]

# Values a hostile or buggy management plane may put anywhere.
NASTY_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", " ", "\n", "eth2\n", "10.10.1.1\nserver=/x/6.6.6.6", "a\x00b",
                     "\u0661\u0662", "10.10.1.\u0661", "\u00b2\u00b2:22", "0:0", "1:65536",
                     "-1", "999999999999999999999", "1e9", "nan", "inf", "${x}", "{{ d }}",
                     "'; rm -rf /", "../../etc/passwd", "x" * 5000, "0.0.0.0/0,::/0",
                     "10.10.1.300", "02:00:0a:01:00:0a\n", "\r\n", "\u202e", "\ud800"[:0]]),
)
SCALARS = st.one_of(NASTY_TEXT, st.integers(min_value=-2**70, max_value=2**70),
                    st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.none())
JSON = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12)


# What a terminal or a log reader acts on: C0 and C1 controls, DEL, line and
# paragraph separators, bidi overrides.
CONTROL = ("\x1b", "\r", "\x0b", "\x85", "\u2028", "\u2029", "\x7f", "\x00", "\u202e",
           "\x1b[2J")


def raw_control(text: str) -> bool:
    """``text`` (a message, many lines) holds a character it should show escaped."""
    return any(c != "\n" and unicodedata.category(c) in ("Cc", "Zl", "Zp", "Cf")
               for c in text)


def _load(name: str) -> dict[str, Any]:
    return json.loads((SAMPLE / name).read_text())


def _examples() -> dict[str, dict[str, Any]]:
    """One well-formed example per bag type: the sample's, else the reference's."""
    out: dict[str, dict[str, Any]] = {}
    for folder in (SAMPLE, REFERENCE):
        for path in sorted(folder.glob("*.json")):
            doc = json.loads(path.read_text())
            if doc.get("type") in BAG_MODELS and doc["type"] not in out:
                out[doc["type"]] = doc
    return out


EXAMPLES = _examples()


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            found += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            found += _paths(v, (*prefix, i))
    return found


_DIGITS = {c: chr(0x0660 + int(c)) for c in "0123456789"}  # Arabic-Indic digits


@st.composite
def near_miss(draw: st.DrawFn, old: Any) -> Any:
    """A value one step from a valid one: where checks looser than the daemons hide."""
    if isinstance(old, bool) or old is None:
        return draw(st.sampled_from(["true", 1, 0, None, "false"]))
    if isinstance(old, int):
        return draw(st.sampled_from([old + 1, old - 1, -old, old * 10**6, 2**63, str(old),
                                     float(old) + 0.5, old + 65536]))
    if isinstance(old, str) and old:
        i = draw(st.integers(0, len(old) - 1))
        digits = [j for j, c in enumerate(old) if c.isdigit()]
        # A lone digit ("10.0.0.5", "eth2") most often slips through a pattern.
        lone = [j for j in digits if (j == 0 or not old[j - 1].isdigit())
                and (j == len(old) - 1 or not old[j + 1].isdigit())]
        if lone and draw(st.booleans()):
            digits = lone
        unicode_digit = old
        if digits:
            j = draw(st.sampled_from(digits))
            unicode_digit = old[:j] + _DIGITS[old[j]] + old[j + 1:]
        return draw(st.sampled_from([
            old + "\n", old + "\nextra line", " " + old, old + " ", old + "\x00",
            unicode_digit, old[:i] + old[i + 1:], old[:i] + "\n" + old[i:],
            old[:i] + "/" + old[i:], old + ",", old + "," + old, old * 300, old.upper(),
            old + "/33", old + ":99999", old.replace(".", ".."), old + "\u202e"]))
    return draw(JSON)


@st.composite
def hostile_bags(draw: st.DrawFn) -> tuple[str, bytes]:
    bag_type = draw(st.sampled_from(sorted(EXAMPLES)))
    doc = copy.deepcopy(EXAMPLES[bag_type])
    how = draw(st.sampled_from(["replace", "replace", "replace", "delete", "extra", "any",
                                "deep", "duplicate", "type"]))
    if how == "type":
        # The type itself carries a control character: refused, and shown escaped.
        doc["type"] = draw(st.sampled_from([
            t for c in CONTROL
            for t in (f"{bag_type}{c}", f"{c}{bag_type}", f"{bag_type[:2]}{c}{bag_type[2:]}")]))
    elif how in ("replace", "delete"):
        path = draw(st.sampled_from([p for p in _paths(doc) if p != ("type",)]))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if how == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            old = parent[path[-1]]
            scalar = not isinstance(old, (dict, list))
            parent[path[-1]] = draw(st.one_of(near_miss(old), JSON) if scalar else JSON)
    elif how == "extra":
        doc[draw(st.text(min_size=1, max_size=8))] = draw(JSON)
    elif how == "any":
        doc = draw(JSON)
    elif how == "deep":
        depth = draw(st.integers(min_value=30, max_value=3000))
        return bag_type, b'{"type": "%s", "x": ' % bag_type.encode() + b"[" * depth + \
            b"]" * depth + b"}"
    text = json.dumps(doc, allow_nan=True)
    if how == "duplicate" and text.startswith("{"):
        text = text[:-1] + (', "type": "ips"}' if len(text) > 2 else '"type": "ips"}')
    raw = text.encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 9)) == 0:
        raw = raw + b"\xff"  # invalid UTF-8
    return bag_type, raw


class Run:
    def __init__(self, root: Path, api: bool = False) -> None:
        self.root = root
        self.settings = Settings(root=root)
        self.cases = 0
        self.outcomes: dict[str, int] = {}
        self.failures: list[str] = []
        self.n = 0
        self.api: Client | None = None
        if api:
            # The resident agent's command queue and HTTP API, as `vragent
            # daemon` runs them, on this router's unix socket: every case is
            # sent as a request body.
            service = CommandService(self.settings)
            service.start()
            server = ApiServer(self.settings, create_app(self.settings, service, Metrics(),
                                                         token=None),
                               create_app(self.settings, service, Metrics(),
                                          token=lambda: None), print)
            server.start()
            self.api = Client(self.settings.api_socket)

    def _post(self, raw: bytes, source: str) -> tuple[int, str]:
        """A case through the API: the exit code its result names, and its message."""
        assert self.api is not None
        status, body = self.api.json("POST", "/v1/apply", body=raw,
                                     query=[("source", source)])
        if status >= 500 or not isinstance(body, dict) or "exit_code" not in body:
            return -status, f"HTTP {status}: {body!r}"
        expected = {0: 200, 2: 422, 3: 409}.get(body["exit_code"])
        if status != expected:
            return -status, f"HTTP {status} for exit code {body['exit_code']}: {body!r}"
        error = body.get("error") or {}
        return int(body["exit_code"]), str(error.get("message", ""))

    def _cli(self, *args: str) -> tuple[int, str]:
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                code = cli.main(["--root", str(self.root), *args])
        except SystemExit as exc:
            code = int(exc.code or 0)
        except BaseException:  # noqa: BLE001 - the property: nothing escapes
            return -1, traceback.format_exc()
        return code, err.getvalue()

    def setup(self) -> None:
        (self.root / "var/cache/cloud").mkdir(parents=True, exist_ok=True)
        (self.root / "var/cache/cloud/cmd_line.json").write_text(
            (SAMPLE / "cmd_line.json").read_text())
        code, err = self._cli("boot")
        assert code == 0, err
        code, err = self._cli("apply", *[str(SAMPLE / b) for b in BASE])
        assert code == 0, err

    def fail(self, what: str) -> None:
        if len(self.failures) < 20:
            self.failures.append(what[-3000:])

    def bag(self, bag_type: str, raw: bytes) -> None:
        self.cases += 1
        self.n += 1
        path = self.root / f"case-{self.n}.json"
        path.write_bytes(raw)
        store = Store(self.settings)
        before = store.current_rev()
        if self.api is not None:
            code, err = self._post(raw, path.name)
        else:
            code, err = self._cli("apply", str(path))
        path.unlink()
        key = {0: "accepted", 2: "rejected (2)", 3: "not realisable (3)"}.get(code, f"exit {code}")
        self.outcomes[key] = self.outcomes.get(key, 0) + 1
        shown = raw[:300].decode("utf-8", "replace")
        if code not in (0, 2, 3):
            self.fail(f"{bag_type}: exit {code} for {shown!r}:\n{err}")
        elif "Traceback" in err:
            self.fail(f"{bag_type}: traceback for {shown!r}:\n{err}")
        elif code != 0 and store.current_rev() != before:
            self.fail(f"{bag_type}: rejected, yet revision {before} -> {store.current_rev()}")
        if raw_control(err):
            self.fail(f"{bag_type}: control character in the error for {shown!r}: {err!r}")
        if code == 0:
            # Keep the box near the sample, so later cases stay meaningful.
            self._cli("rollback", str(before))

    def boot_file(self, raw: bytes) -> None:
        """cmd_line.json as the resident agent reads it at start (Daemon._boot)."""
        self.cases += 1
        path = self.settings.cmdline_file
        good = path.read_bytes()
        path.write_bytes(raw)
        try:
            Agent(self.settings).boot()
            self.outcomes["boot ok"] = self.outcomes.get("boot ok", 0) + 1
        except ApplyError as exc:
            # Accepted by validation, refused by a daemon or the kernel: looser than them.
            self.fail(f"boot: {raw[:300]!r}: accepted, then failed to apply: {exc}")
        except VragentError as exc:
            self.outcomes["boot refused"] = self.outcomes.get("boot refused", 0) + 1
            if "Traceback" in str(exc):
                self.fail(f"boot: traceback in the error: {exc}")
        except BaseException:  # noqa: BLE001 - the property
            self.fail(f"boot: {raw[:300]!r}:\n{traceback.format_exc()}")
        finally:
            path.write_bytes(good)


# The sample router booted as one of a pair (sync link on eth4): keepalived's
# and conntrackd's files are rendered, so their checkers judge each case.
PAIR_CMDLINE = {**json.loads((SAMPLE / "cmd_line.json").read_text())["cmd_line"],
                "redundant_router": "1", "sync_dev": "eth4", "eth4ip": "10.255.0.1",
                "eth4mask": "255.255.255.0", "sync_peer": "10.255.0.2",
                "router_password": "s3cret", "advert_int": "1", "router_id": "7"}


@st.composite
def pair_boot(draw: st.DrawFn) -> bytes:
    cmd = dict(PAIR_CMDLINE)
    key = draw(st.sampled_from(sorted(cmd) + ["vrrp_version", "router_pr", "sync_vip"]))
    cmd[key] = draw(st.one_of(near_miss(cmd.get(key, "2")), NASTY_TEXT))
    return json.dumps({"type": "cmdline", "cmd_line": cmd}).encode("utf-8", "surrogatepass")


def main() -> int:
    root, examples = Path(sys.argv[1]), int(sys.argv[2])
    api = sys.argv[3:] == ["api"]
    run = Run(root)
    run.setup()
    if api:
        # The resident agent's own log (the daemon sets it up at its start):
        # one JSON line per command, on this worker's stderr.
        vlog.setup()
        run = Run(root, api=True)
    opts = settings(max_examples=examples, deadline=None, database=None, derandomize=False,
                    suppress_health_check=list(HealthCheck))

    @opts
    @given(hostile_bags())
    def bags(case: tuple[str, bytes]) -> None:
        run.bag(*case)

    @settings(max_examples=max(examples // 4, 10), deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.one_of(
        pair_boot(), pair_boot(), pair_boot(),
        st.binary(max_size=200),
        JSON.map(lambda d: json.dumps(d, allow_nan=True).encode("utf-8", "surrogatepass")),
        st.dictionaries(st.sampled_from(["type", "name", "domain", "router_pr", "advert_int",
                                         "redundant_router", "eth0ip", "dns1", "router_id",
                                         "sync_dev", "report_url"]), NASTY_TEXT)
        .map(lambda d: json.dumps({"type": "cmdline", "cmd_line": d}).encode(
            "utf-8", "surrogatepass"))))
    def boots(raw: bytes) -> None:
        run.boot_file(raw)

    bags()
    if not api:  # the boot file is read by the agent itself, not sent to it
        boots()
    print(json.dumps({"cases": run.cases, "outcomes": run.outcomes, "failures": run.failures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
