"""Errors raised by the quality package.

Suite files are configuration: a bad one stops start-up with a :class:`SuiteError` naming the
file and the entry. At run time the ingest worker tells what to do from the marker class: a
:class:`ValidationFailed` is transient (the worker bisects the batch to isolate the rows Great
Expectations cannot handle), a :class:`RowsSchemaError` is terminal (the batch lacks columns
the suite needs; no retry or bisection can fix that).
"""

from __future__ import annotations

from maxlake.errors import ConfigError, MaxlakeError, TerminalError, TransientError

__all__ = ["QualityError", "RowsSchemaError", "SuiteError", "ValidationFailed"]


class QualityError(MaxlakeError):
    """Base of the errors of the quality package (suite files, validation)."""


class SuiteError(QualityError, ConfigError):
    """A suite file is unreadable or invalid; the message names the file and the entry."""

    def __init__(self, path: str, entry: str, problem: str) -> None:
        super().__init__(f"{path}: {entry}: {problem}")
        self.path = path
        self.entry = entry
        self.problem = problem


class ValidationFailed(QualityError, TransientError):
    """Great Expectations raised or reported an error while validating a batch.

    No verdict is returned in that case, never a partial or guessed one. The caller may split
    the batch and validate the halves to isolate the offending rows.

    Attributes:
        kind: the event kind of the batch.
        rows: number of rows in the batch.
        expectation: the suite entry that failed, when known.
    """

    def __init__(
        self, kind: str, rows: int, problem: str, *, expectation: str | None = None
    ) -> None:
        where = f" in expectation {expectation!r}" if expectation else ""
        super().__init__(f"validating {rows} {kind} rows failed{where}: {problem}")
        self.kind = kind
        self.rows = rows
        self.expectation = expectation


class RowsSchemaError(QualityError, TerminalError):
    """The batch lacks columns the suite reads; the message lists them."""

    def __init__(self, kind: str, missing: list[str]) -> None:
        super().__init__(
            f"{kind} rows lack columns the {kind} suite needs: {', '.join(sorted(missing))}"
        )
        self.kind = kind
        self.missing = missing
