"""Errors of the reference feature jobs."""

from __future__ import annotations

from lake.curation.errors import CurationError, KeyProblemsError
from maxlake.errors import TerminalError

__all__ = ["JobInputError", "JobParamError"]


class JobParamError(KeyProblemsError):
    """A value of the spec's ``[job]`` table is missing its expected shape; names the key.
    :meth:`of` makes one error of several: ``job J: N parameter problems:`` then one
    ``parameter 'key' problem`` line each."""

    _subject = "job {subject}"
    _line = "parameter {key!r} {problem}"
    _several = "parameter problems"

    def __init__(self, job: str, key: str, problem: str) -> None:
        super().__init__(job, key, problem)
        self.job = job


class JobInputError(CurationError, TerminalError):
    """The inputs contradict each other (for example one tag with two units in the registry)."""

    def __init__(self, job: str, problem: str) -> None:
        super().__init__(f"job {job}: {problem}")
        self.job = job
