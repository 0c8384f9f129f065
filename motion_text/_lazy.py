"""Lazy re-exports for package ``__init__`` modules (PEP 562 module ``__getattr__``).

A package lists its public names in a ``{name: module}`` table; ``import motion_text`` then imports nothing heavy, and
``motion_text.TMR`` (or ``from motion_text import TMR``) imports :mod:`motion_text.methods.tmr` on first use. This
keeps the command line's cold start (``motion-text --help``) fast.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, table: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` resolving each name of ``table`` from its module on first access.

    ``table`` maps a public name to the absolute module that defines it; a resolved name is cached in the package's
    namespace, so the module is imported once.
    """

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(table))

    return __getattr__, __dir__
