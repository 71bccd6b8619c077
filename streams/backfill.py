"""Backfill: ingest a historical JSON-lines file through the same path as live data.

Each line is one message, exactly as a plant would have sent it. Lines go through the ingest
pipeline (decoder, the current suite, dedupe, the exactly-once writer) as if they came from a
Kafka topic named ``backfill-<name>.<tenant>.<kind>`` (``name``: the file's stem unless given),
partition 0, with the line number as offset.
So late data lands in the date partitions of its event time, bad lines are quarantined with
their line number as ``kafka_offset``, every line is accounted for in ``ops/validation_runs``,
and a re-run (or a run resumed after a crash) skips the lines the lake already holds: the
writer's app transactions (``<topic>/0`` -> last line written) make it so. The name keeps
two different files of the same tenant and kind apart; running the same file under another
name ingests it again (its events are then recognised as resends only within that name).

Without ``tenant`` each line's ``tenant`` field picks its topic (lines without one go to
``backfill-<name>.unknown.<kind>`` and are quarantined as a tenant mismatch or a decode
error). Blank lines are ignored. Events older than ``MAXLAKE_MAX_EVENT_AGE_DAYS`` are
rejected as they are live; raise it for the backfill run if needed.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from lake import BatchWriter, DeltaStore
from lake.registry_store import registry_source
from maxlake.errors import ConfigError
from maxlake.settings import Settings
from quality import ValidationGateway
from schemas import EventKind
from streams.ingest import IngestPipeline, RawMessage

__all__ = ["BackfillReport", "backfill_file", "backfill_topic"]

logger = logging.getLogger(__name__)

_UNKNOWN_TENANT = "unknown"
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


def backfill_name(path: Path) -> str:
    """The default backfill name of a file: its stem with anything but ``[A-Za-z0-9_-]``
    replaced by ``-``."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", path.stem)[:100] or "file"


def backfill_topic(name: str, tenant: str, kind: EventKind | str) -> str:
    """The synthetic topic of a backfill: ``backfill-<name>.<tenant>.<kind>``."""
    return f"backfill-{name}.{tenant}.{EventKind(kind).value}"


@dataclass
class BackfillReport:
    """What one backfill run added to the lake (re-runs add nothing)."""

    path: str
    kind: str
    lines: int = 0
    blank: int = 0
    already_in_lake: int = 0
    consumed: int = 0
    silver_events: int = 0
    silver_rows: int = 0
    quarantined: int = 0
    duplicates: int = 0
    topics: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return dict(self.__dict__)


def _tenant_of(line: bytes) -> str:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return _UNKNOWN_TENANT
    tenant = value.get("tenant") if isinstance(value, dict) else None
    return tenant if isinstance(tenant, str) and tenant and "." not in tenant else _UNKNOWN_TENANT


def _read_lines(
    path: Path, name: str, kind: EventKind, tenant: str | None, report: BackfillReport
) -> dict[str, list[RawMessage]]:
    by_topic: dict[str, list[RawMessage]] = {}
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.rstrip(b"\r\n")
            report.lines += 1
            if not line.strip():
                report.blank += 1
                continue
            topic = backfill_topic(name, tenant or _tenant_of(line), kind)
            by_topic.setdefault(topic, []).append(RawMessage(topic, 0, number, None, None, line))
    return by_topic


def backfill_file(
    settings: Settings,
    path: Path,
    kind: EventKind | str,
    *,
    tenant: str | None = None,
    name: str | None = None,
    gateway: ValidationGateway | None = None,
    batch_size: int = 5000,
) -> BackfillReport:
    """Ingest the JSON lines of ``path`` as events of ``kind``; idempotent.

    Args:
        settings: lake root and decode limits (``max_event_age_days`` bounds how old events
            may be).
        path: a JSON-lines file, one event per line.
        kind: event kind of every line.
        tenant: the tenant of every line (its topic; the decoder rejects lines naming another
            tenant); default: each line's ``tenant`` field.
        name: identifies this backfill in topic names (``[A-Za-z0-9_-]``); default: derived
            from the file name. Re-running with the same name skips the lines already in.
        gateway: the validation gateway (default: a new one over the packaged suites).
        batch_size: lines per micro-batch.

    Raises:
        ConfigError: the file does not exist, is not a regular file (a folder, ``/dev/null``)
            or is empty, or ``tenant`` or ``name`` is not a valid topic segment.
    """
    kind = EventKind(kind)
    _check_file(path)
    if tenant is not None and (not tenant or "." in tenant):
        raise ConfigError(f"invalid tenant {tenant!r}: a non-empty name without dots")
    name = name if name is not None else backfill_name(path)
    if not _NAME.match(name):
        raise ConfigError(f"invalid backfill name {name!r}: 1-100 of A-Z a-z 0-9 _ -")
    report = BackfillReport(path=str(path), kind=kind.value)
    by_topic = _read_lines(path, name, kind, tenant, report)
    report.topics = sorted(by_topic)
    if not by_topic:
        return report
    writer = BatchWriter(DeltaStore.from_settings(settings))
    done = writer.committed_offsets(kind.value, [(t, 0) for t in by_topic])
    pending = {
        topic: [m for m in messages if m.offset > done[(topic, 0)]]
        for topic, messages in by_topic.items()
    }
    report.already_in_lake = sum(len(m) for m in by_topic.values()) - sum(
        len(m) for m in pending.values()
    )
    if not any(pending.values()):
        return report
    gateway = gateway or ValidationGateway(registry_source(settings))
    pipeline = IngestPipeline(settings, gateway, writer, worker=f"backfill:{path.name}")
    for topic, messages in sorted(pending.items()):
        for start in range(0, len(messages), batch_size):
            result = pipeline.process(kind, messages[start : start + batch_size])
            report.consumed += result.consumed
            report.silver_events += result.silver_events
            report.silver_rows += result.silver_rows
            report.quarantined += result.quarantined
            report.duplicates += result.duplicates
            report.already_in_lake += result.skipped
        logger.info("backfilled %s: %s lines", topic, f"{len(messages):,}")
    return report


def _check_file(path: Path) -> None:
    if not path.exists():
        raise ConfigError(f"backfill file {path} does not exist")
    if not path.is_file():
        what = "a folder" if path.is_dir() else "a device, pipe or socket"
        raise ConfigError(
            f"backfill file {path} is not a regular file ({what}); give a JSON-lines file"
        )
    if path.stat().st_size == 0:
        raise ConfigError(f"backfill file {path} is empty (0 bytes): nothing to backfill")
