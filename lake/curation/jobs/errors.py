"""Errors of the reference feature jobs."""

from __future__ import annotations

from lake.curation.errors import CurationError
from maxlake.errors import ConfigError, TerminalError

__all__ = ["JobInputError", "JobParamError"]


class JobParamError(CurationError, ConfigError):
    """A value of the spec's ``[job]`` table is missing its expected shape; names the key."""

    def __init__(self, job: str, key: str, problem: str) -> None:
        super().__init__(f"job {job}: parameter {key!r} {problem}")
        self.job = job
        self.key = key
        self.problem = problem


class JobInputError(CurationError, TerminalError):
    """The inputs contradict each other (for example one tag with two units in the registry)."""

    def __init__(self, job: str, problem: str) -> None:
        super().__init__(f"job {job}: {problem}")
        self.job = job
