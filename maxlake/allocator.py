"""Polars' memory allocator, configured for maxlake's processes.

Polars allocates with jemalloc. By default jemalloc keeps up to four arenas per core, and each
Polars thread allocates from its own; memory one stage of a curation job frees stays in the
arena of the thread that freed it until Polars' decay times have passed (dirty pages 500 ms,
then 1 s as MADV_FREE pages, which still count as resident). With a single arena the next
stage reuses it at once. On the 20M-row benchmark lake this lowers part_quality's peak resident
memory by ~30-50 MiB (docs/BENCHMARKS.md, issue 17).

Polars reads ``_RJEM_MALLOC_CONF`` once, when it is first imported, and appends it to its own
defaults (``polars/__init__.py``), and it writes the result back to the environment, where
child processes inherit it. So :func:`configure_polars_allocator` runs before any ``import
polars`` and appends the arena count to whatever the variable holds, unless that already names
one (an operator's choice wins).
"""

from __future__ import annotations

import os
import sys

__all__ = ["POLARS_JEMALLOC_CONF", "configure_polars_allocator"]

POLARS_JEMALLOC_CONF = "narenas:1"
"""jemalloc options maxlake gives Polars: one arena shared by all of Polars' threads."""


def configure_polars_allocator() -> bool:
    """Give Polars :data:`POLARS_JEMALLOC_CONF` unless ``_RJEM_MALLOC_CONF`` names ``narenas``.

    Returns:
        Whether the setting takes effect: False when Polars is already imported in this
        process (its allocator is configured) or ``_RJEM_MALLOC_CONF`` already sets an arena
        count.
    """
    current = os.environ.get("_RJEM_MALLOC_CONF", "")
    if "polars" in sys.modules or "narenas:" in current:
        return False
    os.environ["_RJEM_MALLOC_CONF"] = ",".join(filter(None, (current, POLARS_JEMALLOC_CONF)))
    return True
