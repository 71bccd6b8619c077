"""The work behind ``maxlake datasets`` (:mod:`maxlake.cli.datasets_cmd` parses the
arguments): build a checked spec, list, show and pull.

Imported only when a ``datasets`` command runs, after ``build`` has checked its spec, since it
loads the lake, Delta, the sharing contracts and the output checks.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from lake import DeltaStore
from lake.access import (
    AccessDenied,
    AccessStore,
    AuditEntry,
    AuditLog,
    Decision,
    access_dir,
    check_read,
)
from lake.curation import (
    CuratedArea,
    build_dataset,
    list_datasets,
    parse_ref,
    pull,
    show,
    summary_lines,
)
from lake.curation.build import identical_to, progress_detail
from lake.curation.card import stale_card_columns
from lake.curation.catalog import edited_pull_files
from lake.curation.errors import PullTargetTaken, UnchangedDataset
from lake.curation.manifest import Manifest
from lake.curation.registry_rule import build_registry
from lake.curation.schema_change import schema_change_lines
from lake.curation.spec import DatasetSpec
from lake.curation.summary import rows_line
from lake.curation.warnings import warning_lines
from lake.location import LakeLocation
from lake.registry_store import RegistryStore, registry_source
from lake.sharing import ContractStore, contracts_dir, sharing_gate
from maxlake.cli.lake_guard import require_lake
from maxlake.errors import exception_text
from maxlake.settings import Settings

DEFAULT_SPLIT = "train"
"""The split ``datasets pull`` takes without ``--split`` (and says so)."""


def _progress(stage: str, counts: Mapping[str, int]) -> None:
    print(f"datasets: {stage}: {progress_detail(stage, counts)}", file=sys.stderr, flush=True)


def build(args: argparse.Namespace, spec: DatasetSpec) -> int:
    """``datasets build`` of ``spec``, already loaded and checked (:func:`check_job`)."""
    settings = Settings()
    area = CuratedArea.of(settings)
    registry = build_registry(settings, area, spec.name, registry_file=args.registry)
    print(f"datasets: registry: {registry.described}", file=sys.stderr, flush=True)
    try:
        manifest = build_dataset(
            DeltaStore.from_settings(settings),
            spec,
            registry=registry.registry,
            progress=_progress,
            allow_failed_quality=args.allow_failed_quality,
            sharing=sharing_gate(settings),
            out_root=area,
            reset_withheld=args.reset_withheld,
            registry_version=registry.version,
            registry_notes=registry.notes,
            require_same_columns=args.require_same_columns,
            publish_identical=args.publish_identical,
        )
    except UnchangedDataset as unchanged:
        print(f"datasets: unchanged: {unchanged}", file=sys.stderr)
        print(json.dumps({**_summary(unchanged.manifest), "published": False}, sort_keys=True))
        return 0
    same = _identical_earlier(area, manifest)
    if same is not None:
        print(
            f"datasets: identical to {manifest.name}@v{same.version} (same content hash, same "
            f"spec): published as v{manifest.version} because of --publish-identical",
            file=sys.stderr,
        )
    summary = {**_summary(manifest), "published": True}
    rows = rows_line(manifest)
    if rows is not None:
        print(f"datasets: {rows}", file=sys.stderr)
    for line in schema_change_lines(manifest.schema_change, manifest.name):
        print(f"datasets: schema {line}", file=sys.stderr)
    failed = set(manifest.quality_failed)
    for detail in manifest.quality.get("details") or []:
        if str(detail).split(":", 1)[0] in failed:
            print(f"datasets: check {detail}", file=sys.stderr)
    for line in warning_lines(manifest):
        print(f"datasets: warning: {line}", file=sys.stderr)
    if not manifest.quality_passed:
        print(
            f"datasets: {manifest.name}@v{manifest.version} FAILED its output checks "
            f"({', '.join(manifest.quality_failed)}); readers are refused it by default",
            file=sys.stderr,
        )
    print(json.dumps(summary, sort_keys=True))
    return 0


def _summary(manifest: Manifest) -> dict[str, object]:
    """The JSON line ``datasets build`` prints on stdout (``published`` is added)."""
    return {
        "name": manifest.name,
        "version": manifest.version,
        "rows": {name: s.rows for name, s in manifest.splits.items()},
        "sources": manifest.source_versions,
        "content_hash": manifest.content_hash,
        "quality_success": manifest.quality_passed,
    }


def _identical_earlier(area: CuratedArea, manifest: Manifest) -> Manifest | None:
    """The version just before ``manifest`` when ``manifest`` is identical to it, else None."""
    earlier = [v for v in area.versions(manifest.name) if v < manifest.version]
    if not earlier:
        return None
    previous = area.manifest(manifest.name, earlier[-1])
    return previous if identical_to(manifest, previous) else None


def list_(args: argparse.Namespace) -> int:
    """``datasets list``."""
    settings = Settings()
    require_lake(settings)
    datasets = list_datasets(settings)
    if args.json:
        rows = [
            {
                "name": d.name,
                "versions": list(d.versions),
                "latest": d.latest,
                "purpose": d.purpose,
                "description": d.description,
                "failed_quality": list(d.failed_quality),
                "warnings": d.warnings,
            }
            for d in datasets
        ]
        print(json.dumps(rows, indent=2))
        return 0
    if not datasets:
        print("no datasets yet (maxlake datasets build SPEC)")
        return 0
    print(f"{'NAME':<32} {'LATEST':>6} {'VERSIONS':>8}  {'QUALITY':<8}  PURPOSE")
    for d in datasets:
        latest = f"v{d.latest}" if d.latest is not None else "none"
        quality = "FAILED" if d.latest in d.failed_quality else "passed"
        if d.latest is None:
            quality = "revoked" if d.versions else "-"
        print(f"{d.name:<32} {latest:>6} {len(d.versions):>8}  {quality:<8}  {d.purpose}")
    failed = [f"{d.name}@v{v}" for d in datasets for v in d.failed_quality]
    if failed:
        print(f"failed output checks (not served by default): {', '.join(failed)}")
    warned = [f"{d.name}@v{d.latest} ({d.warnings})" for d in datasets if d.warnings]
    if warned:
        print(
            f"passed with warnings (served; `maxlake datasets show NAME@V` lists them): "
            f"{', '.join(warned)}"
        )
    return 0


def show_(args: argparse.Namespace) -> int:
    """``datasets show``."""
    name, version = parse_ref(args.ref)
    settings = Settings()
    require_lake(settings)
    manifest = show(name, version, lake_root=settings, newest_if_none_active=True)
    if args.json:
        sys.stdout.write(manifest.to_json().decode())
        return 0
    print("\n".join(summary_lines(manifest)))
    stale = stale_card_columns(CuratedArea.of(settings), manifest)
    if stale:
        print(
            f"  card       the stored README.md declares {', '.join(stale)} as string (built "
            "before these types were mapped): `datasets pull` writes a card with the real types; "
            "`datasets.load_dataset` on the version's own folder reads the old one"
        )
    return 0


def _refusal_hint(decision: Decision, name: str, principal: str | None, *, given: bool) -> str:
    """What to do about a refused pull: for ``unauthenticated``, how a token is issued; for
    a missing grant, how the lake operator gives one (no other dataset name is suggested:
    grants hide which datasets exist)."""
    add = "maxlake access principal add NAME --kind model_team"
    grant = f"maxlake access grant NAME {name}"
    if decision.outcome == "unauthenticated":
        said = (
            ": the token given (--token or MAXLAKE_TOKEN) is not one of this lake's (mistyped, "
            "expired, or its principal removed); "
            if given
            else " (give --token or set MAXLAKE_TOKEN); "
        )
        return (
            f"{said}the lake operator issues a token with `{add}` (it prints the token once) "
            f"and grants the dataset with `{grant}`"
        )
    if decision.outcome == "denied" and decision.manifest is None and principal is not None:
        return (
            f"; if the name is right, the lake operator grants it with "
            f"`maxlake access grant {principal} {name}`"
        )
    return ""


def pull_(args: argparse.Namespace) -> int:
    """Pull with the same check as the dataset service; every attempt is audited."""
    settings = Settings()
    require_lake(settings)
    name, version = parse_ref(args.ref)
    split = args.split or DEFAULT_SPLIT
    token = args.token or (settings.token.get_secret_value() if settings.token else None)
    principal = AccessStore(access_dir(settings)).authenticate(token) if token else None
    decision = check_read(
        principal,
        name,
        version,
        split,
        lake_root=settings,
        contracts=ContractStore(contracts_dir(settings)),
        allow_failed_quality=args.allow_failed_quality,
    )
    manifest = decision.manifest
    audit = AuditLog(DeltaStore.from_settings(settings))
    entry = AuditEntry(
        "pull",
        decision.outcome,
        principal=principal.name if principal else None,
        dataset=manifest.name if manifest else name,
        version=manifest.version if manifest else version,
        split=split,
        format=args.format,
        rows=None,
        status=decision.status,
        detail=decision.detail,
        channel="cli",
    )
    if not decision.allowed or manifest is None:
        audit.record(entry)
        hint = _refusal_hint(
            decision, name, principal.name if principal else None, given=token is not None
        )
        raise AccessDenied(decision.outcome, decision.detail + hint)
    target = Path(args.out) / f"{manifest.name}-v{manifest.version}-{split}.{args.format}"
    before = target.stat().st_ino if target.is_file() else None
    edited = (
        edited_pull_files(args.out, manifest, settings, format=args.format)
        if args.overwrite
        else []
    )
    try:
        path = pull(
            manifest.name,
            manifest.version,
            split,
            args.out,
            args.format,
            lake_root=settings,
            allow_failed_quality=args.allow_failed_quality,
            overwrite=args.overwrite,
        )
    except PullTargetTaken as exc:
        audit.record(replace(entry, outcome="invalid", status=409, detail=exception_text(exc)))
        raise
    except Exception as exc:
        audit.record(replace(entry, outcome="error", status=500, detail=exception_text(exc)))
        raise
    audit.record(replace(entry, rows=manifest.splits[split].rows))
    print(path)
    others = [path.parent / f"{manifest.name}-v{manifest.version}.manifest.json"]
    if args.format == "parquet":
        others.append(path.parent / "README.md")
    rows, ref = manifest.splits[split].rows, f"{manifest.name}@v{manifest.version}"
    said = f"pulled {rows:,} rows of {ref} split {split}"
    replaced = [p.name for p in edited]
    if before is not None and before == path.stat().st_ino:
        said = f"already there: {path} holds the {rows:,} rows of {ref} split {split}, unchanged"
    elif before is not None:
        replaced.insert(0, path.name)
    if replaced:
        said += f" (replaced the other content of {', '.join(replaced)}: --overwrite)"
    print(
        f"{said}{_other_splits(manifest, split, chosen=args.split is not None)}; "
        "also wrote " + " and ".join(str(p) for p in others),
        file=sys.stderr,
    )
    earlier = _other_versions_in(path.parent, manifest)
    if earlier:
        print(
            f"note: {path.parent} also holds {', '.join(earlier)} of other versions of "
            f"{manifest.name}, which its data card no longer lists (it describes "
            f"v{manifest.version}): give each version a folder of its own",
            file=sys.stderr,
        )
    return 0


def _other_versions_in(folder: Path, manifest: Manifest) -> list[str]:
    """Names of the split files in ``folder`` that earlier pulls wrote for other versions of
    ``manifest.name`` (``<name>-v<N>-<split>.parquet|arrow``)."""
    pattern = re.compile(
        rf"{re.escape(manifest.name)}-v(\d+)-[A-Za-z0-9][A-Za-z0-9_-]*\.(parquet|arrow)"
    )
    found = []
    for file in sorted(folder.iterdir()):
        match = pattern.fullmatch(file.name)
        if match and int(match.group(1)) != manifest.version:
            found.append(file.name)
    return found


def _other_splits(manifest: Manifest, split: str, *, chosen: bool) -> str:
    """`` (the default; --split validation or test for the others)`` when ``split`` was not
    chosen, ``""`` when it was."""
    order = ("train", "validation", "test")
    others = sorted(
        (name for name in manifest.splits if name != split),
        key=lambda name: (order.index(name) if name in order else len(order), name),
    )
    if chosen or not others:
        return ""
    return f" (the default; --split {' or '.join(others)} for the other{'s' * (len(others) > 1)})"


def scan_(args: argparse.Namespace) -> int:
    """``datasets scan``: 0 when no raw identifier is found, 1 otherwise."""
    from lake.curation.scan import scan_machines, scan_version  # noqa: PLC0415 - lazy

    name, version = parse_ref(args.ref)
    settings = Settings()
    require_lake(settings)
    manifest = show(name, version, lake_root=settings, newest_if_none_active=True)
    registries = (
        None if settings.registry_file else RegistryStore(LakeLocation.from_settings(settings))
    )
    live = registry_source(settings).snapshot()[1]
    machines, sources = scan_machines(manifest, live, registries)
    report = scan_version(
        CuratedArea.of(settings),
        manifest,
        contracts=ContractStore(contracts_dir(settings)),
        store=DeltaStore.from_settings(settings),
        machines=machines,
    )
    if args.json:
        document = {**dataclasses.asdict(report), "registries": sources, "clean": report.clean}
        print(json.dumps(document, indent=2))
        return 0 if report.clean else 1
    print(
        f"{report.dataset} ({manifest.status}), built under {', '.join(report.contracts)}: "
        f"{report.identifiers:,} raw identifiers (machines of {' and '.join(sources)}) "
        f"looked for in {len(report.scanned)} files"
    )
    for file in report.scanned:
        found = [(where, n) for f, where, n in report.hits if f == file]
        verdict = "; ".join(f"{n:,} in {where}" for where, n in found) if found else "none"
        print(f"  {file}: {verdict}")
    if report.values:
        print(f"  raw identifiers found in file bytes: {', '.join(report.values[:20])}")
    print("clean: no raw identifier found" if report.clean else "LEAK: raw identifiers found")
    return 0 if report.clean else 1
