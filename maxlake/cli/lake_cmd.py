"""``maxlake lake ...``: verify the accounting, show status, compact, vacuum, checkpoint."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

from lake import DeltaStore
from lake.accounting import check_accounting
from lake.maintenance import (
    DEFAULT_RETENTION_HOURS,
    checkpoint,
    compact,
    discover_tables,
    table_status,
    vacuum,
)
from maxlake.cli.argtypes import non_negative_int
from maxlake.cli.lake_guard import require_lake
from maxlake.errors import ConfigError, did_you_mean
from maxlake.settings import Settings
from schemas import EventKind

KINDS = [k.value for k in EventKind]


def register(sub: Any) -> None:
    """Add ``lake verify|status|compact|vacuum|checkpoint``."""
    lake: argparse.ArgumentParser = sub.add_parser("lake", help="inspect and check the lake")
    actions = lake.add_subparsers(dest="lake_action", metavar="ACTION", required=True)
    verify = actions.add_parser(
        "verify",
        help="check that every consumed offset is in exactly one of silver, quarantine, duplicates",
    )
    verify.add_argument(
        "--kind",
        action="append",
        dest="kinds",
        choices=KINDS,
        help="only this event kind (repeatable; default: all)",
    )
    verify.add_argument(
        "--no-kafka",
        action="store_true",
        help="check the lake alone, without the group's committed offsets",
    )
    verify.add_argument("--json", action="store_true", help="machine-readable output")
    verify.add_argument(
        "--registry",
        type=Path,
        help="asset registry TOML naming the tenants (default: MAXLAKE_REGISTRY_FILE, else the "
        "live registry under the lake root)",
    )
    verify.set_defaults(handler=_verify)

    status = actions.add_parser("status", help="tables: version, files, bytes, partitions, age")
    status.add_argument("--partitions", action="store_true", help="list every partition")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=_status)

    comp = actions.add_parser("compact", help="bin-pack small files of closed partitions")
    comp.add_argument("tables", nargs="*", help="table names (default: all)")
    comp.add_argument(
        "--before",
        type=date.fromisoformat,
        help="compact date partitions before this day (default: today, UTC)",
    )
    comp.add_argument("--z-order", nargs="+", metavar="COLUMN", help="z-order by these columns")
    comp.add_argument(
        "--target-size-mb", type=int, default=256, help="target file size in MiB (default: 256)"
    )
    comp.set_defaults(handler=_compact)

    vac = actions.add_parser("vacuum", help="delete files no longer referenced (dry run first)")
    vac.add_argument("tables", nargs="*", help="table names (default: all)")
    vac.add_argument(
        "--retention-hours",
        type=non_negative_int,
        default=DEFAULT_RETENTION_HOURS,
        help=f"keep files referenced in the last N hours ({DEFAULT_RETENTION_HOURS})",
    )
    vac.add_argument("--apply", action="store_true", help="really delete (default: list only)")
    vac.set_defaults(handler=_vacuum)

    chk = actions.add_parser("checkpoint", help="write a checkpoint, drop expired log files")
    chk.add_argument("tables", nargs="*", help="table names (default: all)")
    chk.set_defaults(handler=_checkpoint)


def _verify(args: argparse.Namespace) -> int:
    settings = Settings()
    require_lake(settings)
    kinds = tuple(EventKind(k) for k in args.kinds) if args.kinds else tuple(EventKind)
    committed: dict[tuple[str, int], int] | None = None
    starts: dict[tuple[str, int], int] = {}
    ids: dict[str, str] | None = None
    data_offsets = None
    if not args.no_kafka:
        from lake.registry_store import registry_source  # noqa: PLC0415 - lazy: `maxlake --help` stays fast
        from streams.offsets import committed_data_offsets, group_offsets  # noqa: PLC0415 - lazy: `maxlake --help` stays fast
        from streams.topics import require_broker, topic_ids  # noqa: PLC0415 - lazy: `maxlake --help` stays fast

        require_broker(settings)
        source = registry_source(settings, registry_file=args.registry)
        tenants = [t.id for t in source.snapshot()[1].tenants]
        topics = [settings.topic_for(t, k.value) for t in tenants for k in kinds]
        existing = _existing_topics(settings, topics)
        ids = topic_ids(settings, existing)
        data_offsets = partial(committed_data_offsets, settings)
        committed = {}
        for part in group_offsets(settings, existing):
            starts[(part.topic, part.partition)] = part.start
            if part.committed is not None:
                committed[(part.topic, part.partition)] = part.committed
    report = check_accounting(
        DeltaStore.from_settings(settings),
        kinds=kinds,
        committed=committed,
        start_offsets=starts,
        topic_ids=ids,
        data_offsets=data_offsets,
    )
    group = None if args.no_kafka else settings.group_id
    shared = group is not None and group == Settings.model_fields["group_id"].default
    if args.json:
        print(
            json.dumps(
                {
                    "ok": report.ok,
                    "consumer_group": group,
                    "group_shared": shared,
                    "silver_events": report.silver_events,
                    "silver_rows": report.silver_rows,
                    "quarantined": report.quarantined,
                    "replayed": report.replayed,
                    "duplicates": report.duplicates,
                    "runs_consumed": report.runs_consumed,
                    "expired_before_ingest": [
                        line
                        for cause in (
                            "expired_before_ingest",
                            "beyond_log_end",
                            "deleted_at_corrupt_batch",
                        )
                        for line in report.gaps.get(cause, [])
                    ],
                    "gaps": report.gaps,
                    "gap_offsets": report.gap_offsets,
                    "not_data_offsets": report.not_data,
                    "violations": [str(v) for v in report.violations],
                },
                indent=2,
            )
        )
    else:
        for kind in kinds:
            k = kind.value
            print(
                f"{k:14} silver events {report.silver_events[k]:>9,}  "
                f"rows {report.silver_rows[k]:>9,}  "
                f"quarantined {report.quarantined[k]:>7,}  duplicates {report.duplicates[k]:>6,}  "
                f"runs count {report.runs_consumed[k]:>9,}"
            )
        for kind in kinds:
            replayed = report.replayed.get(kind.value, 0)
            if replayed:
                print(
                    f"{kind.value}: {replayed:,} quarantined offset(s) replayed to silver "
                    "(ops/replays) count as silver events above, not as quarantined; their "
                    "quarantine rows stay as the record of the first rejection"
                )
        for line in report.expired:
            print(f"GAP {line}")
        if report.not_data:
            print(
                f"{report.not_data:,} offsets are transaction markers or aborted records "
                "(read_committed skips them)"
            )
        for violation in report.violations:
            print(f"VIOLATION {violation}", file=sys.stderr)
        if group is None:
            print("checked the lake alone (--no-kafka): no consumer group's offsets")
        else:
            print(
                f"checked against consumer group {group}'s committed offsets (MAXLAKE_GROUP_ID)"
                + (
                    ": the default group id, shared by every lake on the broker that keeps it; "
                    "if this lake's workers run with their own MAXLAKE_GROUP_ID, set it here too"
                    if shared
                    else ""
                )
            )
        print(
            "accounting invariant holds"
            if report.ok
            else f"accounting invariant BROKEN: {len(report.violations)} violation(s)"
        )
    return 0 if report.ok else 1


def _existing_topics(settings: Settings, topics: list[str]) -> list[str]:
    from kafka import KafkaConsumer  # noqa: PLC0415 - lazy: `maxlake --help` stays fast

    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers, **settings.kafka_security()
    )
    try:
        known = consumer.topics()
    finally:
        consumer.close()
    return [t for t in topics if t in known]


def _store() -> DeltaStore:
    settings = Settings()
    require_lake(settings)
    return DeltaStore.from_settings(settings)


def _tables(store: DeltaStore, names: list[str]) -> list[str]:
    existing = discover_tables(store)
    unknown = [n for n in names if n not in existing]
    if unknown:
        named = ", ".join(f"{n}{did_you_mean(n, existing)}" for n in unknown)
        raise ConfigError(
            f"unknown table(s) {named}; tables in {store.root}: {', '.join(existing) or '(none)'}"
        )
    return names or existing


def _human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:,.1f} {unit}" if unit != "B" else f"{n} B"
        size /= 1024
    return f"{n} B"


def _status(args: argparse.Namespace) -> int:
    store = _store()
    statuses = [table_status(store, name) for name in discover_tables(store)]
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "table": s.name,
                        "version": s.version,
                        "files": s.files,
                        "bytes": s.bytes,
                        "small_files": s.small_files,
                        "last_commit": s.last_commit.isoformat() if s.last_commit else None,
                        "last_commit_age_s": s.last_commit_age_s,
                        "partitions": [
                            {"values": list(p.values), "files": p.files, "bytes": p.bytes}
                            for p in s.partitions
                        ],
                    }
                    for s in statuses
                ],
                indent=2,
            )
        )
        return 0
    if not statuses:
        print(f"no tables under {store.root} yet")
        return 0
    print(f"{'table':<26}{'version':>8}{'files':>8}{'small':>8}{'size':>12}  last commit")
    for s in statuses:
        age = s.last_commit_age_s
        print(
            f"{s.name:<26}{s.version:>8}{s.files:>8}{s.small_files:>8}{_human_bytes(s.bytes):>12}"
            f"  {_age(age)}"
        )
        if args.partitions:
            for p in s.partitions:
                print(f"    {'/'.join(p.values):<44}{p.files:>6} files {_human_bytes(p.bytes):>12}")
    return 0


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def _compact(args: argparse.Namespace) -> int:
    store = _store()
    for name in _tables(store, args.tables):
        metrics = compact(
            store,
            name,
            before=args.before,
            z_order=args.z_order,
            target_size_mb=args.target_size_mb,
        )
        print(
            f"{name}: {metrics.get('numFilesRemoved', 0)} files -> "
            f"{metrics.get('numFilesAdded', 0)} "
            f"({metrics.get('partitionsOptimized', 0)} partitions)"
        )
    return 0


SAFE_RETENTION_HOURS = 24
"""Below this, ``lake vacuum`` warns: see docs/OPERATIONS.md (vacuum)."""


def _vacuum(args: argparse.Namespace) -> int:
    if args.retention_hours < SAFE_RETENTION_HOURS:
        print(
            f"maxlake: warning: --retention-hours {args.retention_hours} h is below "
            f"{SAFE_RETENTION_HOURS} h: files a running worker is committing right now and the "
            "table versions that curated datasets and readers pinned in that window can be "
            f"deleted; keep {DEFAULT_RETENTION_HOURS} h unless every worker is stopped",
            file=sys.stderr,
        )
    store = _store()
    for name in _tables(store, args.tables):
        files = vacuum(store, name, retention_hours=args.retention_hours, dry_run=not args.apply)
        verb = "deleted" if args.apply else "would delete"
        print(f"{name}: {verb} {len(files)} files older than {args.retention_hours} h")
    if not args.apply:
        print("dry run: nothing deleted; add --apply to delete")
    return 0


def _checkpoint(args: argparse.Namespace) -> int:
    store = _store()
    for name in _tables(store, args.tables):
        print(f"{name}: checkpoint at version {checkpoint(store, name)}")
    return 0
