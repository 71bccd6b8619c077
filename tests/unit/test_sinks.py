"""docs/EXTENDING.md, "Add a sink": a second sink plugged into the ingest pipeline.

``MemorySink`` (``tests/memory_sink.py``) keeps the four logical tables in memory and follows
the rules of :mod:`lake.sink`. The pipeline runs real simulator bytes (a quarter bad, resends
included) through the real decoder and Great Expectations suite into it; nothing reaches a Delta
lake. ``MAXLAKE_SINK`` / ``--sink`` and its errors are checked here too; the worker command with
a plugged-in sink is ``tests/integration/test_worker_sink.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lake import DUPLICATES, Sink, quarantine_table, silver_table
from lake.errors import SinkError
from lake.sink import load_sink
from maxlake.settings import Settings
from streams.ingest import IngestPipeline
from tests.memory_sink import MemorySink
from tests.unit.lake.batches import TOPIC, gateway, messages, settings, with_bad_input


def memory_sink(settings: Settings) -> MemorySink:
    """A sink factory as ``MAXLAKE_SINK`` names one."""
    return MemorySink()


def not_a_sink(settings: Settings) -> object:
    return object()


def _offsets_in(sink: MemorySink, name: str) -> list[int]:
    frame = sink.frame(name)
    if frame.is_empty():
        return []
    return sorted(set(frame.get_column("kafka_offset").to_list()))


def test_the_pipeline_writes_every_offset_once_into_a_second_sink(tmp_path: Path) -> None:
    events = with_bad_input(120)
    batch = messages([e.payload for e in events])
    sink = MemorySink()
    typed: Sink = sink
    pipeline = IngestPipeline(settings(tmp_path / "lake"), gateway(), typed, worker="test")

    first = pipeline.process("telemetry", batch[:70])
    second = pipeline.process("telemetry", batch[50:])
    again = IngestPipeline(settings(tmp_path / "lake"), gateway(), sink).process("telemetry", batch)

    silver = _offsets_in(sink, silver_table("telemetry"))
    quarantine = _offsets_in(sink, quarantine_table("telemetry"))
    duplicates = _offsets_in(sink, DUPLICATES)
    assert sorted(silver + quarantine + duplicates) == list(range(len(batch)))
    assert (first.consumed, second.consumed, again.consumed) == (70, 50, 0)
    assert (second.skipped, again.skipped) == (20, len(batch))
    resends = [i for i, e in enumerate(events) if e.bad_class == "duplicate_resend"]
    assert resends
    assert set(resends) <= set(duplicates)
    assert {i for i, e in enumerate(events) if e.bad_class in {"malformed_json", "empty"}} <= set(
        quarantine
    )
    assert sink.committed_offsets("telemetry", [(TOPIC, 0)]) == {(TOPIC, 0): len(batch) - 1}
    assert not (tmp_path / "lake").exists()


def test_a_sink_is_loaded_from_its_factory_reference(tmp_path: Path) -> None:
    plugged = load_sink("tests.unit.test_sinks:memory_sink", settings(tmp_path))
    assert isinstance(plugged, MemorySink)
    assert Settings(lake_root=str(tmp_path), sink="tests.unit.test_sinks:memory_sink").sink


@pytest.mark.parametrize(
    ("reference", "problem"),
    [
        ("tests.unit.no_such_module:make", "cannot import 'tests.unit.no_such_module'"),
        (
            "tests.unit.test_sinks:no_factory",
            "'tests.unit.test_sinks' has no callable 'no_factory'",
        ),
        ("tests.unit.test_sinks:not_a_sink", "a 'object' object without write, committed_offsets"),
    ],
)
def test_a_bad_sink_reference_names_the_problem(
    tmp_path: Path, reference: str, problem: str
) -> None:
    with pytest.raises(SinkError, match="MAXLAKE_SINK or --sink") as info:
        load_sink(reference, settings(tmp_path))
    assert problem in str(info.value)


def test_a_malformed_sink_setting_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sink"):
        Settings(lake_root=str(tmp_path), sink="tests/unit/test_sinks.py")
