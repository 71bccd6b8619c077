"""Which JSON parser the ingest decoder runs: one answer for the worker's log line, its gauge
``maxlake_decoder_json_parser{parser}``, ``maxlake config`` and ``maxlake status``.

The compiled parser (``maxlake_native``, built from ``native/`` by ``make install`` when Rust
is present) runs when it is importable; otherwise pyarrow's JSON reader does (the fallback).
Importing this module imports ``maxlake_native`` only (a compiled module, no Arrow, no Polars),
so a command that only reports the parser stays light.
"""

from __future__ import annotations

import importlib.metadata
from types import ModuleType
from typing import Literal

__all__ = ["PARSER", "UNAVAILABLE", "describe", "module", "report"]

module: ModuleType | None
try:
    import maxlake_native as module
except ImportError as exc:
    module = None
    UNAVAILABLE: str | None = (
        f"maxlake_native is not importable ({exc}); telemetry batches are parsed by pyarrow's "
        "JSON reader (slower). Build it with `make install` (needs Rust: https://rustup.rs)"
    )
else:
    UNAVAILABLE = None

PARSER: Literal["native", "arrow"] = "arrow" if module is None else "native"
"""Which parser the decoder uses: ``native`` (maxlake_native) or ``arrow`` (the fallback)."""


def describe() -> str:
    """Which parser the decoder runs, for logs and status: ``native (maxlake_native 0.1.0)``
    or ``arrow (fallback: <why the native one is not importable>)``."""
    if PARSER == "native":
        try:
            version = importlib.metadata.version("maxlake-native")
        except importlib.metadata.PackageNotFoundError:
            version = "?"
        return f"native (maxlake_native {version})"
    return f"arrow (fallback: {UNAVAILABLE})" if UNAVAILABLE else "arrow"


def report() -> dict[str, str]:
    """``{"parser": "native" | "arrow", "detail": describe()}``: what ``maxlake config`` and
    ``maxlake status --json`` show under ``json_parser``."""
    return {"parser": PARSER, "detail": describe()}
