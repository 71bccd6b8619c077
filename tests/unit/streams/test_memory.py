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


@pytest.mark.parametrize(
    ("setting", "jemalloc", "allocators"),
    [
        (None, None, "system dirty_decay_ms:0,muzzy_decay_ms:0"),
        ("mimalloc", "narenas:1", "mimalloc narenas:1,dirty_decay_ms:0,muzzy_decay_ms:0"),
        (None, "dirty_decay_ms:500", "system dirty_decay_ms:500"),
        ("bogus", None, "mimalloc None"),
    ],
)
def test_a_worker_process_has_its_allocators_from_the_start(
    setting: str | None, jemalloc: str | None, allocators: str
) -> None:
    env = {k: v for k, v in os.environ.items() if "MEMORY_POOL" not in k and "MALLOC_CONF" not in k}
    if setting is not None:
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
