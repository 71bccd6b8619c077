"""``maxlake import cmapss``: public reference data through the real ingest path."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from maxlake.errors import ConfigError
from maxlake.settings import Settings


def register(sub: Any) -> None:
    """Add ``import cmapss``."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "import", help="import public reference data through Kafka (NASA C-MAPSS)"
    )
    cmds = parser.add_subparsers(dest="import_command", metavar="SOURCE", required=True)
    cm = cmds.add_parser(
        "cmapss",
        help="NASA C-MAPSS turbofan run-to-failure files (FD001-FD004), one event per cycle",
    )
    cm.add_argument("--train", type=Path, required=True, help="train_FD00x.txt[.gz]")
    cm.add_argument("--test", type=Path, required=True, help="test_FD00x.txt[.gz]")
    cm.add_argument("--rul", type=Path, required=True, help="RUL_FD00x.txt[.gz] (ground truth)")
    cm.add_argument("--subset", help="sub-dataset id (default: from the file name, e.g. fd001)")
    cm.add_argument(
        "--epoch",
        type=_instant,
        help="event time of cycle 1, RFC 3339 (default: recorded in the lake, else computed)",
    )
    cm.add_argument(
        "--cycle-seconds", type=int, help="seconds between cycles (default: recorded, else 600)"
    )
    cm.add_argument("--engines", type=int, help="only the first N training and N test engines")
    cm.add_argument(
        "--wait",
        type=float,
        metavar="S",
        help="wait up to S seconds until a running worker has written every cycle to silver",
    )
    cm.set_defaults(handler=_cmapss)


def registry_note(version: int, poll_s: float) -> str:
    """What the import tells the user about the registry: a running worker follows the live
    registry by itself (pinning it with ``--registry FILE`` would stop that)."""
    return (
        f"registry: live version {version} holds the engines; a running `maxlake worker` "
        f"uses it within {poll_s:g} s (MAXLAKE_REGISTRY_POLL_S); if none runs, start one "
        "(without --registry, which would pin it to a file)"
    )


def _instant(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an RFC 3339 time such as 2026-01-01T00:00:00Z"
        ) from None


def _cmapss(args: argparse.Namespace) -> int:
    from streams.cmapss import import_cmapss, silver_event_count  # noqa: PLC0415 - lazy: `maxlake --help` stays fast

    settings = Settings()
    report = import_cmapss(
        settings,
        train=args.train,
        test=args.test,
        rul=args.rul,
        subset=args.subset,
        epoch=args.epoch,
        cycle_s=args.cycle_seconds,
        engines=args.engines,
        progress=lambda line: print(line, file=sys.stderr),
    )
    print(
        f"{report.subset}: {report.events:,} cycles, {report.sent:,} sent, "
        f"{report.skipped:,} already in the lake ({report.seconds:.1f} s); epoch "
        f"{report.epoch.isoformat()}, {report.cycle_s} s per cycle"
    )
    print(registry_note(report.registry_version, settings.registry_poll_s))
    if args.wait is None:
        return 0
    deadline = time.monotonic() + args.wait
    while True:
        count = silver_event_count(settings, report.subset)
        if count >= report.events:
            print(f"{count:,} events of {report.subset} in silver")
            return 0
        if time.monotonic() >= deadline:
            raise ConfigError(
                f"only {count:,} of {report.events:,} events in silver after {args.wait:.0f} s: "
                "is a worker running (`maxlake worker`, without --registry)? see "
                "`maxlake quarantine list`"
            )
        time.sleep(1.0)
