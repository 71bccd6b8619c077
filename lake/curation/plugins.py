"""Finding a spec's feature job: built in, an installed plug-in, or a ``module:function``.

A spec's ``job`` is looked up in this order:

1. the built-in jobs (``lake.curation.jobs.JOBS``: ``predictive_maintenance``, ``part_quality``,
   ``anomaly_windows``, ``remaining_useful_life``);
2. jobs other packages declare in the entry-point group :data:`ENTRY_POINT_GROUP`
   (``[project.entry-points."maxlake.jobs"] my_job = "my_team.jobs:my_job"`` in their
   ``pyproject.toml``; installed with pip, no maxlake edit);
3. a reference ``package.module:function`` to any importable function.

A job is a function ``(JobInputs) -> JobOutput`` (:mod:`lake.curation.job`).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import cast

from lake.curation.errors import SpecError
from lake.curation.job import Job
from lake.curation.jobs import JOBS
from maxlake.errors import did_you_mean

__all__ = ["ENTRY_POINT_GROUP", "available_jobs", "resolve_job"]

ENTRY_POINT_GROUP = "maxlake.jobs"
"""Entry-point group under which installed packages register feature jobs."""

_REFERENCE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def available_jobs(builtin: Mapping[str, Job] | None = None) -> list[str]:
    """Names of the built-in and entry-point jobs, sorted."""
    names = set(_builtin(builtin))
    names.update(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
    return sorted(names)


def resolve_job(name: str, *, where: str, builtin: Mapping[str, Job] | None = None) -> Job:
    """The job function ``name`` refers to (see the module docstring for the lookup order).

    Args:
        name: the spec's ``job``: a job name or ``module:function``.
        where: the spec file (or dataset name) for error messages.
        builtin: the built-in jobs; default ``lake.curation.jobs.JOBS``.

    Raises:
        SpecError: no such job, the module cannot be imported, or the object is not callable.
    """
    jobs = _builtin(builtin)
    if name in jobs:
        return jobs[name]
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            return _callable(ep.load(), name, where)
    if not _REFERENCE.fullmatch(name):
        known = available_jobs(builtin)
        valid = ", ".join(known) or "none"
        raise SpecError(
            where,
            "job",
            f"unknown job {name!r}{did_you_mean(name, known)} (valid: {valid}, or a "
            "'package.module:function' reference)",
        )
    module_name, _, attr = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SpecError(where, "job", f"cannot import module {module_name!r}: {exc}") from exc
    if not hasattr(module, attr):
        raise SpecError(where, "job", f"module {module_name!r} has no function {attr!r}")
    return _callable(getattr(module, attr), name, where)


def _builtin(builtin: Mapping[str, Job] | None) -> Mapping[str, Job]:
    return JOBS if builtin is None else builtin


def _callable(obj: object, name: str, where: str) -> Job:
    if not callable(obj):
        raise SpecError(where, "job", f"{name!r} is a {type(obj).__name__}, not a job function")
    return cast(Job, obj)
