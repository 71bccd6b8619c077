"""The lake: Delta table layout, the sink interface and its exactly-once Delta writer, lake reads.

deltalake is wrapped once, in :mod:`lake.delta`; everything else goes through
:class:`DeltaStore`.
"""

from typing import TYPE_CHECKING

from maxlake.lazy import lazy_exports

if TYPE_CHECKING:
    from lake.delta import DeltaStore, app_id
    from lake.errors import CommitConflict, LakeError, LocationError, TableNotFound
    from lake.location import LakeFiles, LakeLocation
    from lake.reader import recent_event_ids
    from lake.sink import BatchOutput, RunInfo, Sink, SinkHandle, WriteResult
    from lake.tables import (
        DUPLICATES,
        DUPLICATES_SCHEMA,
        QUARANTINE_SCHEMA,
        RUNS,
        RUNS_SCHEMA,
        quarantine_table,
        silver_schema,
        silver_table,
    )
    from lake.writer import BatchWriter

__all__ = [
    "DUPLICATES",
    "DUPLICATES_SCHEMA",
    "QUARANTINE_SCHEMA",
    "RUNS",
    "RUNS_SCHEMA",
    "BatchOutput",
    "BatchWriter",
    "CommitConflict",
    "DeltaStore",
    "LakeError",
    "LakeFiles",
    "LakeLocation",
    "LocationError",
    "RunInfo",
    "Sink",
    "SinkHandle",
    "TableNotFound",
    "WriteResult",
    "app_id",
    "quarantine_table",
    "recent_event_ids",
    "silver_schema",
    "silver_table",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "lake.delta": ("DeltaStore", "app_id"),
        "lake.errors": ("CommitConflict", "LakeError", "LocationError", "TableNotFound"),
        "lake.location": ("LakeFiles", "LakeLocation"),
        "lake.reader": ("recent_event_ids",),
        "lake.sink": ("BatchOutput", "RunInfo", "Sink", "SinkHandle", "WriteResult"),
        "lake.tables": (
            "DUPLICATES",
            "DUPLICATES_SCHEMA",
            "QUARANTINE_SCHEMA",
            "RUNS",
            "RUNS_SCHEMA",
            "quarantine_table",
            "silver_schema",
            "silver_table",
        ),
        "lake.writer": ("BatchWriter",),
    },
)
