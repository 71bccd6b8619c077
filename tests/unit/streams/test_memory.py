"""The batch worker's memory settings: Arrow's pool is the one configured, and releasing freed
memory leaves live Arrow data intact."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pyarrow as pa
import pytest
from pydantic import ValidationError

from maxlake.cli import main
from maxlake.settings import Settings
from streams import memory


@pytest.fixture
def restored_pool() -> Iterator[None]:
    before = pa.default_memory_pool()
    yield
    pa.set_memory_pool(before)


@pytest.mark.usefixtures("restored_pool")
@pytest.mark.parametrize(
    "pool", sorted(set(pa.supported_memory_backends()) & {"system", "mimalloc"})
)
def test_configure_makes_the_pool_arrows_default(pool: memory.ArrowPool) -> None:
    memory.configure(pool)
    assert pa.default_memory_pool().backend_name == pool
    assert pa.array(range(1000)).to_pylist() == list(range(1000))


@pytest.mark.usefixtures("restored_pool")
def test_release_keeps_live_arrow_data() -> None:
    memory.configure("system")
    kept = pa.array(range(100_000))
    dropped = pa.array(range(1_000_000))
    del dropped
    memory.release()
    assert kept.to_pylist()[-3:] == [99_997, 99_998, 99_999]


def test_the_default_pool_is_system_and_others_are_rejected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().arrow_memory_pool == "system"
    monkeypatch.setenv("MAXLAKE_ARROW_MEMORY_POOL", "tcmalloc")
    with pytest.raises(ValidationError, match="system"):
        Settings()


_POOL_OF_A_WORKER_PROCESS = """
from maxlake.cli import main
try:
    main(["worker", "--help"])
except SystemExit:
    pass
import os
import pyarrow as pa
print(pa.default_memory_pool().backend_name, os.environ.get("_RJEM_MALLOC_CONF"))
"""


_DEFAULT_DECAYS = f"dirty_decay_ms:{Settings().worker_jemalloc_decay_ms},muzzy_decay_ms:0"


@pytest.mark.parametrize(
    ("setting", "jemalloc", "allocators"),
    [
        (None, None, f"system {_DEFAULT_DECAYS}"),
        ("mimalloc", "narenas:1", f"mimalloc narenas:1,{_DEFAULT_DECAYS}"),
        (None, "dirty_decay_ms:500", "system dirty_decay_ms:500"),
        ("bogus", None, "mimalloc None"),
        ("decay 2000", None, "system dirty_decay_ms:2000,muzzy_decay_ms:0"),
        ("decay 0", "narenas:1", "system narenas:1,dirty_decay_ms:0,muzzy_decay_ms:0"),
        ("decay 2000", "muzzy_decay_ms:100", "system muzzy_decay_ms:100"),
    ],
)
def test_a_worker_process_has_its_allocators_from_the_start(
    setting: str | None, jemalloc: str | None, allocators: str
) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if "MEMORY_POOL" not in k and "MALLOC_CONF" not in k and "DECAY" not in k
    }
    if setting is not None and setting.startswith("decay "):
        env["MAXLAKE_WORKER_JEMALLOC_DECAY_MS"] = setting.split()[1]
    elif setting is not None:
        env["MAXLAKE_ARROW_MEMORY_POOL"] = setting
    if jemalloc is not None:
        env["_RJEM_MALLOC_CONF"] = jemalloc
    run = subprocess.run(
        [sys.executable, "-c", _POOL_OF_A_WORKER_PROCESS],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    # Arrow's C++ default pool (used under pyarrow's calls), not only pyarrow's, and the
    # options of deltalake's jemalloc; an invalid setting leaves both to the libraries and is
    # reported by the command.
    assert run.stdout.splitlines()[-1] == allocators


class _Resident:
    """Resident memory readings in MiB, one per call, as a worker's would follow each other."""

    def __init__(self, *readings: float | None) -> None:
        self.readings = list(readings)

    def __call__(self) -> float | None:
        return self.readings.pop(0)


