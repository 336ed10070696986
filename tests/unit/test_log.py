"""The agent's log (vragent/log.py): one JSON object per line, whichever thread writes.

Records go through the real handler to a real file, from many threads at once,
with what used to break a line (newlines, bytes that were not UTF-8, payloads
far past a pipe's atomic write), and every line of the file is parsed. A
second test runs a real process whose stderr is a pipe, as supervisord runs
the agent, and crashes a thread and the main thread in it.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from vragent.log import CUT, MAX_LINE, JsonHandler, encode, log, parse_lines, setup

THREADS = 12
PER_THREAD = 300
NASTY = [
    "plain",
    "two\nlines\r\nand a tab\t",
    "not UTF-8: \udcff\udcfe (surrogate escapes of undecodable bytes)",
    "looks like JSON: {\"event\": \"command\"}\n{\"x\": 1}",
    "unicode: é ü 中 \u2028 line separator, \x00 NUL, \x1b[31m escape",
    "huge: " + "0123456789" * 1_000,
]


@pytest.fixture
def root_handler(tmp_path: Path) -> Iterator[tuple[JsonHandler, Path]]:
    """The real handler on the root logger, writing to a real file as an
    unbuffered stderr does (``python -u``): every ``write`` a system call, so
    a record written in two calls would interleave with another thread's."""
    path = tmp_path / "agent.log"
    stream = io.TextIOWrapper(io.FileIO(path, "a"), encoding="utf-8",
                              errors="backslashreplace", write_through=True)
    root = logging.getLogger()
    level, raising = root.level, logging.raiseExceptions
    handler = setup(stream, hooks=False)
    try:
        yield handler, path
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        logging.raiseExceptions = raising
        stream.close()


