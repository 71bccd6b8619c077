"""Errors of the reference feature jobs."""

from __future__ import annotations

from collections.abc import Sequence

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
        self.problems: tuple[tuple[str, str], ...] = ((key, problem),)

    @classmethod
    def of(cls, job: str, problems: Sequence[tuple[str, str]]) -> JobParamError:
        """One error for every ``(key, problem)`` (at least one): the message is as for one
        problem, or ``job J: N parameter problems:`` then one ``parameter 'key' problem`` line
        each; ``key``/``problem`` are the first."""
        unique = tuple(dict.fromkeys(problems))
        error = cls(job, *unique[0])
        if len(unique) > 1:
            lines = "".join(f"\n  parameter {key!r} {problem}" for key, problem in unique)
            error.args = (f"job {job}: {len(unique)} parameter problems:{lines}",)
        error.problems = unique
        return error


class JobInputError(CurationError, TerminalError):
    """The inputs contradict each other (for example one tag with two units in the registry)."""

    def __init__(self, job: str, problem: str) -> None:
        super().__init__(f"job {job}: {problem}")
        self.job = job
