"""The secrets the stored configuration holds, and text with every one of
them replaced: the diagnostics zip's last pass over everything it holds.

The secrets are found from the declarations, never named here: a bag type
declares how its stored document is shown (``BagType.redact``), so every
value the redacted configuration no longer shows is a secret. Where only a
part of a string is hidden (a "stats auth <user>:<password>" line of a load
balancer's configuration), the words that went are the secrets, and of a
``user:password`` word the password too.

Each secret is replaced in every form a file or a log may carry it: as it
is, JSON-escaped, hex (strongSwan's ``0x...``), base64, quoted as pppd's
chap-secrets quotes, and line by line when it spans lines (a TLS key).
A secret of fewer than ``MIN_ANYWHERE`` characters is replaced only where
it stands as a word of its own: anywhere, it would shred the text.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from typing import Any

from ...feature import REDACTED

MIN_ANYWHERE = 4
MIN_LINE = 16  # a line of a multi-line secret replaced on its own


def secrets(raw: Any, shown: Any) -> set[str]:
    """Every value of ``raw`` that ``shown`` (its redaction) does not show."""
    found: set[str] = set()
    _walk(raw, shown, found)
    return {s for s in found if s and s != REDACTED}


def _walk(raw: Any, shown: Any, found: set[str]) -> None:
    if isinstance(raw, dict):
        for key, value in raw.items():
            _walk(value, shown.get(key) if isinstance(shown, dict) else None, found)
    elif isinstance(raw, list):
        if isinstance(shown, list) and len(shown) == len(raw):
            for a, b in zip(raw, shown, strict=True):
                _walk(a, b, found)
        else:
            for a in raw:
                _walk(a, None, found)
    elif isinstance(raw, str):
        if raw == shown:
            return
        if isinstance(shown, str) and shown != REDACTED:
            found.update(_words_gone(raw, shown))
        else:
            found.add(raw)
    elif raw is not None and not isinstance(raw, bool) and raw != shown:
        found.add(str(raw))


def _words_gone(raw: str, shown: str) -> set[str]:
    kept = set(shown.split())
    gone: set[str] = set()
    for word in raw.split():
        if word not in kept:
            gone.add(word)
            _, sep, after = word.partition(":")
            if sep and after:
                gone.add(after.strip("'\""))
    return gone


def forms(secret: str) -> set[str]:
    """The ways ``secret`` may be written down."""
    data = secret.encode()
    out = {secret, json.dumps(secret)[1:-1], data.hex(), data.hex().upper(),
           base64.b64encode(data).decode(),
           secret.replace("\\", "\\\\").replace('"', '\\"')}
    if "\n" in secret:
        out.update(line.strip() for line in secret.splitlines() if len(line.strip()) >= MIN_LINE)
    return {f for f in out if f}


class Scrubber:
    """Replaces every form of the given secrets by ``REDACTED``."""

    def __init__(self, values: Iterable[str]) -> None:
        everywhere: set[str] = set()
        words: set[str] = set()
        for value in values:
            for f in forms(value):
                (everywhere if len(f) >= MIN_ANYWHERE else words).add(f)
        # Longest first: a secret that contains another goes whole.
        parts = [re.escape(f) for f in sorted(everywhere, key=len, reverse=True)]
        parts += [rf"(?<![A-Za-z0-9]){re.escape(f)}(?![A-Za-z0-9])"
                  for f in sorted(words, key=len, reverse=True)]
        self._pattern = re.compile("|".join(parts)) if parts else None
        self.count = len(everywhere) + len(words)

    def text(self, text: str) -> str:
        return self._pattern.sub(REDACTED, text) if self._pattern is not None else text

    def data(self, data: bytes) -> bytes:
        """Bytes as text (UTF-8, anything else kept byte for byte)."""
        if self._pattern is None:
            return data
        return self.text(data.decode("utf-8", "surrogateescape")).encode(
            "utf-8", "surrogateescape")
