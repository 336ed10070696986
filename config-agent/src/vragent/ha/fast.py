"""Fast takeover: the backup takes over as soon as a session to the master
finds it dead, without waiting for the elector's own timers.

The elector's feature declares how (``feature.Takeover``: the priority the
elector reports when the session is down, the one it reports once boosted,
and the resignation packet a dying master would have sent; the vrrp feature
explains why for keepalived). Here: the reported priority says the session
went down while this router is backup, so the priority is raised to the top;
once the elector reports it raised, the resignation is injected; once this
router is master (or after BOOST_LIMIT) the priority comes back.
"""

from __future__ import annotations

import threading
import time

from ..errors import VragentError
from ..feature import Takeover
from ..settings import Settings
from ..system import inject
from . import switchover
from .log import log
from .pair import Pair

# The longest the priority stays raised when no transition follows.
BOOST_LIMIT = 2.0


class FastTakeover:
    def __init__(self, settings: Settings, pair: Pair, switching: threading.Lock) -> None:
        self.settings = settings
        self.pair = pair
        self.switching = switching  # a planned switchover moves the priority itself
        self.takeover: Takeover | None = None
        self.boosted = 0.0  # monotonic time the priority was raised (0: not)
        self.resigned = False  # the resignation went out for the current boost
        pair.on_priority = self.on_priority
        pair.on_transition = self.on_transition

    def set(self, want: Takeover | None) -> None:
        """The election's takeover, as the configuration now says."""
        if want == self.takeover:
            return
        self.pair.save(bfd="")  # a new session, or none: unknown until the elector says
        try:
            if want is not None:
                inject.ensure(want.dev)
            elif self.takeover is not None:
                inject.remove()
        except (VragentError, OSError) as exc:
            log(f"fast takeover: {exc}")
            return
        self.takeover = want

    def on_priority(self, priority: int) -> None:
        """The elector's priority changed: the session to the master may be down."""
        t = self.takeover
        if t is None or self.pair.ha is None or self.switching.locked():
            return
        if self.boosted:
            if priority >= t.boosted_priority and not self.resigned:
                self._resign_for_peer(t)
            return
        down = priority == t.down_priority
        # Only a session seen up going down means a dead master: at start it
        # is down until both routers run.
        was_up = self.pair.state.bfd == "up"
        self.pair.save(bfd="down" if down else "up")
        if not down or not was_up or self.pair.state.status != "BACKUP":
            return
        log(f"BFD: the master on {t.peer} is down: taking over")
        self.boosted = time.monotonic()
        self.resigned = False
        try:
            switchover.set_boost(self.settings, True)
        except OSError as exc:
            log(f"fast takeover: {exc}")
            self.unboost()

    def _resign_for_peer(self, t: Takeover) -> None:
        """The raised priority applies: the dead master's resignation, now."""
        self.resigned = True
        try:
            inject.send(t.resignation)
        except (VragentError, OSError) as exc:
            log(f"fast takeover: {exc}")
            self.unboost()
            return
        log(f"fast takeover: resignation handed to {self.pair.elector} "
            f"{1000 * (time.monotonic() - self.boosted):.1f} ms after BFD")

    def on_transition(self, status: str) -> None:
        if status != "BACKUP":
            self.unboost()

    def expire(self) -> None:
        """Called from the loop: a boost no transition followed is taken back."""
        if self.boosted and time.monotonic() - self.boosted > BOOST_LIMIT:
            log("fast takeover: no transition followed; priority back")
            self.unboost()

    def unboost(self) -> None:
        if self.boosted:
            self.boosted = 0.0
            try:
                switchover.set_boost(self.settings, False)
            except OSError as exc:
                log(f"fast takeover: lowering the priority back: {exc}")
