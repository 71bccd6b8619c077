"""Errors of the lake package."""

from maxlake.errors import ConfigError, TransientError


class CommitConflict(TransientError):
    """A Delta commit lost a race and could not be confirmed; the batch is safe to retry."""

    def __init__(self, table: str, detail: str) -> None:
        super().__init__(f"commit to {table} failed and was not applied: {detail}")
        self.table = table


class LocationError(ConfigError):
    """A lake location cannot serve the request; the message names the setting to change.

    Raised for an unsupported URI scheme, a secret placed on an object store, or an object
    store that keeps refusing a conditional write.
    """


class OffsetsMoved(TransientError):
    """Another writer committed offsets of the same partitions first (a race after a rebalance).

    The rows must be filtered again against ``stored`` before they are committed.
    """

    def __init__(self, table: str, stored: dict[str, int]) -> None:
        super().__init__(
            f"another writer committed offsets to {table} first; rows are filtered again"
        )
        self.table = table
        self.stored = stored
