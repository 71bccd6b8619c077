"""Errors of the lake package; every lake error (curation, sharing, access included) is a
:class:`LakeError`."""

from maxlake.errors import ConfigError, MaxlakeError, TerminalError, TransientError

__all__ = [
    "CommitConflict",
    "LakeError",
    "LocationError",
    "OffsetsMoved",
    "SinkError",
    "TableNotFound",
]


class LakeError(MaxlakeError):
    """Base of the errors of the lake package and its subpackages."""


class CommitConflict(LakeError, TransientError):
    """A Delta commit lost a race and could not be confirmed; the batch is safe to retry."""

    def __init__(self, table: str, detail: str) -> None:
        super().__init__(f"commit to {table} failed and was not applied: {detail}")
        self.table = table


class LocationError(LakeError, ConfigError):
    """A lake location cannot serve the request; the message names the setting to change.

    Raised for an unsupported URI scheme, a secret placed on an object store, or an object
    store that keeps refusing a conditional write.
    """


class SinkError(LakeError, ConfigError):
    """``MAXLAKE_SINK`` names no importable factory or the factory returned no sink."""


class OffsetsMoved(LakeError, TransientError):
    """Another writer committed offsets of the same partitions first (a race after a rebalance).

    The rows must be filtered again against ``stored`` before they are committed.
    """

    def __init__(self, table: str, stored: dict[str, int]) -> None:
        super().__init__(
            f"another writer committed offsets to {table} first; rows are filtered again"
        )
        self.table = table
        self.stored = stored


class TableNotFound(LakeError, TerminalError):
    """The lake has no Delta table of that name (``maxlake lake status`` lists them)."""

    def __init__(self, table: str, root: str = "") -> None:
        where = f" under {root}" if root else ""
        super().__init__(f"no Delta table {table!r}{where}; `maxlake lake status` lists the tables")
        self.table = table