def test_records_from_many_threads_at_once_are_each_one_json_line(
        root_handler: tuple[JsonHandler, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    _, path = root_handler
    # Threads switch as often as the interpreter allows: writes that are not
    # one call under one lock interleave within a few records.
    monkeypatch.setattr(sys, "getswitchinterval", sys.getswitchinterval)
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    start = threading.Barrier(THREADS)
    library = logging.getLogger("uvicorn.error")  # a library's record, through the root

    def writer(n: int) -> None:
        start.wait()
        for i in range(PER_THREAD):
            text = NASTY[i % len(NASTY)]
            if i % 50 == 7:
                try:
                    raise RuntimeError(f"failure {n}/{i}:\n{text}")
                except RuntimeError:
                    library.exception("worker %d failed", n)
            else:
                log(text, event="test", writer=n, seq=i, payload=text.encode(errors="replace"))

    threads = [threading.Thread(target=writer, args=(n,), name=f"writer-{n}")
               for n in range(THREADS)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)

    data = path.read_bytes()
    assert data.endswith(b"\n") and data.isascii()
    lines = data.decode().split("\n")[:-1]
    assert all(len(line) < MAX_LINE for line in lines), max(map(len, lines))
    records = parse_lines(data.decode())  # every line, strictly
    assert len(records) == THREADS * PER_THREAD
    seen: dict[int, list[int]] = {n: [] for n in range(THREADS)}
    for r in records:
        assert r["time"].endswith("Z") and r["thread"].startswith("writer-")
        if r["event"] == "test":
            n, i = r["writer"], r["seq"]
            seen[n].append(i)
            assert r["thread"] == f"writer-{n}" and r["logger"] == "vragent"
            text = NASTY[i % len(NASTY)]
            if text.startswith("huge"):
                assert r["message"] == text[:len(r["message"]) - len(CUT)] + CUT
                assert r["truncated"]["message"] == len(text)
            else:
                assert r["message"] == text and "truncated" not in r
        else:
            assert r["level"] == "error" and r["logger"] == "uvicorn.error"
            assert r["message"] == f"worker {r['thread'][7:]} failed"
            # The end of a traceback is kept: the error, and the last of its text.
            assert r["exception"].endswith(tuple(text[-100:] for text in NASTY))
            if "truncated" in r:
                assert r["exception"].startswith(CUT) and set(r["truncated"]) == {"exception"}
            else:
                assert r["exception"].startswith("Traceback") and "RuntimeError: failure" in \
                    r["exception"]
    # Each thread's records, all there and in its own order.
    for n, order in seen.items():
        expected = [i for i in range(PER_THREAD) if i % 50 != 7]
        assert order == expected, n


CHILD = r"""
import logging, sys, threading
from vragent.log import log, setup

setup()
def writer(n):
    for i in range(200):
        log("line\n%d" % i, writer=n, seq=i, blob="x" * (i * 37))
threads = [threading.Thread(target=writer, args=(n,), name="w%d" % n) for n in range(6)]
for t in threads: t.start()
for t in threads: t.join()
import warnings; warnings.warn("a warning\nover two lines")
t = threading.Thread(target=lambda: 1 / 0, name="crasher"); t.start(); t.join()
raise SystemError("the main thread\ndies")
"""


@pytest.mark.parametrize("unbuffered", [False, True], ids=["as-in-the-image", "python-u"])
def test_a_process_on_a_pipe_logs_its_crashes_as_records_too(tmp_path: Path,
                                                             unbuffered: bool) -> None:
    """As supervisord runs the agent: stderr a pipe, copied to the log file.
    The image runs it with Python's line-buffered stderr; ``python -u`` (a
    developer's environment) makes every write a system call."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    child = subprocess.run([sys.executable, "-c", CHILD], stderr=subprocess.PIPE,
                           stdout=subprocess.DEVNULL, timeout=60, check=False, env=env)
    assert child.returncode == 1
    (tmp_path / "agent.log").write_bytes(child.stderr)
    records = parse_lines((tmp_path / "agent.log").read_text())
    written = [r for r in records if r["event"] == "message" and r["logger"] == "vragent"]
    assert len(written) == 6 * 200
    assert {(r["writer"], r["seq"]) for r in written} == {
        (n, i) for n in range(6) for i in range(200)}
    assert all(r["message"] == f"line\n{r['seq']}" for r in written)
    long = [r for r in written if "truncated" in r]
    assert long and all(r["truncated"] == {"blob": r["seq"] * 37} for r in long)
    warning, crash, death = records[-3:]
    assert warning["logger"] == "py.warnings" and "a warning\nover two lines" in warning["message"]
    assert crash["event"] == "uncaught" and crash["thread"] == "crasher"
    assert crash["exception"].endswith("ZeroDivisionError: division by zero")
    assert death["event"] == "uncaught" and death["message"].startswith(
        "uncaught: SystemError: the main thread\ndies")


def test_what_json_cannot_take_still_makes_one_line() -> None:
    line = encode({"message": "m", "nan": float("nan"), "raw": b"\xff\x00ok",
                   "obj": object(), "set": {1}})
    doc = json.loads(line)
    assert doc["nan"] == "nan" and doc["message"] == "m"
    cyclic: list[object] = []
    cyclic.append(cyclic)
    assert json.loads(encode({"message": "c", "cycle": cyclic}))["cycle"] == "[[...]]"
    assert json.loads(encode({"message": "b", "raw": b"\xff\x00ok"}))["raw"] == "\\xff\x00ok"


def test_a_long_traceback_keeps_its_end_and_many_fields_keep_the_core() -> None:
    tb = "Traceback (most recent call last):\n" + "  frame\n" * 2000 + "ValueError: the end"
    doc = json.loads(encode({"message": "m", "exception": tb}))
    assert doc["exception"].startswith(CUT) and doc["exception"].endswith("ValueError: the end")
    assert doc["truncated"] == {"exception": len(tb)}
    many = {"time": "t", "event": "e", "message": "core", **{f"k{i}": "v" * 20 for i in range(500)}}
    line = encode(many)
    assert len(line) < MAX_LINE
    assert json.loads(line) == {"time": "t", "event": "e", "message": "core",
                                "truncated": {"fields": 504}}


def test_a_format_string_that_does_not_fit_its_arguments_is_still_a_record(
        root_handler: tuple[JsonHandler, Path]) -> None:
    _, path = root_handler
    logging.getLogger("some.library").warning("%d items", "many")
    (record,) = parse_lines(path.read_text())
    assert record["message"].startswith("'%d items' % ('many',) (cannot be formatted")


def test_the_reader_refuses_two_records_on_one_line_and_waits_for_an_unfinished_one() -> None:
    good = '{"event": "a"}\n'
    with pytest.raises(ValueError, match=r"log line 2 is not one JSON object \(Extra data"):
        parse_lines(good + '{"event": "b"}{"event": "c"}\n')
    with pytest.raises(ValueError, match="log line 2"):
        parse_lines(good + "2026-01-01T00:00:00Z vragent-daemon: text\n")
    with pytest.raises(ValueError, match="log line 2 is not a JSON object"):
        parse_lines(good + "[1]\n")
    with pytest.raises(ValueError, match="log line 2"):
        parse_lines(good + '{"event": "half')
    assert parse_lines(good + '{"event": "half', unfinished_ok=True) == [{"event": "a"}]
    with pytest.raises(ValueError, match="log line 2"):
        parse_lines(good + "\n" + good, unfinished_ok=True)  # an empty line is not a record
