"""The toy feature (tests/toy), registered by ``$VRAGENT_FEATURES`` alone,
appears in every hub that is assembled from the declarations: the bag types,
the supervised daemons and supervisord's program list, the subsystems in
order, netfilter's openings and the health checks. Without the variable it
appears in none of them.

The registry re-reads the variable at each call (its caches are per list of
packages); the daemons' registry is per settings, so each test has a root of
its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from vragent import bags, features, programs, supervised
from vragent.config import RouterConfig
from vragent.errors import BagError
from vragent.feature import Opening
from vragent.features.netfilter import subsystem as netfilter
from vragent.reconcile import desired_states, subsystems
from vragent.settings import Settings
from vragent.topology import resolve

from tests import toy
from tests.unit.builders import apply_bags, sample_docs, sample_links

TOY_BAG = {"type": "toyecho", "port": 7007, "message": "hello"}


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    # In this process the repository is on sys.path already (pytest's rootdir).
    monkeypatch.setenv("VRAGENT_FEATURES", toy.PACKAGE)


def _settings(tmp_path: Path) -> Settings:
    return Settings(root=tmp_path / "root")


def test_without_the_variable_the_toy_is_nowhere(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    monkeypatch.delenv("VRAGENT_FEATURES", raising=False)
    assert "toy" not in [f.name for f in features.features()]
    assert "toyecho" not in bags.types()
    assert "toyecho" not in [d.name for d in supervised.registry(_settings(tmp_path))]
    with pytest.raises(BagError, match="unknown bag type 'toyecho'"):
        bags.parse_bag(TOY_BAG)


def test_the_toy_is_in_every_hub(registered: None, tmp_path: Path) -> None:
    from tests.toy import daemon, subsystem
    from tests.toy.feature import FEATURE, ToyEcho

    assert features.packages()[-1] == "tests.toy"
    assert features.features()[-1] is FEATURE
    assert features.by_name("toy") is FEATURE
    assert bags.types()["toyecho"].model is ToyEcho
    # Applied last: after every built-in subsystem.
    assert subsystems()[-1] is subsystem
    s = _settings(tmp_path)
    d = supervised.registry(s).get("toyecho")
    assert d == daemon.daemons(s)[0]
    assert d.subsystem == "toy"
    assert d.conf == s.conf_dir / "toyecho.port"
    assert [c.name for c in features.checks()].count("toy_check") == 1


def test_supervisord_gets_a_program_for_the_toys_daemon(registered: None,
                                                        tmp_path: Path) -> None:
    s = _settings(tmp_path)
    assert "toyecho.conf written" in programs.write(s)
    assert (programs.directory(s) / "toyecho.conf").read_text() == (
        "[program:toyecho]\n"
        "command=vragent-launch --root %(ENV_VRAGENT_ROOT)s toyecho\n"
        "priority=60\n"
        "autostart=false\n"
        "autorestart=true\n"
        "startsecs=0\n"
        "stopsignal=TERM\n"
        "stopwaitsecs=10\n"
        "redirect_stderr=true\n"
        "stdout_logfile=%(ENV_VRAGENT_ROOT)s/var/log/vragent/toyecho.log\n"
        "stdout_logfile_maxbytes=10MB\n")


def _states(docs: dict[str, Any], s: Settings) -> dict[str, Any]:
    cfg = RouterConfig.from_docs(docs)
    return desired_states(cfg, resolve(cfg, sample_links()), s)


def test_netfilter_opens_exactly_the_toys_port(registered: None, tmp_path: Path) -> None:
    s = _settings(tmp_path)
    without = _states(sample_docs(), s)
    with_toy = _states(apply_bags([TOY_BAG], sample_docs()), s)
    # No bag, no opening; with it, exactly one more.
    assert without["toy"].enabled is False
    added = [o for o in with_toy["netfilter"].traffic.accept
             if o not in without["netfilter"].traffic.accept]
    assert added == [Opening("guests", "tcp", (7007,))]
    before = netfilter.render(without["netfilter"]).text().splitlines()
    after = netfilter.render(with_toy["netfilter"]).text().splitlines()
    assert [line.strip() for line in after if line not in before] == [
        'iifname { "eth2", "eth3", "eth4" } tcp dport 7007 accept']
    assert [line for line in before if line not in after] == []


def test_the_render_is_the_template_and_the_message(registered: None, tmp_path: Path) -> None:
    from tests.toy import subsystem

    s = _settings(tmp_path)
    d = _states(apply_bags([TOY_BAG], sample_docs()), s)["toy"]
    assert d == subsystem.Desired(True, 7007, "hello", ("10.10.1.1", "10.10.2.1"),
                                  ("10.10.1.0/24", "10.10.2.0/24"))
    rendered = subsystem.render(d)
    assert rendered["toyecho.port"] == "7007\n"
    assert rendered["message.txt"] == "hello\n"
    assert rendered["toyecho.httpd.conf"] == (
        "# busybox httpd, for the toy feature (tests/toy): rendered by vragent.\n"
        "# Only the guest tiers may ask.\n"
        "A:10.10.1.0/24\nA:10.10.2.0/24\nD:*\nI:message.txt\n"
        ".txt:text/plain; charset=utf-8\n")
    # Rendering touched nothing: the root does not even exist.
    assert not s.root.exists()
    # No bag: every file of the daemon is to be removed (it stops).
    assert subsystem.render(subsystem.Desired(False)).text() == ""


@pytest.mark.parametrize(("changes", "problem"), [
    ({"port": 80000}, "port: Input should be less than or equal to 65535 (got 80000)"),
    ({"port": 1023}, "port: Input should be greater than or equal to 1024 (got 1023)"),
    ({"port": True}, "port: must be a whole number (got True)"),
    ({"message": ""}, "message: must be 1-256 characters, got 0"),
    ({"message": "x" * 257}, "message: must be 1-256 characters, got 257"),
    ({"message": "tab\there"}, "message: control character '\\t' at 3"),
    ({"message": "esc\x1b[2J"}, "message: control character '\\x1b' at 3"),
    ({"message": "del\x7f"}, "message: control character '\\x7f' at 3"),
    ({"message": "line\u2028sep"}, "message: control character '\\u2028' at 4"),
    ({"message": 42}, "message: must be a string (got 42)"),
])
def test_bad_toy_bags_are_refused_naming_the_field(registered: None, changes: dict[str, Any],
                                                   problem: str) -> None:
    with pytest.raises(BagError) as exc:
        bags.parse_bag({**TOY_BAG, **changes})
    assert any(p.startswith(problem) for p in exc.value.problems), exc.value.problems


def test_a_good_toy_bag_is_stored_as_sent(registered: None) -> None:
    docs = apply_bags([TOY_BAG, {**TOY_BAG, "message": "héllo, wörld ✓"}])
    assert docs == {"toyecho": {**TOY_BAG, "message": "héllo, wörld ✓"}}
