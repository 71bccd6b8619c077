"""A spec's job and ``[job]`` parameters, checked before anything heavier is loaded.

:func:`check_job` needs the spec, the job modules and Polars only: no lake, no Delta, no
pandas, no Great Expectations. ``maxlake datasets build`` calls it before it imports the build
machinery, so a typo in a spec is reported in about a second, before any table is opened;
:func:`lake.curation.build_dataset` calls it again as its first step.
"""

from __future__ import annotations

from collections.abc import Mapping

from lake.curation.job import Job, ParamsCheck
from lake.curation.jobs import JOBS, PARAMS
from lake.curation.plugins import resolve_job
from lake.curation.spec import DatasetSpec

__all__ = ["check_job"]


def check_job(
    spec: DatasetSpec,
    jobs: Mapping[str, Job] | None = None,
    checks: Mapping[str, ParamsCheck] | None = None,
) -> Job:
    """The job ``spec`` names, after its ``[job]`` table passed the job's parameter check.

    Args:
        spec: the validated spec.
        jobs: the built-in jobs, name -> job; default ``lake.curation.jobs.JOBS``.
        checks: job name -> parameter check; default ``lake.curation.jobs.PARAMS`` when
            ``jobs`` is the default (a job without a check validates its own parameters).

    Raises:
        SpecError: the spec names an unknown job.
        ConfigError: a job parameter is invalid (``JobParamError`` names the key).
    """
    if jobs is None:
        jobs = JOBS
        checks = PARAMS if checks is None else checks
    job = resolve_job(spec.job, where=spec.path or spec.name, builtin=jobs)
    check = (checks or {}).get(spec.job)
    if check is not None:
        check(spec.params)
    return job
