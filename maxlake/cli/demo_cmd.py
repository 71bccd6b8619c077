"""``maxlake demo``: its options; the run (:mod:`maxlake.cli.demo_run`) is imported when it starts.

Importing the run loads the Kafka client, Delta Lake, pandas and Polars (several seconds on a
busy machine), so the demo says what it is doing before that.
"""

from __future__ import annotations

import argparse
from typing import Any

from maxlake.cli.argtypes import positive_float


def register(sub: Any) -> None:
    """Add ``demo``."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "demo", help="end to end: broker, simulated plants, worker, Delta lake, report"
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="wall-clock seconds to stream")
    parser.add_argument("--rate", type=positive_float, default=2000.0, help="events per second")
    parser.add_argument("--bad-rate", type=float, default=0.01, help="share of bad messages")
    parser.add_argument(
        "--seed", type=int, default=7, help="simulator seed (same seed, same events)"
    )
    parser.add_argument("--keep-broker", action="store_true", help="leave the broker running")
    parser.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    print("==> loading maxlake (Kafka client, Delta Lake, Polars; a few seconds)", flush=True)
    from maxlake.cli.demo_run import run  # noqa: PLC0415 - lazy: the line above comes first

    return run(args)
