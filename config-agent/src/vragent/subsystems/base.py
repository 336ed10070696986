"""The contract every subsystem implements, and what its render step returns.

A subsystem is a module with a ``NAME`` and four functions:

``desired(cfg, topology, settings)``  what the box should look like (pure)
``verify(desired)``                    what of it cannot be realised (pure)
``render(desired)``                    a ``Rendered``: the text golden tests compare (pure)
``apply(desired, rendered, settings, dry_run)``  the only step that touches the system

``tests/unit/subsystems/test_contract.py`` checks every module of this
package against ``Subsystem``; the registry in ``__init__`` is the single list
the reconcile order, the CLI's ``render`` choices and the golden tests read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ..config import RouterConfig
    from ..settings import Settings
    from ..topology import Topology


@runtime_checkable
class Rendered(Protocol):
    """What ``render`` returns: at least the text an operator and a golden file read."""

    def text(self) -> str: ...


class Text(str):
    """A render that is one text (a sysctl list, keepalived's configuration)."""

    __slots__ = ()

    def text(self) -> str:
        return str(self)


@dataclass(frozen=True)
class Files:
    """A render that is several files of one daemon, by file name (``hosts``, ``opts``…).

    An empty text means the file should not exist.
    """

    files: tuple[tuple[str, str], ...]

    def __getitem__(self, name: str) -> str:
        return dict(self.files)[name]

    def text(self) -> str:
        if not any(body for _, body in self.files):
            return ""
        return "".join(f"# ==> {name} <==\n{body}" for name, body in self.files if body)


class Subsystem(Protocol):
    """What the reconciler needs of a subsystem module (see the module docstring)."""

    NAME: str

    def desired(self, cfg: RouterConfig, topo: Topology, settings: Settings) -> Any: ...

    def verify(self, d: Any) -> list[str]: ...

    def render(self, d: Any) -> Rendered: ...

    def apply(self, d: Any, rendered: Any, settings: Settings,
              dry_run: bool = False) -> list[str]: ...