def test_the_releaser_releases_after_every_batch_by_default() -> None:
    releaser = memory.Releaser(Settings().memory_keep_free_mib, resident=_Resident())
    assert [releaser.after_batch() for _ in range(3)] == [True, True, True]
    assert releaser.skipped == 0


def test_the_releaser_keeps_freed_memory_until_resident_grows_past_the_bound() -> None:
    # Read after each release (the floor), then before deciding on the next batch.
    resident = _Resident(400, 450, 500, 520, 410, 505, 511, 405)
    releaser = memory.Releaser(100, resident=resident)
    decisions = [releaser.after_batch() for _ in range(6)]
    # 450 and 500 are within 100 MiB of 400; 520 is not; then 505 is within 100 of 410, 511 not.
    assert decisions == [True, False, False, True, False, True]
    assert releaser.skipped == 3
    assert resident.readings == []


def test_the_releaser_releases_when_resident_memory_cannot_be_read() -> None:
    releaser = memory.Releaser(100, resident=_Resident(None, None, None))
    assert [releaser.after_batch() for _ in range(3)] == [True, True, True]


@pytest.mark.usefixtures("restored_pool")
def test_resident_memory_is_read_and_a_kept_batch_stays_usable() -> None:
    memory.configure("system")
    before = memory.resident_mib()
    assert before is not None
    assert before > 0
    releaser = memory.Releaser(1 << 20)
    kept = pa.array(range(100_000))
    assert releaser.after_batch()
    del kept
    assert not releaser.after_batch()
    assert pa.array(range(10)).to_pylist() == list(range(10))


def test_memory_settings_are_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAXLAKE_MEMORY_KEEP_FREE_MIB", "-1")
    with pytest.raises(ValidationError, match="memory_keep_free_mib"):
        Settings()
    monkeypatch.setenv("MAXLAKE_MEMORY_KEEP_FREE_MIB", "128")
    monkeypatch.setenv("MAXLAKE_WORKER_JEMALLOC_DECAY_MS", "-5")
    with pytest.raises(ValidationError, match="worker_jemalloc_decay_ms"):
        Settings()


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        (
            "MAXLAKE_WORKER_JEMALLOC_DECAY_MS",
            "99999999999999999999",
            "(a whole number of milliseconds, 0 to 86,400,000)",
        ),
        ("MAXLAKE_WORKER_JEMALLOC_DECAY_MS", "-1", "milliseconds, 0 to 86,400,000"),
        ("MAXLAKE_MEMORY_KEEP_FREE_MIB", "99999999999999999999", "MiB, 0 to 1,048,576"),
        ("MAXLAKE_MEMORY_KEEP_FREE_MIB", "lots", "MiB, 0 to 1,048,576"),
        ("MAXLAKE_MEMORY_MMAP_THRESHOLD_KIB", "65536", "KiB, 0 to 32,768"),
        ("MAXLAKE_MEMORY_MMAP_THRESHOLD_KIB", "-1", "KiB, 0 to 32,768"),
    ],
)
def test_a_memory_setting_out_of_range_is_one_line_with_its_unit_and_range(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    said: str,
) -> None:
    """A decay time jemalloc cannot hold was accepted, then ignored by jemalloc with bare
    ``<jemalloc>: Invalid conf value`` lines: refused before anything starts, naming the
    variable, its unit and its range."""
    monkeypatch.setenv(variable, value)
    assert main(["config"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"maxlake: error: {variable}: ")
    assert said in err
    assert "\n" not in err


def test_the_worker_s_first_line_names_its_group_and_allocators(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from streams.worker import start_line  # noqa: PLC0415 - the worker module is heavy

    monkeypatch.setenv("_RJEM_MALLOC_CONF", "dirty_decay_ms:500,muzzy_decay_ms:0")
    monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "system")
    line = start_line(Settings(group_id="plant-a-ingest", memory_keep_free_mib=64))
    assert line.startswith("joining consumer group plant-a-ingest with the ")
    assert "_RJEM_MALLOC_CONF=dirty_decay_ms:500,muzzy_decay_ms:0" in line
    assert "ARROW_DEFAULT_MEMORY_POOL=system" in line
    assert "MAXLAKE_MEMORY_KEEP_FREE_MIB=64" in line
    assert "MAXLAKE_MEMORY_MMAP_THRESHOLD_KIB=256," not in line
    assert line.endswith("MAXLAKE_MEMORY_MMAP_THRESHOLD_KIB=256")
    stream = start_line(Settings(ingest_engine="stream"))
    assert stream.endswith("(both MAXLAKE_MEMORY_* settings: batch engine only)")
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.hugetlb=0:glibc.malloc.mmap_threshold=4096")
    assert start_line(Settings()).endswith(
        "MAXLAKE_MEMORY_MMAP_THRESHOLD_KIB=256 (replaces glibc.malloc.mmap_threshold=4096, set "
        "for glibc)"
    )
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "")
    assert start_line(Settings(memory_mmap_threshold_kib=0)).endswith(
        "MAXLAKE_MEMORY_MMAP_THRESHOLD_KIB=0 (glibc's MALLOC_MMAP_THRESHOLD_= applies, in bytes)"
    )
    assert "default group id" in start_line(Settings())


