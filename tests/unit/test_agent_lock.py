"""A command's programs hold the store lock with the agent (``Agent._locked``):
killed mid-command, the agent leaves the lock held until its last ``ip`` or
``nft`` has finished."""

from __future__ import annotations

from pathlib import Path

from vragent.agent import Agent
from vragent.settings import Settings
from vragent.system import cmd

# The files a child has open, by the shell's own /proc entry.
OPEN_FILES = ["sh", "-c", 'for f in /proc/$$/fd/*; do readlink "$f" || :; done']


def test_programs_run_under_the_lock_hold_it_and_later_ones_do_not(tmp_path: Path) -> None:
    agent = Agent(Settings(root=tmp_path))
    lock = str(agent.settings.lock_file)
    with agent._locked():
        assert lock in cmd.run(OPEN_FILES).splitlines()
    assert lock not in cmd.run(OPEN_FILES).splitlines()


def test_the_store_alone_hands_its_lock_to_no_program(tmp_path: Path) -> None:
    agent = Agent(Settings(root=tmp_path))
    with agent.store.locked() as fd:
        assert fd >= 0
        assert str(agent.settings.lock_file) not in cmd.run(OPEN_FILES).splitlines()
