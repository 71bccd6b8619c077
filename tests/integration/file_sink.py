"""A sink for ``maxlake worker --sink tests.integration.file_sink:file_sink``.

The in-memory sink of ``tests/memory_sink.py``, plus one JSON line per written batch (per
table, the Kafka coordinates it took) in ``sink.jsonl`` beside the worker's Faust data dir, so
the test reads what the worker process kept.
"""

from __future__ import annotations

import json
from pathlib import Path

from lake import BatchOutput, WriteResult
from maxlake.settings import Settings
from tests.memory_sink import MemorySink

__all__ = ["FileSink", "file_sink"]


class FileSink(MemorySink):
    """:class:`MemorySink` that logs what each batch added to ``log`` (JSON lines)."""

    def __init__(self, log: Path) -> None:
        super().__init__()
        self.log = log

    def write(self, batch: BatchOutput) -> WriteResult:
        """Keep the batch as :class:`MemorySink` does, then log the coordinates it added."""
        before = {name: len(parts) for name, parts in self.tables.items()}
        result = super().write(batch)
        added: dict[str, list[tuple[str, int, int]]] = {}
        for name, parts in self.tables.items():
            coords = {
                (topic, partition, offset)
                for table in parts[before.get(name, 0) :]
                for topic, partition, offset in zip(
                    table["kafka_topic"].to_pylist(),
                    table["kafka_partition"].to_pylist(),
                    table["kafka_offset"].to_pylist(),
                    strict=True,
                )
            }
            if coords:
                added[name] = sorted(coords)
        with self.log.open("a", encoding="utf-8") as out:
            out.write(json.dumps(added) + "\n")
        return result


def file_sink(settings: Settings) -> FileSink:
    """The factory ``--sink`` names: logs to ``sink.jsonl`` beside the Faust data dir."""
    return FileSink(Path(settings.faust_datadir).parent / "sink.jsonl")
