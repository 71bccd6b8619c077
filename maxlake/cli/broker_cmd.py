"""``maxlake broker start|stop|status``: the local development broker.

Exit codes: 0 done, 1 failure (message on stderr), 3 nothing to do (start while running, stop
while stopped), so scripts can tell "already in the state I wanted" from a failure.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from infra.broker import LocalBroker, fetch_jars
from infra.errors import BrokerAlreadyRunning, BrokerNotRunning
from maxlake.settings import Settings

EXIT_NOTHING_TO_DO = 3


def local_broker(settings: Settings) -> LocalBroker:
    """The broker described by the settings."""
    return LocalBroker(
        settings.broker_home,
        host=settings.broker_host,
        port=settings.broker_port,
        controller_port=settings.controller_port,
        heap_mb=settings.broker_heap_mb,
    )


def register(sub: Any) -> None:
    """Add ``broker start|stop|status|fetch``."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "broker", help="run a local single-node Kafka broker (KRaft, no Docker)"
    )
    actions = parser.add_subparsers(dest="broker_action", metavar="ACTION", required=True)
    start = actions.add_parser("start", help="start it and wait until it answers")
    start.add_argument("--timeout", type=float, default=None, help="seconds to wait (default 60)")
    start.set_defaults(handler=_start)
    actions.add_parser("stop", help="stop it (SIGTERM, then SIGKILL)").set_defaults(handler=_stop)
    actions.add_parser("status", help="is it running and answering?").set_defaults(handler=_status)
    actions.add_parser("fetch", help="download the broker jars with Maven").set_defaults(
        handler=_fetch
    )


def _start(args: argparse.Namespace) -> int:
    settings = Settings()
    broker = local_broker(settings)
    fetch_jars(broker.libs_dir)
    timeout = args.timeout if args.timeout is not None else settings.broker_start_timeout_s
    try:
        pid = broker.start(timeout_s=timeout)
    except BrokerAlreadyRunning as exc:
        print(f"maxlake: {exc}", file=sys.stderr)
        return EXIT_NOTHING_TO_DO
    print(f"broker started: pid {pid}, bootstrap {broker.bootstrap}, log {broker.log_path}")
    return 0


def _stop(args: argparse.Namespace) -> int:
    broker = local_broker(Settings())
    try:
        pid = broker.stop()
    except BrokerNotRunning as exc:
        print(f"maxlake: {exc}", file=sys.stderr)
        return EXIT_NOTHING_TO_DO
    print(f"broker stopped (pid {pid})")
    return 0


def _status(args: argparse.Namespace) -> int:
    status = local_broker(Settings()).status()
    if not status.running:
        print(f"broker: stopped (home {status.home})")
        return EXIT_NOTHING_TO_DO
    answer = "answering" if status.answering else "NOT answering metadata requests"
    print(f"broker: running, pid {status.pid}, {status.bootstrap}, {answer}")
    return 0 if status.answering else 1


def _fetch(args: argparse.Namespace) -> int:
    print(f"Kafka jars in {fetch_jars()}")
    return 0
