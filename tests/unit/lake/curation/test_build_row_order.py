"""Same silver rows in another order, written in other commits: the same content hash.

The reference jobs' float statistics come from exact integer sums (``lake.curation.jobs.
_exact``), so neither the order of the rows in the Delta files nor the number of files may move
a bit of a published set. The readings are chosen so that plain float sums do differ between
the two orders (checked below), so the test fails for a job that sums floats as they come.
"""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import pytest

from lake import DeltaStore
from lake.curation import Manifest, build_dataset, parse_spec
from tests.unit.lake.curation.test_build_helpers import (
    STUTTGART,
    T0,
    TENANT,
    Reading,
    registry,
    write_down_event,
    write_inspections,
    write_telemetry,
)

HOURS = 12
PARAMS = {"predictive_maintenance": {"window": "10m", "horizon_h": 1}}
"""Short windows: many output rows, each with few readings."""


def _readings() -> list[Reading]:
    """A reading of spindle_temp every 30 s per Stuttgart machine; values of mixed magnitude."""
    rnd = random.Random(17)
    plant, line, machines = STUTTGART
    return [
        (
            plant,
            line,
            machine,
            T0 + timedelta(seconds=30 * k + i),
            "spindle_temp",
            20.0 + rnd.random() * 10.0 ** rnd.randint(-6, 1),
        )
        for i, machine in enumerate(machines)
        for k in range(HOURS * 120)
    ]


def _lake(root: Path, rows: list[Reading], commits: int) -> DeltaStore:
    store = DeltaStore(root)
    size = -(-len(rows) // commits)
    for c in range(commits):
        write_telemetry(store, rows[c * size : (c + 1) * size], first_offset=c * size)
    for hour, machine in ((3, "cnc-101"), (7, "cnc-102"), (10, "cnc-101")):
        write_down_event(store, machine, T0 + timedelta(hours=hour, minutes=20))
    parts = []
    for k in range(HOURS * 4):
        failed = k % 5 == 0
        when = T0 + timedelta(minutes=15 * k + 10)
        parts.append(
            (
                f"s{k:03d}",
                ["cnc-101", "cnc-102"],
                when,
                "FAIL" if failed else "PASS",
                ["DIM-OOT"] if failed else [],
                f"lot-{k // 8}",
            )
        )
    write_inspections(store, parts)
    return store


def _build(store: DeltaStore, job: str, out: Path) -> Manifest:
    spec = parse_spec(
        {
            "name": job.replace("_", "-"),
            "description": "row order test",
            "purpose": "predictive-maintenance-research",
            "job": {"name": job, "tags": ["spindle_temp"], **PARAMS.get(job, {})},
            "filters": {"tenants": [TENANT]},
        }
    )
    return build_dataset(store, spec, registry=registry(), out_root=out, allow_failed_quality=True)


def _plain_hourly_sums(rows: list[Reading]) -> dict[tuple[str, int], float]:
    """Float sums per (machine, hour) in row order: what a naive aggregation computes."""
    sums: dict[tuple[str, int], float] = {}
    for _, _, machine, when, _, value in rows:
        key = (machine, (when - T0) // timedelta(hours=1))
        sums[key] = sums.get(key, 0.0) + value
    return sums


@pytest.fixture(scope="module")
def lakes(tmp_path_factory: pytest.TempPathFactory) -> tuple[DeltaStore, DeltaStore]:
    """The same rows: in time order in one commit, and shuffled over three commits."""
    rows = _readings()
    shuffled = list(rows)
    random.Random(3).shuffle(shuffled)
    plain = _plain_hourly_sums(rows)
    assert any(total != plain[key] for key, total in _plain_hourly_sums(shuffled).items())
    root = tmp_path_factory.mktemp("row-order")
    return _lake(root / "a", rows, 1), _lake(root / "b", shuffled, 3)


@pytest.mark.parametrize("job", ["predictive_maintenance", "part_quality"])
def test_shuffled_rows_in_other_commits_give_the_same_hash(
    tmp_path: Path, lakes: tuple[DeltaStore, DeltaStore], job: str
) -> None:
    first = _build(lakes[0], job, tmp_path / "out-a")
    second = _build(lakes[1], job, tmp_path / "out-b")

    assert sum(s.rows for s in first.splits.values()) > 0
    assert second.content_hash == first.content_hash
    assert {k: s.sha256 for k, s in second.splits.items()} == {
        k: s.sha256 for k, s in first.splits.items()
    }
