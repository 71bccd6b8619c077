"""``maxlake worker`` and ``maxlake lake verify``: run the ingest and check its accounting."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from lake import DeltaStore
from lake.accounting import check_accounting
from maxlake.settings import Settings
from schemas import EventKind, load_registry

KINDS = [k.value for k in EventKind]


def register(sub: Any) -> None:
    """Add ``worker`` and ``lake verify``."""
    worker: argparse.ArgumentParser = sub.add_parser(
        "worker", help="run a Faust ingest worker (Kafka -> GX -> Delta) until SIGTERM"
    )
    worker.add_argument(
        "--kind",
        action="append",
        dest="kinds",
        choices=KINDS,
        help="event kinds to ingest (repeatable; default all)",
    )
    worker.add_argument(
        "--tenant",
        action="append",
        dest="tenants",
        metavar="T",
        help="tenants whose topics to read (repeatable; default: registry)",
    )
    worker.add_argument(
        "--loglevel", default="info", choices=["crit", "error", "warn", "info", "debug"]
    )
    worker.set_defaults(handler=_worker)

    lake: argparse.ArgumentParser = sub.add_parser("lake", help="inspect and check the lake")
    actions = lake.add_subparsers(dest="lake_action", metavar="ACTION", required=True)
    verify = actions.add_parser(
        "verify",
        help="check that every consumed offset is in exactly one of silver, quarantine, duplicates",
    )
    verify.add_argument("--kind", action="append", dest="kinds", choices=KINDS)
    verify.add_argument(
        "--no-kafka",
        action="store_true",
        help="check the lake alone, without the group's committed offsets",
    )
    verify.add_argument("--json", action="store_true", help="machine-readable output")
    verify.set_defaults(handler=_verify)


def _worker(args: argparse.Namespace) -> int:
    from streams.worker import run_worker

    kinds = tuple(EventKind(k) for k in args.kinds) if args.kinds else tuple(EventKind)
    run_worker(Settings(), kinds=kinds, tenants=args.tenants, loglevel=args.loglevel)
    return 0


def _verify(args: argparse.Namespace) -> int:
    settings = Settings()
    kinds = tuple(EventKind(k) for k in args.kinds) if args.kinds else tuple(EventKind)
    committed: dict[tuple[str, int], int] | None = None
    starts: dict[tuple[str, int], int] = {}
    if not args.no_kafka:
        from streams.offsets import group_offsets

        tenants = [t.id for t in load_registry().tenants]
        topics = [settings.topic_for(t, k.value) for t in tenants for k in kinds]
        existing = _existing_topics(settings, topics)
        committed = {}
        for part in group_offsets(settings, existing):
            starts[(part.topic, part.partition)] = part.start
            if part.committed is not None:
                committed[(part.topic, part.partition)] = part.committed
    report = check_accounting(
        DeltaStore(settings.lake_root), kinds=kinds, committed=committed, start_offsets=starts
    )
    if args.json:
        print(
            json.dumps(
                {
                    "ok": report.ok,
                    "silver_events": report.silver_events,
                    "silver_rows": report.silver_rows,
                    "quarantined": report.quarantined,
                    "duplicates": report.duplicates,
                    "runs_consumed": report.runs_consumed,
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
        for violation in report.violations:
            print(f"VIOLATION {violation}", file=sys.stderr)
        print(
            "accounting invariant holds"
            if report.ok
            else f"accounting invariant BROKEN: {len(report.violations)} violation(s)"
        )
    return 0 if report.ok else 1


def _existing_topics(settings: Settings, topics: list[str]) -> list[str]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers, **settings.kafka_security()
    )
    try:
        known = consumer.topics()
    finally:
        consumer.close()
    return [t for t in topics if t in known]
