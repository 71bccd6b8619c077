"""``maxlake worker``: run a Faust ingest worker."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from maxlake.settings import Settings, check_reference
from schemas import EventKind

KINDS = [k.value for k in EventKind]


def register(sub: Any) -> None:
    """Add ``worker``."""
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
        "--loglevel",
        default="info",
        choices=["crit", "error", "warn", "info", "debug"],
        help="worker log level (default: info)",
    )
    worker.add_argument(
        "--engine",
        choices=["stream", "batch"],
        help="batch: aiokafka getmany in a Faust task (several times faster); stream: Faust "
        "agents with noack_take; default MAXLAKE_INGEST_ENGINE or batch",
    )
    worker.add_argument(
        "--registry",
        type=Path,
        help="validate against this registry TOML file (default: MAXLAKE_REGISTRY_FILE, else "
        "the live registry under the lake root, re-checked every MAXLAKE_REGISTRY_POLL_S)",
    )
    worker.add_argument(
        "--sink",
        type=_reference,
        metavar="MODULE:FACTORY",
        help="write to the sink this factory makes (a callable taking the Settings, returning a "
        "lake.sink.Sink; docs/EXTENDING.md); default MAXLAKE_SINK, else the Delta lake",
    )
    worker.set_defaults(handler=_worker)


def _reference(value: str) -> str:
    try:
        return check_reference(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _worker(args: argparse.Namespace) -> int:
    from streams.status import check_tenants  # noqa: PLC0415 - lazy: `maxlake --help` stays fast

    kinds = tuple(EventKind(k) for k in args.kinds) if args.kinds else tuple(EventKind)
    settings = Settings()
    if args.engine:
        settings = settings.model_copy(update={"ingest_engine": args.engine})
    if args.registry:
        settings = settings.model_copy(update={"registry_file": args.registry})
    if args.sink:
        settings = settings.model_copy(update={"sink": args.sink})
    check_tenants(settings, args.tenants)  # before waiting for a broker or idling on 0 partitions
    from streams.worker import run_worker  # noqa: PLC0415 - lazy: `maxlake --help` stays fast

    run_worker(settings, kinds=kinds, tenants=args.tenants, loglevel=args.loglevel)
    return 0
