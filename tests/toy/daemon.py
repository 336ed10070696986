"""The toy's daemon: busybox httpd serving the message. Light on purpose:
supervisord's watchdog and ``vragent-launch`` import it."""

from __future__ import annotations

from vragent.feature import ConfigFile, Daemon, Place
from vragent.settings import Settings

NAME = "toyecho"
SUBSYSTEM = "toy"
# The port to listen on. busybox httpd takes it only on its command line, so
# a shell reads it at each start: a new port is a restart.
PORT = Place("conf", "toyecho.port")
# Who may ask, and the index file: httpd re-reads it on SIGHUP.
CONF = Place("conf", "toyecho.httpd.conf")
# The directory served, and the one file in it (read at each request).
HOME = Place("conf", "toyecho")
INDEX = "message.txt"
MESSAGE = Place("conf", f"{HOME.name}/{INDEX}")
# The paths are the shell's arguments, never part of its script.
START = 'exec busybox httpd -f -v -p "$(cat "$1")" -h "$2" -c "$3"'


def daemons(s: Settings) -> tuple[Daemon, ...]:
    return (Daemon(
        name=NAME,
        subsystem=SUBSYSTEM,
        argv=("busybox", "sh", "-c", START, NAME, str(PORT.of(s)), str(HOME.of(s)),
              str(CONF.of(s))),
        files=(
            ConfigFile(PORT.of(s), "restart"),
            ConfigFile(CONF.of(s), "reload"),
            # Served as it is at each request: the reload is only for the record.
            ConfigFile(MESSAGE.of(s), "reload"),
        ),
        # busybox httpd has no checker.
        start_order=60,
    ),)
