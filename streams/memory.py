"""Process-wide memory settings of a batch worker: Arrow's pool, glibc's arenas, trimming,
and Python's garbage collector.

A worker's resident memory is mostly not Arrow's: of a 50,000-event batch's ~250 MiB at peak,
Arrow's pool holds ~70 MiB; the rest is NumPy, pandas and Python objects (glibc ``malloc``) and
delta-rs's Parquet encoding (Rust, also ``malloc``). Freed memory stays in the allocators'
free lists, spread over one glibc arena per thread that allocated (the event loop, the prepare
and write threads, Arrow's and Tokio's pools), so RSS settles far above what the batches in
hand need. :func:`configure` (once, at start) and :func:`release` (after each batch is written)
hand it back; figures in docs/BENCHMARKS.md (issue 20, fifth pass).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import os
from collections.abc import Callable
from typing import Literal

import pyarrow as pa

from streams.errors import StreamsError

__all__ = [
    "ArrowPool",
    "Releaser",
    "configure",
    "glibc_threshold_env",
    "release",
    "resident_mib",
    "tune_collector",
]

logger = logging.getLogger(__name__)

ArrowPool = Literal["system", "mimalloc", "jemalloc"]

_M_ARENA_MAX = -8
"""``mallopt`` parameter number of ``M_ARENA_MAX`` (glibc ``malloc.h``)."""

_ARENA_MAX = 2
"""glibc arenas at most (its default is 8 per core): the threads share two free lists."""

_M_MMAP_THRESHOLD = -3
"""``mallopt`` parameter number of ``M_MMAP_THRESHOLD`` (glibc ``malloc.h``)."""


def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (``malloc_trim`` and ``mallopt`` exist), else None."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


_LIBC = _glibc()

_GC_THRESHOLDS = (50_000, 10, 10)
"""``gc.set_threshold`` of a batch worker (Python's default is 700, 10, 10)."""


def configure(pool: ArrowPool, mmap_threshold_kib: int = 0) -> None:
    """Make ``pool`` Arrow's default memory pool, cap glibc at two arenas and, with
    ``mmap_threshold_kib`` > 0, give every glibc allocation of at least that many KiB pages of
    its own (``M_MMAP_THRESHOLD``).

    glibc's own threshold slides up to 32 MiB as large blocks are freed, after which a batch's
    NumPy, pandas and Arrow buffers (the system pool) come from the shared heaps: freed, they
    stay resident until :func:`release` trims them, and a heap shrinks only down to its highest
    block still in use. Mapped on their own, they are handed back the moment they are freed, so
    the batches in hand peak at what is alive, not at what was alive some time in between:
    ~90 MiB lower at 256 KiB, for ~0.5 more page faults per event (docs/BENCHMARKS.md, issue
    20, seventeenth pass). Setting the threshold also stops glibc sliding it, and replaces one
    given to glibc in its environment (:func:`glibc_threshold_env`); 0 leaves glibc's as it is.

    Call once, before the worker's threads allocate: arenas already made are kept.

    Raises:
        StreamsError: this pyarrow build has no ``pool`` (the message lists those it has), or
            glibc refused the threshold (``mallopt`` failed).
    """
    supported = pa.supported_memory_backends()
    if pool not in supported:
        raise StreamsError(
            f"Arrow memory pool {pool!r} is not in this pyarrow build; "
            f"choose one of: {', '.join(supported)}"
        )
    factory = {
        "system": pa.system_memory_pool,
        "mimalloc": pa.mimalloc_memory_pool,
        "jemalloc": pa.jemalloc_memory_pool,
    }[pool]
    pa.set_memory_pool(factory())
    if _LIBC is None:
        return
    _LIBC.mallopt(_M_ARENA_MAX, _ARENA_MAX)
    threshold = "glibc's (sliding, or as its environment sets it)"
    if mmap_threshold_kib > 0:
        if not _LIBC.mallopt(_M_MMAP_THRESHOLD, mmap_threshold_kib << 10):
            raise StreamsError(
                f"glibc refused an mmap threshold of {mmap_threshold_kib:,} KiB "
                "(MAXLAKE_MEMORY_MMAP_THRESHOLD_KIB)"
            )
        threshold = f"{mmap_threshold_kib} KiB"
    logger.debug(
        "Arrow memory pool %s, glibc arenas <= %d, mmap threshold %s", pool, _ARENA_MAX, threshold
    )


def glibc_threshold_env() -> str | None:
    """The mmap threshold glibc was given in its environment, as ``NAME=value`` (glibc reads it
    in bytes; ``MALLOC_MMAP_THRESHOLD_`` or ``glibc.malloc.mmap_threshold`` in
    ``GLIBC_TUNABLES``), or None. A positive ``MAXLAKE_MEMORY_MMAP_THRESHOLD_KIB`` replaces it
    when the batch engine starts; 0 keeps it."""
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return f"MALLOC_MMAP_THRESHOLD_={os.environ['MALLOC_MMAP_THRESHOLD_']}"
    for tunable in os.environ.get("GLIBC_TUNABLES", "").split(":"):
        if tunable.startswith("glibc.malloc.mmap_threshold="):
            return tunable
    return None


def release() -> None:
    """Hand memory freed by Arrow and ``malloc`` back to the system (a few ms)."""
    pa.default_memory_pool().release_unused()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def resident_mib() -> float | None:
    """The process's resident memory now (``/proc/self/statm``), MiB; None where there is none."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / (1 << 20)


class Releaser:
    """When a batch worker hands freed memory back (:func:`release`, after each written batch).

    ``malloc_trim`` hands back every free page, and the next batch touches most of them again:
    each is a page fault (the kernel maps and zeroes it), ~0.5 per event in a worker
    (docs/BENCHMARKS.md, issue 20, fourteenth pass). With ``keep_mib`` > 0 the worker releases
    only once its resident memory has grown more than ``keep_mib`` above what it was right
    after it last released, so up to that much freed memory stays mapped for the next batch.

    Args:
        keep_mib: MiB of growth kept (``memory_keep_free_mib``); 0 releases after every batch.
        resident: reads the resident memory (MiB, None when unknown: then it releases).
    """

    def __init__(self, keep_mib: int, resident: Callable[[], float | None] = resident_mib) -> None:
        self.keep_mib = keep_mib
        self._resident = resident
        self._floor: float | None = None
        self.skipped = 0

    def after_batch(self) -> bool:
        """Release unless within ``keep_mib`` of the last release; returns whether it did."""
        if self.keep_mib > 0 and self._floor is not None:
            now = self._resident()
            if now is not None and now <= self._floor + self.keep_mib:
                self.skipped += 1
                return False
        release()
        if self.keep_mib > 0:
            self._floor = self._resident()
        return True


def tune_collector() -> None:
    """Freeze the objects made so far and raise the young-generation threshold to 50,000.

    Call once the pipeline is built. Every batch allocates ~10 Python objects per event, so
    the collector ran hundreds of times per batch, and each older-generation pass walked the
    ~300,000 long-lived objects of GX, pandas and Faust: ~5 us per event. Frozen, they are never
    walked again; objects made later are collected as before. A young collection every 700 new
    objects ran ~70 times per 50,000 fetched records, and each older pass walked every batch in
    hand: 2.4 -> 0.9 us per record at 50,000 (docs/BENCHMARKS.md, issue 20).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*_GC_THRESHOLDS)
