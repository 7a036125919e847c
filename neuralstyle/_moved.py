"""Names that moved to another module keep importing from the old one, with one warning each.

A module that gave a name away sets ``__getattr__ = moved_names(__name__, {...})``. The new
module is imported only when the old name is read (``importlib``, at run time), so the package's
import graph keeps pointing one way: the old module never imports the new one at load time.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable

__all__ = ["moved_names"]


def moved_names(module: str, moves: dict[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` serving ``moves`` (name -> new module) with a DeprecationWarning.

    Args:
        module: The old module's ``__name__``.
        moves: Each moved name and the module that holds it now.
    """
    warned: set[str] = set()

    def __getattr__(name: str) -> object:  # noqa: N807 - the module hook's own name
        if name not in moves:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        if name not in warned:
            warned.add(name)
            warnings.warn(
                f"{module}.{name} moved to {moves[name]}.{name}; import it from there "
                "(or from neuralstyle)",
                DeprecationWarning,
                stacklevel=2,
            )
        return getattr(importlib.import_module(moves[name]), name)

    return __getattr__
