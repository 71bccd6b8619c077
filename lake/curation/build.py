"""The dataset build runner: spec -> pinned sources -> job -> a new, immutable dataset version.

A build pins every source table to a Delta version (the spec's, or the latest at build time),
scans each at that version with the spec's filters — literal predicates on the partition
columns (tenant, plant, date) first so whole files are skipped, then the event-time range and
the machine types from the registry — and hands the lazy frames to the feature job. The job's
splits are written as Parquet into a staging folder with the content hash, the output checks
and ``manifest.json``, and then published as ``curated/<name>/v<N>`` with the manifest last
(:mod:`lake.curation.area`: a local folder or an object-store prefix). Versions are numbered
per name, never reused and never overwritten: the number is reserved before anything is
written, so concurrent builds of one name get different numbers, and a crashed build leaves a
gap rather than a half-written version.

Reproducibility: building the same spec at the same source versions gives the same content
hash (``DatasetSpec.pinned(manifest.source_versions)`` rebuilds a published version), as long as
those versions have not been vacuumed and the registry's machines are unchanged
(``registry_hash`` in the manifest).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from lake.curation.area import CURATED_DIR, CuratedArea, Staging
from lake.curation.card import CARD_FILE, label_info, write_card
from lake.curation.empty import why_empty
from lake.curation.errors import QualityCheckFailed, SchemaChanged, UnchangedDataset
from lake.curation.job import Job, JobInputs, JobOutput, LabelInfo, ParamsCheck
from lake.curation.manifest import (
    Manifest,
    SourceInfo,
    SplitInfo,
    content_hash,
    file_sha256,
    frame_sha256,
    label_distribution,
)
from lake.curation.output_checks import check_output
from lake.curation.precheck import check_job
from lake.curation.published import published_manifest_bytes
from lake.curation.registry_frames import registry_hash, registry_tags, selected_tags
from lake.curation.schema_change import schema_change, schema_change_lines
from lake.curation.sources import check_filters, pinned_version, row_count, source_frame
from lake.curation.spec import NAME_PATTERN, DatasetSpec, Filters, spec_hash
from lake.delta import DeltaStore
from lake.location import LakeLocation
from lake.sharing.withholding import withholding
from lake.tables import silver_table
from maxlake.errors import TerminalError
from maxlake.settings import Settings
from maxlake.version import __version__
from schemas import EventKind, Registry

if TYPE_CHECKING:
    from lake.sharing import SharedInputs, SharingGate

__all__ = [
    "CURATED_DIR",
    "Progress",
    "build_dataset",
    "curated_root",
    "identical_to",
    "progress_detail",
]

Progress = Callable[[str, Mapping[str, int]], None]
"""Called with a stage name and counts, each stage at most once: ``pin`` (source versions, -1 =
table absent), ``sharing`` (contracts applied: tenants, excluded tenants, suppressed machine
types), ``read`` (rows per source after filters), ``rare`` (only when machine types too rare in
the job's output were suppressed and the job ran again: ``suppressed_machine_types`` in all,
``job_runs``), ``job`` (rows per split), ``write`` (rows per split), ``quality`` (expectations,
failed), ``published`` (version, rows)."""


def progress_detail(stage: str, counts: Mapping[str, int]) -> str:
    """The counts of a :data:`Progress` stage as ``datasets build`` and ``make demo`` print
    them: ``train 288, validation 52, test 69``; in ``pin`` a table that does not exist yet
    (-1) reads ``absent``."""
    return ", ".join(
        f"{key} absent" if stage == "pin" and value < 0 else f"{key} {value:,}"
        for key, value in counts.items()
    )


_NAME = re.compile(NAME_PATTERN)
_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_SHARE_SPLITS = ("train", "validation", "test")


def curated_root(lake_root: str | Path | LakeLocation | Settings) -> LakeLocation:
    """The curated datasets location: ``MAXLAKE_CURATED_DIR`` when settings are given and set
    it (a local path or an object-store URI), else ``<lake_root>/curated``."""
    return CuratedArea.of(lake_root).location


def build_dataset(
    store: DeltaStore,
    spec: DatasetSpec,
    *,
    registry: Registry,
    out_root: str | Path | LakeLocation | CuratedArea | None = None,
    progress: Progress | None = None,
    jobs: Mapping[str, Job] | None = None,
    params_checks: Mapping[str, ParamsCheck] | None = None,
    allow_failed_quality: bool = False,
    sharing: SharingGate | None = None,
    reset_withheld: Collection[str] = (),
    registry_version: int | None = None,
    registry_notes: Sequence[str] = (),
    require_same_columns: bool = False,
    publish_identical: bool = True,
) -> Manifest:
    """Build and publish a new version of ``spec.name``.

    Args:
        store: the lake holding the silver tables.
        spec: the validated spec.
        registry: machines and tag specs (machine-type filter and the job's reference frames).
        out_root: the curated area (a folder or an object-store location, not the lake
            root); default ``<store.root>/curated``.
        progress: called after each stage (see :data:`Progress`).
        jobs: the built-in jobs, name -> job; default ``lake.curation.jobs.JOBS``. Entry-point
            jobs and ``module:function`` references resolve too (:mod:`lake.curation.plugins`).
        params_checks: job name -> check of its ``[job]`` table, run before any data is
            read; default ``lake.curation.jobs.PARAMS`` when ``jobs`` is the default.
        allow_failed_quality: publish even when the output checks fail (recorded as such).
        sharing: the sharing contracts to enforce (``lake.sharing.SharingGate``): applied to
            the filtered sources before the job runs (tenants without a contract for
            ``spec.purpose`` are dropped, the rest de-identified) and to its output (no raw
            identifier left). None builds without contracts: the manifest says so and the
            dataset service and ``datasets pull`` refuse to serve such a version.
        reset_withheld: structure columns (``tenant``, ``plant``, ``line``) that the set's
            latest version built under contracts withheld and that this build decides afresh
            from its contracts; any other column that version withheld stays withheld
            (recorded in the manifest, see :mod:`lake.sharing.withholding`).
        registry_version: the live registry version ``registry`` is (recorded; None for a
            registry file).
        registry_notes: one line per registry change stored since the set's previous version
            was built (recorded with a feature-schema change, see
            :mod:`lake.curation.schema_change`).
        require_same_columns: refuse to publish when the feature, label or key columns differ
            from the newest published version of the name (``SchemaChanged``).
        publish_identical: publish even when the build is identical to the newest version
            (same content hash, same spec, same quality verdict, that version active); False
            publishes nothing then and raises ``UnchangedDataset`` naming that version
            (``maxlake datasets build`` passes False unless ``--publish-identical``).

    Returns:
        The published version's manifest.

    Raises:
        SpecError: the spec names an unknown job, tenant, plant or machine type, or the job's
            output does not match what it declares.
        ConfigError: a job parameter is invalid (``JobParamError``), or ``reset_withheld``
            names a column the latest version did not withhold, before any data is read.
        VersionUnavailable: a pinned source version does not exist or was vacuumed.
        QualityCheckFailed: the output checks failed (nothing is published).
        SchemaChanged: ``require_same_columns`` and the columns changed (nothing published).
        UnchangedDataset: ``publish_identical`` is False and the build is identical to the
            newest version (nothing published).
    """
    started = time.monotonic()
    report = progress or _silent
    job = check_job(spec, jobs, params_checks)
    check_filters(spec, registry)
    machines = pl.from_arrow(registry.machines())
    assert isinstance(machines, pl.DataFrame)
    all_tags = registry_tags(registry)
    tags = selected_tags(all_tags, spec.filters.machine_types)
    area = _area(store, out_root)
    inherited = withholding(spec.name, _latest_sharing(area, spec.name), reset_withheld)

    versions = {kind.value: pinned_version(store, spec, kind) for kind in EventKind}
    report("pin", {k: -1 if v is None else v for k, v in versions.items()})
    frames = {
        kind: source_frame(store, kind, versions[kind.value], spec.filters, machines)
        for kind in EventKind
    }
    shared: SharedInputs | None = None
    raw_frames, raw_machines = {k.value: lf for k, lf in frames.items()}, machines
    every_row = {
        kind.value: source_frame(store, kind, versions[kind.value], Filters(), machines)
        for kind in EventKind
    }
    if sharing is not None:
        shared = sharing.apply(
            spec.purpose, raw_frames, raw_machines, tags, identifier_frames=every_row
        )
        frames = {kind: shared.frames[kind.value] for kind in frames}
        machines = shared.machines
        report("sharing", shared.counts())
    read_rows = {kind.value: row_count(lf) for kind, lf in frames.items()}
    report("read", read_rows)

    shifts = shared.time_shifts if shared is not None else None
    output = _run_job(job, spec, frames, machines, tags, shifts)
    _check_output(spec, output)
    job_runs = 1
    while sharing is not None and shared is not None:
        rare = sharing.rare_in_output(shared, output.splits)
        if not rare:
            break
        job_runs += 1
        shared = sharing.apply(
            spec.purpose,
            raw_frames,
            raw_machines,
            tags,
            also_rare=rare | shared.rare_types,
            identifier_frames=every_row,
        )
        frames = {kind: shared.frames[kind.value] for kind in frames}
        output = _run_job(job, spec, frames, shared.machines, tags, shared.time_shifts)
        _check_output(spec, output)
    if job_runs > 1 and shared is not None:
        rare_counts = {"suppressed_machine_types": shared.suppressed_machine_types}
        report("rare", {**rare_counts, "job_runs": job_runs})
    if sharing is not None and shared is not None:
        shared = dataclasses.replace(shared, withholding=inherited)
        noisy = shared.noisy_features(
            output.splits, [f.name for f in output.features], output.key_columns
        )
        output = dataclasses.replace(output, splits=noisy)
        full = output.splits
        output = _without_columns(output, shared.withheld_columns())
        sharing.check_output(spec.name, output.splits, output.files, shared)
        disclosure = sharing.disclosure(spec.name, full, output.splits, shared, area)
        shared = dataclasses.replace(shared, disclosure=disclosure.record())
    output = _without_unasked_empty_splits(output)
    report("job", {name: df.height for name, df in output.splits.items()})

    previous = _newest(area, spec.name)
    change = schema_change(
        previous,
        features=_feature_records(output),
        label_columns=output.label_columns,
        key_columns=output.key_columns,
        spec_hash=spec_hash(spec),
        registry_tags=all_tags,
        selected_types=spec.filters.machine_types,
        registry_version=registry_version,
        registry_notes=registry_notes,
    )
    if require_same_columns and change.get("changed"):
        raise SchemaChanged(spec.name, change, schema_change_lines(change, spec.name))
    staging = area.reserve(spec.name)
    try:
        manifest = _publish(
            area,
            staging,
            spec,
            output,
            sources={
                kind: SourceInfo(silver_table(kind), v, kind in spec.sources, read_rows[kind])
                for kind, v in versions.items()
            },
            registry_hash=registry_hash(machines, tags),
            report=report,
            allow_failed_quality=allow_failed_quality,
            started=started,
            shared=shared,
            registry_version=registry_version,
            change=change,
            same_as=None if publish_identical else previous,
        )
    except BaseException:
        area.abandon(staging)
        raise
    report("published", {"version": staging.version, "rows": manifest.rows})
    return manifest


def identical_to(manifest: Manifest, previous: Manifest) -> bool:
    """Whether ``manifest`` holds what ``previous`` (an earlier version of the same set)
    already serves: the same content hash (every split's rows and every side file), the same
    spec and the same quality verdict, ``previous`` being active."""
    return (
        previous.status == "active"
        and previous.content_hash == manifest.content_hash
        and previous.spec_hash == manifest.spec_hash
        and previous.quality_passed == manifest.quality_passed
    )


def _newest(area: CuratedArea, name: str) -> Manifest | None:
    """The newest published version of ``name`` (any status), or None."""
    versions = area.versions(name)
    return area.manifest(name, versions[-1]) if versions else None


def _feature_records(output: JobOutput) -> list[Mapping[str, str]]:
    return [{"name": f.name, "unit": f.unit, "description": f.description} for f in output.features]


def _latest_sharing(area: CuratedArea, name: str) -> tuple[int, Mapping[str, Any] | None] | None:
    """(version, stored ``sharing`` entry) of the latest version of ``name`` built under
    contracts (versions built without are never served, so they do not count)."""
    for version in reversed(area.versions(name)):
        manifest = area.manifest(name, version)
        if manifest.enforced:
            return version, manifest.sharing
    return None


def _area(
    store: DeltaStore, out_root: str | Path | LakeLocation | CuratedArea | None
) -> CuratedArea:
    if isinstance(out_root, CuratedArea):
        return out_root
    if out_root is None:
        return CuratedArea.of(store.location)
    return CuratedArea(out_root)


def _publish(
    area: CuratedArea,
    staging: Staging,
    spec: DatasetSpec,
    output: JobOutput,
    *,
    sources: dict[str, SourceInfo],
    registry_hash: str,
    report: Progress,
    allow_failed_quality: bool,
    started: float,
    shared: SharedInputs | None = None,
    registry_version: int | None = None,
    change: Mapping[str, Any] | None = None,
    same_as: Manifest | None = None,
) -> Manifest:
    """Write splits, files, checks and manifest into ``staging``, then publish it; raise
    :class:`UnchangedDataset` instead when it is identical to ``same_as``
    (:func:`identical_to`)."""
    splits, file_hashes = _write(staging.folder, output)
    if shared is not None:
        shared.check_written(spec.name, [staging.folder / s.file for s in splits.values()])
    report("write", {name: s.rows for name, s in splits.items()})
    quality = check_output(
        output.splits,
        key_columns=output.key_columns,
        labels=output.all_labels(),
        feature_columns=[f.name for f in output.features],
        required_splits=output.splits_required(),
        split_hints=output.split_hints,
    )
    report(
        "quality",
        {
            "expectations": len(quality.results),
            "failed": len(quality.failed),
            "warnings": len(quality.warnings),
        },
    )
    if not quality.success and not allow_failed_quality:
        why = why_empty(spec, sources, shared) if "rows" in quality.failed else ""
        blocking = [f"{r.name}: {r.detail}" for r in quality.results if r.blocking and r.detail]
        if not why and blocking:
            why = "; ".join(blocking) + "; --allow-failed-quality would publish it as it is"
        raise QualityCheckFailed(spec.name, quality.failed, why)
    manifest = Manifest(
        name=spec.name,
        version=staging.version,
        created_at=datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        status="active",
        spec=spec.to_dict(),
        spec_hash=spec_hash(spec),
        job=spec.job,
        sources=sources,
        splits=splits,
        features=_feature_records(output),
        label_columns=list(output.label_columns),
        key_columns=list(output.key_columns),
        files=file_hashes,
        quality={**quality.to_dict(), "build_seconds": round(time.monotonic() - started, 3)},
        content_hash=content_hash(
            {name: s.content_sha256 for name, s in splits.items()}, file_hashes
        ),
        registry_hash=registry_hash,
        maxlake_version=__version__,
        contracts=shared.contract_refs(spec.name) if shared is not None else [],
        sharing=shared.record() if shared is not None else None,
        label_contracts=[_plain_label(c) for c in output.all_labels()],
        job_meta=dict(output.meta),
        registry_version=registry_version,
        schema_change=change,
    )
    if same_as is not None and identical_to(manifest, same_as):
        raise UnchangedDataset(same_as)
    card = write_card(
        staging.folder,
        manifest,
        {name: s.file for name, s in splits.items()},
        label=label_info(output),
    )
    if shared is not None:
        shared.check_prose(
            spec.name,
            {"manifest.json": published_manifest_bytes(manifest), card.name: card.read_bytes()},
            hint=" (free text of the spec, such as its description, is published: name no "
            "company, plant, line or machine in it)",
        )
    manifest.write(staging.folder)
    area.publish(staging)
    return manifest


def _run_job(
    job: Job,
    spec: DatasetSpec,
    frames: Mapping[EventKind, pl.LazyFrame],
    machines: pl.DataFrame,
    tags: pl.DataFrame,
    shifts: pl.DataFrame | None,
) -> JobOutput:
    inputs = JobInputs(
        sources=dict(frames), machines=machines, tags=tags, params=spec.params, time_shifts=shifts
    )
    return job(inputs)


def _without_columns(output: JobOutput, columns: tuple[str, ...]) -> JobOutput:
    """``output`` without ``columns`` (in splits and in the declared keys)."""
    if not columns:
        return output
    return dataclasses.replace(
        output,
        splits={n: df.drop(columns, strict=False) for n, df in output.splits.items()},
        key_columns=[c for c in output.key_columns if c not in columns],
        label_columns=[c for c in output.label_columns if c not in columns],
        features=[f for f in output.features if f.name not in columns],
    )


def _without_unasked_empty_splits(output: JobOutput) -> JobOutput:
    """``output`` without the ``train``/``validation``/``test`` splits that are empty by
    design: the job declares which splits the spec asks for (``required_splits``; a share of
    0 is not asked for), and an empty split it was not asked for is not published (a model
    team would find an always-empty file). Splits of other names (``score``) are kept."""
    if output.required_splits is None:
        return output
    asked = set(output.required_splits)
    dropped = {
        name
        for name, frame in output.splits.items()
        if name in _SHARE_SPLITS and name not in asked and frame.height == 0
    }
    if not dropped or len(dropped) == len(output.splits):
        return output
    kept = {name: frame for name, frame in output.splits.items() if name not in dropped}
    return dataclasses.replace(output, splits=kept)


def _plain_label(label: LabelInfo) -> dict[str, Any]:
    """A declared label as the manifest stores it (tuples as lists, as JSON reads them)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(label).items()}


def _silent(stage: str, counts: Mapping[str, int]) -> None:
    del stage, counts


def _check_output(spec: DatasetSpec, output: JobOutput) -> None:
    where = f"job {spec.job!r}"
    if not output.splits:
        raise TerminalError(f"{where} returned no splits")
    declared = [*output.key_columns, *output.label_columns, *(f.name for f in output.features)]
    for name, frame in output.splits.items():
        if not _NAME.fullmatch(name):
            raise TerminalError(f"{where}: split name {name!r} does not match {NAME_PATTERN}")
        missing = [c for c in declared if c not in frame.columns]
        if missing:
            raise TerminalError(f"{where}: split {name!r} lacks declared columns {missing}")
    stray = [c.column for c in output.labels if c.column not in output.label_columns]
    if stray:
        raise TerminalError(f"{where}: declared labels for undeclared label columns {stray}")
    for file in output.files:
        if not _FILE.fullmatch(file) or file in _reserved_files(output):
            raise TerminalError(f"{where}: extra file name {file!r} is not allowed")


def _reserved_files(output: JobOutput) -> set[str]:
    return {"manifest.json", CARD_FILE, *(f"{name}.parquet" for name in output.splits)}


def _write(staging: Path, output: JobOutput) -> tuple[dict[str, SplitInfo], dict[str, str]]:
    splits: dict[str, SplitInfo] = {}
    for name in sorted(output.splits):
        frame = output.splits[name]
        path = staging / f"{name}.parquet"
        frame.write_parquet(path, compression="zstd", statistics=True)
        splits[name] = SplitInfo(
            file=path.name,
            rows=frame.height,
            sha256=file_sha256(path),
            content_sha256=frame_sha256(frame),
            labels={c: label_distribution(frame, c) for c in output.label_columns},
        )
    file_hashes: dict[str, str] = {}
    for file, data in sorted(output.files.items()):
        (staging / file).write_bytes(data)
        file_hashes[file] = hashlib.sha256(data).hexdigest()
    return splits, file_hashes
