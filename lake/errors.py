"""Errors of the lake package."""

from maxlake.errors import TransientError


class CommitConflict(TransientError):
    """A Delta commit lost a race and could not be confirmed; the batch is safe to retry."""

    def __init__(self, table: str, detail: str) -> None:
        super().__init__(f"commit to {table} failed and was not applied: {detail}")
        self.table = table
