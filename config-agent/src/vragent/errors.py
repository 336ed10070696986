"""Errors the agent reports to operators.

Every error names what was wrong (the field path and the value) so that the
management plane can show it verbatim.
"""

from __future__ import annotations


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
        where = f" from {source}" if source else ""
        super().__init__(f"rejected {bag_type or 'bag'}{where}: nothing was changed by it\n"
                         f"{lines}")


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
