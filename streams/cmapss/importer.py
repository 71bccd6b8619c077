"""Import a C-MAPSS sub-dataset through the real ingest path: plant producer -> Kafka -> worker.

Every cycle of every engine becomes one telemetry event of the reference tenant with 24
readings (3 settings, 21 sensors, NASA units); its ``event_time`` is ``epoch + (cycle - 1) x
cycle duration`` and its ``event_id`` is ``<machine>-c<cycle, 4 digits>``, so a re-import sends
identical events. The import

1. registers the tenant, machine type and engines and adds the tenant's sharing contract
   (:mod:`streams.cmapss.registration`),
2. writes the test engines' true RUL as ground truth beside the lake
   (``<lake root>/reference/cmapss/<subset>/ground_truth.csv``; never sent, never a feature),
3. creates the tenant's topics and sends, through :class:`~streams.producer.PlantProducer`, only
   the cycles whose event id is not in silver yet (so running it twice adds nothing; a resend
   that races an unfinished first import is removed by the worker's dedupe).

The epoch is fixed per lake and sub-dataset: the first import records it in
``import.json`` (default: a UTC midnight early enough that the longest run ends before now, so
every event passes the worker's age and future-time checks); later imports reuse it.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.dataset as ds

from lake import DeltaStore, silver_table
from lake.location import LakeLocation
from lake.registry_store import RegistryStore
from maxlake.errors import ConfigError
from maxlake.settings import Settings
from schemas import EventKind
from streams.cmapss.assets import TAGS, TENANT, TEST_LINE, TRAIN_LINE, machine_id
from streams.cmapss.files import Runs, read_rul, read_runs, subset_of
from streams.cmapss.registration import ensure_contract, reference_dir, register
from streams.producer import PlantProducer
from streams.topics import ensure_topics

__all__ = ["ImportReport", "build_events", "import_cmapss", "silver_event_count"]

DEFAULT_CYCLE_S = 600
"""Default duration of one cycle: 10 minutes (FD004's longest run, 543 cycles, spans 3.8 days)."""


@dataclass(frozen=True)
class ImportReport:
    """What one import did.

    Attributes:
        subset: the sub-dataset (``fd001``).
        engines: training and test engines in the files.
        events: cycles in the files (one event each).
        sent: events sent to Kafka by this run.
        skipped: events already in silver, not sent again.
        epoch: event time of cycle 1 (UTC).
        cycle_s: seconds between two cycles.
        registry: a snapshot of the registry as one TOML file (``<lake root>/reference/
            registry.toml``) for offline tools that take ``--registry FILE``; a worker follows
            the live registry (``registry_version``) by itself and must not be pinned to it.
        registry_version: the live registry version holding the imported engines.
        ground_truth: the ground-truth file written.
        seconds: wall time of the run.
    """

    subset: str
    engines: dict[str, int]
    events: int
    sent: int
    skipped: int
    epoch: datetime
    cycle_s: int
    registry: Path
    registry_version: int
    ground_truth: Path
    seconds: float


def import_cmapss(
    settings: Settings,
    *,
    train: Path,
    test: Path,
    rul: Path,
    subset: str | None = None,
    epoch: datetime | None = None,
    cycle_s: int | None = None,
    engines: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> ImportReport:
    """Import one sub-dataset (see the module docstring).

    Args:
        settings: broker, topic naming, lake root and spool directory.
        train: training run file (engines run to failure).
        test: test run file (engines cut off before failure).
        rul: true RUL of each test engine.
        subset: sub-dataset id; default from the file name (``train_FD002.txt`` -> ``fd002``).
        epoch: event time of cycle 1; default the lake's recorded epoch, else a computed one.
        cycle_s: seconds per cycle; default the recorded one, else :data:`DEFAULT_CYCLE_S`.
        engines: import only the first N training and first N test engines (tests, demos).
        progress: called with one line per stage.

    Raises:
        CmapssFileError: a file is missing or malformed.
        ConfigError: ``epoch``/``cycle_s`` differ from what this lake recorded, or the lake
            root is not a local path.
        TopicAdminError, DeliveryError: Kafka refused.
    """
    started = time.monotonic()
    say = progress or (lambda _line: None)
    subset = (subset or subset_of(train)).lower()
    train_runs, test_runs = read_runs(train), read_runs(test)
    truth = read_rul(rul, len(test_runs.engines))
    if engines is not None:
        train_runs, test_runs = _first(train_runs, engines), _first(test_runs, engines)
        truth = truth[: len(test_runs.engines)]
    say(
        f"{subset}: {len(train_runs.engines)} training engines ({len(train_runs.units):,} cycles), "
        f"{len(test_runs.engines)} test engines ({len(test_runs.units):,} cycles)"
    )
    folder = reference_dir(settings) / subset
    record = _record(folder, subset, train_runs, test_runs, epoch, cycle_s)
    epoch_at = datetime.fromisoformat(record["epoch"])
    period = int(record["cycle_s"])
    registry = register(settings)
    registry_version = RegistryStore(LakeLocation.from_settings(settings)).latest_version()
    say(f"registry: tenant {TENANT}, plant {subset} in live registry version {registry_version}")
    say(f"sharing contract: {ensure_contract(settings)}")
    ground_truth = _write_ground_truth(folder, subset, test_runs, truth)
    say(f"ground truth: {ground_truth}")

    ensure_topics(settings, [TENANT], [EventKind.TELEMETRY.value])
    known = _silver_event_ids(settings, subset)
    payloads = build_events(subset, TRAIN_LINE, train_runs, epoch_at, period)
    payloads += build_events(subset, TEST_LINE, test_runs, epoch_at, period)
    sent = 0
    topic = settings.topic_for(TENANT, EventKind.TELEMETRY.value)
    with PlantProducer(settings, client_id=f"maxlake-import-cmapss-{subset}") as producer:
        for event_id, machine, payload in payloads:
            if event_id in known:
                continue
            producer.send_raw(topic, payload, key=machine.encode())
            sent += 1
        producer.flush()
        if producer.spool_pending:
            say(f"broker unreachable: {producer.spool_pending:,} events spooled for later")
    say(f"sent {sent:,} events, {len(payloads) - sent:,} already in the lake")
    return ImportReport(
        subset=subset,
        engines={"train": len(train_runs.engines), "test": len(test_runs.engines)},
        events=len(payloads),
        sent=sent,
        skipped=len(payloads) - sent,
        epoch=epoch_at,
        cycle_s=period,
        registry=registry,
        registry_version=registry_version,
        ground_truth=ground_truth,
        seconds=time.monotonic() - started,
    )


def build_events(
    subset: str, line: str, runs: Runs, epoch: datetime, cycle_s: int
) -> list[tuple[str, str, bytes]]:
    """(event_id, machine, JSON bytes) of every cycle of ``runs`` in file order."""
    units = [(t.tag, t.unit) for t in TAGS]
    out: list[tuple[str, str, bytes]] = []
    machines: dict[int, str] = {}
    base_us = int(epoch.timestamp()) * 1_000_000
    for unit, cycle, row in zip(
        runs.units.tolist(), runs.cycles.tolist(), runs.values.tolist(), strict=True
    ):
        machine = machines.get(unit) or machines.setdefault(unit, machine_id(subset, line, unit))
        event_id = f"{machine}-c{cycle:04d}"
        at = datetime.fromtimestamp((base_us + (cycle - 1) * cycle_s * 1_000_000) / 1e6, UTC)
        event: dict[str, Any] = {
            "event_id": event_id,
            "schema_version": 1,
            "kind": "telemetry",
            "tenant": TENANT,
            "plant": subset,
            "line": line,
            "machine": machine,
            "event_time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "readings": [
                {"tag": tag, "value": value, "unit": u}
                for (tag, u), value in zip(units, row, strict=True)
            ],
        }
        out.append((event_id, machine, orjson.dumps(event)))
    return out


def silver_event_count(settings: Settings, subset: str) -> int:
    """Distinct events of the sub-dataset in ``silver/telemetry`` (read from the lake)."""
    return len(_silver_event_ids(settings, subset))


def _silver_event_ids(settings: Settings, subset: str) -> set[str]:
    flt = (ds.field("tenant") == TENANT) & (ds.field("plant") == subset)
    rows = DeltaStore.from_settings(settings).read(
        silver_table(EventKind.TELEMETRY), columns=["event_id"], filter=flt
    )
    if rows is None:
        return set()
    ids = rows["event_id"]
    unique: pa.Array = ids.unique()
    return {str(v) for v in unique.to_pylist()}


def _first(runs: Runs, engines: int) -> Runs:
    keep = set(runs.engines[:engines])
    mask = [u in keep for u in runs.units.tolist()]
    return Runs(runs.path, runs.units[mask], runs.cycles[mask], runs.values[mask])


def _record(
    folder: Path,
    subset: str,
    train: Runs,
    test: Runs,
    epoch: datetime | None,
    cycle_s: int | None,
) -> dict[str, Any]:
    """The lake's import record of ``subset`` (created on the first import)."""
    path = folder / "import.json"
    old: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    if cycle_s is not None and cycle_s < 1:
        raise ConfigError(f"--cycle-seconds must be >= 1 s, got {cycle_s} s")
    period = cycle_s or int(old.get("cycle_s", DEFAULT_CYCLE_S))
    if epoch is not None and epoch.tzinfo is None:
        raise ConfigError(f"--epoch {epoch.isoformat()} has no offset: write e.g. 2026-01-01T00Z")
    longest = int(max(train.cycles.max(), test.cycles.max()))
    if epoch is None and "epoch" in old:
        at = datetime.fromisoformat(old["epoch"])
    elif epoch is None:
        days = math.ceil(longest * period / 86400) + 1
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        at = today - timedelta(days=days)
    else:
        at = epoch.astimezone(UTC)
    for key, new, before in (
        ("epoch", at.isoformat(), old.get("epoch")),
        ("cycle_s", period, old.get("cycle_s")),
    ):
        if before is not None and before != new:
            raise ConfigError(
                f"{path}: this lake imported {subset} with {key} {before}; importing it again with "
                f"{new} would add every cycle twice at other times (omit the option)"
            )
    record = {
        "subset": subset,
        "epoch": at.isoformat(),
        "cycle_s": period,
        "longest_run_cycles": longest,
        "train_engines": sorted({*old.get("train_engines", []), *train.engines}),
        "test_engines": sorted({*old.get("test_engines", []), *test.engines}),
        "files": {"train": str(train.path), "test": str(test.path)},
    }
    _write_atomic(path, json.dumps(record, indent=2).encode() + b"\n")
    return record


def _write_ground_truth(folder: Path, subset: str, test: Runs, truth: list[int]) -> Path:
    """``machine,last_cycle,rul_cycles`` per test engine (the RUL after its last cycle)."""
    last = test.last_cycles()
    lines = ["machine,last_cycle,rul_cycles"]
    for engine, rul in zip(test.engines, truth, strict=True):
        lines.append(f"{machine_id(subset, TEST_LINE, engine)},{last[engine]},{rul}")
    path = folder / "ground_truth.csv"
    _write_atomic(path, ("\n".join(lines) + "\n").encode())
    return path


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
