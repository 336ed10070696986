"""Errors the agent reports to operators.

Every error names what was wrong (the field path and the value) so that the
management plane can show it verbatim.
"""

from __future__ import annotations

import re

# What may be shown as it is: a type name, a file name.
_PLAIN = re.compile(r"[A-Za-z0-9_.,:/@+=-]{1,200}", re.ASCII)


def escape(value: object, limit: int = 80) -> str:
    """A value as an error may show it: repr-escaped (no control characters) and truncated."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit - 3]}..."


def printable(text: str, keep: str = "") -> str:
    """``text`` with every character a terminal would act on written as its
    escape (a revision's cause, made of file names, on one line), but those
    in ``keep`` (a message's own line breaks)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c in keep else repr(c)[1:-1] for c in text)


def shown(text: str, limit: int = 80) -> str:
    """``text`` itself when it is plain (letters, digits, path punctuation),
    else escaped: a message line never carries a control character (ESC, CR,
    vertical tab, NEL, U+2028…) from a bag, a file name or a peer."""
    return text if _PLAIN.fullmatch(text) else escape(text, limit)


class VragentError(Exception):
    """Base class: an error the CLI prints without a traceback."""

    exit_code = 1


class BagError(VragentError):
    """A databag was rejected; nothing was changed."""

    exit_code = 2

    def __init__(self, bag_type: str, problems: list[str], source: str = "") -> None:
        self.bag_type = bag_type
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        where = f" from {shown(source, 200)}" if source else ""
        super().__init__(f"rejected {shown(bag_type) if bag_type else 'bag'}{where}: "
                         f"nothing was changed by it\n{lines}")


class VerifyError(VragentError):
    """The merged configuration cannot be realised on this router."""

    exit_code = 3

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"configuration rejected: nothing was changed by it\n{lines}")


class ApplyError(VragentError):
    """A system command failed while applying; the previous state was restored."""

    exit_code = 4


class StoreError(VragentError):
    exit_code = 5


class RevisionNotKept(StoreError):
    """A revision asked for (show, rollback) is not among those kept."""