_MAPPED_AFTER_A_LARGER_FREE = """
import ctypes, sys
from streams import memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd",
        "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
libc.mallinfo2.restype = MallInfo2
memory.configure("system", int(sys.argv[1]))
libc.free(libc.malloc(8 << 20))  # glibc's own threshold slides up to 8 MiB here
before = libc.mallinfo2().hblkhd
block = libc.malloc(1 << 20)
print(libc.mallinfo2().hblkhd - before >= 1 << 20)
libc.free(block)
"""


_NO_GLIBC_THRESHOLD = {
    k: v for k, v in os.environ.items() if k not in ("MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES")
}


@pytest.mark.skipif(
    memory._LIBC is None or not hasattr(memory._LIBC, "mallinfo2"),
    reason="glibc 2.33 or later only: the threshold is glibc's, mallinfo2 reads it",
)
@pytest.mark.parametrize(
    ("threshold_kib", "glibc_env", "mapped"),
    [
        (256, {}, "True"),
        (0, {}, "False"),
        # A threshold given to glibc (bytes) is replaced by the setting, even a mistaken one
        # (an empty value acts as ~0: every block mapped, 1.7x the CPU); with 0 it stays: 4 MiB
        # keeps 1 MiB blocks in the heap.
        (256, {"MALLOC_MMAP_THRESHOLD_": str(4 << 20)}, "True"),
        (256, {"GLIBC_TUNABLES": f"glibc.malloc.mmap_threshold={4 << 20}"}, "True"),
        (0, {"MALLOC_MMAP_THRESHOLD_": str(4 << 20)}, "False"),
        (0, {"GLIBC_TUNABLES": f"glibc.malloc.mmap_threshold={4 << 20}"}, "False"),
    ],
)
def test_a_large_block_gets_pages_of_its_own_after_a_larger_one_was_freed(
    threshold_kib: int, glibc_env: dict[str, str], mapped: str
) -> None:
    """With glibc's sliding threshold, a 1 MiB block after an 8 MiB one was freed comes from
    the shared heap (resident until trimmed); with the worker's threshold it is mapped on its
    own and handed back when freed."""
    run = subprocess.run(
        [sys.executable, "-c", _MAPPED_AFTER_A_LARGER_FREE, str(threshold_kib)],
        env={**_NO_GLIBC_THRESHOLD, **glibc_env},
        capture_output=True,
        text=True,
        check=True,
    )
    assert run.stdout.strip() == mapped
