"""``maxlake datasets``: build, list, show and pull curated training sets.

Datasets live in the curated area (``MAXLAKE_CURATED_DIR``, default ``<MAXLAKE_LAKE_ROOT>/curated``,
a folder or an object store). ``build`` prints its progress to stderr and a one-line JSON
summary to stdout, so scripts can read the version and content hash.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from lake import DeltaStore
from lake.access import AccessDenied, AccessStore, AuditEntry, AuditLog, access_dir, check_read
from lake.curation import (
    CuratedArea,
    build_dataset,
    list_datasets,
    load_spec,
    parse_ref,
    pull,
    show,
    summary_lines,
)
from lake.curation.spec import reference_specs, resolve_spec
from lake.registry_store import registry_source
from lake.sharing import ContractStore, contracts_dir, sharing_gate
from lake.sharing.withholding import STRUCTURE
from maxlake.cli.lake_guard import require_lake
from maxlake.errors import exception_text
from maxlake.settings import Settings


def register(sub: Any) -> None:
    """Add ``datasets build|list|show|pull``."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "datasets", help="curated, versioned training sets (build, list, show, pull)"
    )
    cmds = parser.add_subparsers(dest="datasets_command", metavar="SUBCOMMAND", required=True)

    build = cmds.add_parser("build", help="build a new dataset version from a spec file")
    build.add_argument(
        "spec",
        help="dataset spec (TOML file) or a reference dataset name: "
        + ", ".join(sorted(reference_specs())),
    )
    build.add_argument(
        "--registry",
        type=Path,
        help="asset registry TOML (default: MAXLAKE_REGISTRY_FILE, else the live registry under "
        "the lake root)",
    )
    build.add_argument(
        "--allow-failed-quality",
        action="store_true",
        help="publish even when the output checks fail (recorded in the manifest)",
    )
    build.add_argument(
        "--reset-withheld",
        action="append",
        default=[],
        choices=STRUCTURE,
        metavar="COLUMN",
        help="let this build publish a structure column (tenant, plant, line) that the set's "
        "latest version withheld, if every contract releases it (repeatable; recorded in the "
        "manifest); by default a withheld column stays withheld in every later version",
    )
    build.set_defaults(handler=_build)

    listing = cmds.add_parser("list", help="list datasets and their versions")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(handler=_list)

    show_cmd = cmds.add_parser("show", help="summarise NAME[@VERSION] (--json: the manifest)")
    show_cmd.add_argument("ref", metavar="NAME[@VERSION]", help="e.g. spindle or spindle@3")
    show_cmd.add_argument("--json", action="store_true", help="print the whole manifest")
    show_cmd.set_defaults(handler=_show)

    pull_cmd = cmds.add_parser("pull", help="copy one split (and its manifest) to a folder")
    pull_cmd.add_argument("ref", metavar="NAME[@VERSION]", help="default version: newest active")
    pull_cmd.add_argument("--split", default="train", help="split name (default: train)")
    pull_cmd.add_argument(
        "--format",
        choices=("parquet", "arrow"),
        default="parquet",
        help="file format of the pulled splits (default: parquet)",
    )
    pull_cmd.add_argument("--out", type=Path, default=Path(), help="target folder (default: .)")
    pull_cmd.add_argument(
        "--token", help="principal token (default: MAXLAKE_TOKEN); checked and audited"
    )
    pull_cmd.add_argument(
        "--allow-failed-quality",
        action="store_true",
        help="also pull a version whose output checks failed (refused by default)",
    )
    pull_cmd.set_defaults(handler=_pull)


def _progress(stage: str, counts: Mapping[str, int]) -> None:
    detail = ", ".join(f"{k}={v}" for k, v in counts.items())
    print(f"datasets: {stage}: {detail}", file=sys.stderr, flush=True)


def _build(args: argparse.Namespace) -> int:
    settings = Settings()
    spec = load_spec(resolve_spec(args.spec))
    manifest = build_dataset(
        DeltaStore.from_settings(settings),
        spec,
        registry=registry_source(settings, registry_file=args.registry).snapshot()[1],
        progress=_progress,
        allow_failed_quality=args.allow_failed_quality,
        sharing=sharing_gate(settings),
        out_root=CuratedArea.of(settings),
        reset_withheld=args.reset_withheld,
    )
    summary = {
        "name": manifest.name,
        "version": manifest.version,
        "rows": {name: s.rows for name, s in manifest.splits.items()},
        "sources": manifest.source_versions,
        "content_hash": manifest.content_hash,
        "quality_success": manifest.quality_passed,
    }
    for detail in manifest.quality.get("details") or []:
        print(f"datasets: check {detail}", file=sys.stderr)
    if not manifest.quality_passed:
        print(
            f"datasets: {manifest.name}@v{manifest.version} FAILED its output checks "
            f"({', '.join(manifest.quality_failed)}); readers are refused it by default",
            file=sys.stderr,
        )
    print(json.dumps(summary, sort_keys=True))
    return 0


def _list(args: argparse.Namespace) -> int:
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
        latest = f"v{d.latest}" if d.latest is not None else "-"
        quality = "FAILED" if d.latest in d.failed_quality else "passed"
        if d.latest is None:
            quality = "-"
        print(f"{d.name:<32} {latest:>6} {len(d.versions):>8}  {quality:<8}  {d.purpose}")
    failed = [f"{d.name}@v{v}" for d in datasets for v in d.failed_quality]
    if failed:
        print(f"failed output checks (not served by default): {', '.join(failed)}")
    return 0


def _show(args: argparse.Namespace) -> int:
    name, version = parse_ref(args.ref)
    settings = Settings()
    require_lake(settings)
    manifest = show(name, version, lake_root=settings)
    if args.json:
        sys.stdout.write(manifest.to_json().decode())
    else:
        print("\n".join(summary_lines(manifest)))
    return 0


def _pull(args: argparse.Namespace) -> int:
    """Pull with the same check as the dataset service; every attempt is audited."""
    settings = Settings()
    require_lake(settings)
    name, version = parse_ref(args.ref)
    token = args.token or (settings.token.get_secret_value() if settings.token else None)
    principal = AccessStore(access_dir(settings)).authenticate(token) if token else None
    decision = check_read(
        principal,
        name,
        version,
        args.split,
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
        split=args.split,
        format=args.format,
        rows=None,
        status=decision.status,
        detail=decision.detail,
        channel="cli",
    )
    if not decision.allowed or manifest is None:
        audit.record(entry)
        hint = " (give --token or set MAXLAKE_TOKEN)" if decision.status == 401 else ""
        raise AccessDenied(decision.outcome, decision.detail + hint)
    try:
        path = pull(
            manifest.name,
            manifest.version,
            args.split,
            args.out,
            args.format,
            lake_root=settings,
            allow_failed_quality=args.allow_failed_quality,
        )
    except Exception as exc:
        audit.record(replace(entry, outcome="error", status=500, detail=exception_text(exc)))
        raise
    audit.record(replace(entry, rows=manifest.splits[args.split].rows))
    print(path)
    others = [path.parent / f"{manifest.name}-v{manifest.version}.manifest.json"]
    if args.format == "parquet":
        others.append(path.parent / "README.md")
    print(
        f"pulled {manifest.splits[args.split].rows:,} rows; also wrote "
        + " and ".join(str(p) for p in others),
        file=sys.stderr,
    )
    return 0
