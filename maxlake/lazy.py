"""Lazy package exports: a package's public names are imported from their modules on first use.

A package ``__init__`` that imports all its modules makes every ``import pkg.sub`` pay for
them: importing ``lake.curation.jobs`` pulled in deltalake's writer, pyarrow.dataset and pandas
(~2 s and ~110 MiB resident) although a feature job needs none of them. With
:func:`lazy_exports` the ``__init__`` names each export's module; the module is imported when
the name is first read (``from pkg import Name`` or ``pkg.Name``), and mypy sees the same names
through an ``if TYPE_CHECKING:`` import block.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: Mapping[str, Sequence[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module ``__getattr__`` and ``__dir__`` of ``package`` for ``exports`` (module name ->
    the names it provides).

    Raises (from ``__getattr__``):
        AttributeError: for a name no module provides, as a plain module would.
    """
    where = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *where})

    return __getattr__, __dir__
