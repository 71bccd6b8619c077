"""A spec's job and ``[job]`` parameters, checked before anything heavier is loaded.

:func:`check_job` needs the spec, the job modules and Polars only: no lake, no Delta, no
pandas, no Great Expectations. ``maxlake datasets build`` calls it before it imports the build
machinery, so a typo in a spec is reported in about a second, before any table is opened;
:func:`lake.curation.build_dataset` calls it again as its first step.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path

from lake.curation.errors import SpecError
from lake.curation.job import Job, ParamsCheck
from lake.curation.jobs import JOBS, PARAMS
from lake.curation.jobs.errors import JobParamError
from lake.curation.plugins import resolve_job
from lake.curation.spec import DatasetSpec, load_spec, resolve_spec

__all__ = ["check_job", "check_spec"]


def check_spec(ref: str | Path) -> DatasetSpec:
    """The spec ``ref`` names (a file or a reference set, :func:`resolve_spec`), loaded and its
    job and ``[job]`` parameters checked, every problem reported at once.

    The document's problems (:func:`lake.curation.spec.parse_spec`), an unknown job and the
    job's parameter check are collected together, so a spec with a bad date and a misspelled
    job name is told both in one run, and so is every problem of the job's parameters (keyed
    ``job.<parameter>``, as ``job.rate`` or ``job.split.validaton``).

    Raises:
        SpecError: ``ref`` names no spec, the file cannot be read or is not TOML, or the spec
            has problems (``problems`` has them all; the message names the file).
    """
    path = resolve_spec(ref)
    try:
        return _checked(load_spec(path))
    except JobParamError as exc:
        raise SpecError.of(str(path), _job_problems(exc)) from None
    except SpecError as exc:
        if exc.key == "file":
            raise
        problems = list(exc.problems)
    with open(path, "rb") as fh:
        doc = tomllib.load(fh)
    table = doc.get("job")
    name = table.get("name") if isinstance(table, Mapping) else table
    params = (
        {k: v for k, v in table.items() if k != "name"}
        if isinstance(table, Mapping)
        else doc.get("params", {})
    )
    if isinstance(name, str) and name.strip() and not any(k.startswith("job") for k, _ in problems):
        try:
            resolve_job(name, where=str(path))
            check = PARAMS.get(name)
            if check is not None and isinstance(params, Mapping):
                check(params)
        except SpecError as exc:
            problems.extend(exc.problems)
        except JobParamError as exc:
            problems.extend(_job_problems(exc))
    raise SpecError.of(str(path), problems) from None


def _job_problems(exc: JobParamError) -> list[tuple[str, str]]:
    return [(f"job.{key}", problem) for key, problem in exc.problems]


def _checked(spec: DatasetSpec) -> DatasetSpec:
    check_job(spec)
    return spec


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
