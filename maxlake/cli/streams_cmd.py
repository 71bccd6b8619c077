"""``maxlake topics create|list``, ``maxlake produce FILE`` and ``maxlake simulate``.

``produce`` and ``simulate`` send through :class:`~streams.producer.PlantProducer`, so they
spool to disk while the broker is down and resend when it is back. Exit codes: 0 done; 1 an error,
or (``produce``) some lines were skipped or events were rejected.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

from lake.registry_store import registry_source
from maxlake.cli.argtypes import positive_float, positive_int
from maxlake.errors import ConfigError
from maxlake.settings import Settings
from schemas.registry import load_registry
from streams.producer import EventSerializationError, EventTooLargeError, PlantProducer
from streams.simulator import SimStats, run_simulation
from streams.topics import ALL_KINDS, ensure_topics, list_topics, require_broker


def register(sub: Any) -> None:
    """Add ``topics``, ``produce`` and ``simulate``."""
    topics: argparse.ArgumentParser = sub.add_parser("topics", help="create or list topics")
    actions = topics.add_subparsers(dest="topics_action", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="create missing per-tenant topics (idempotent)")
    create.add_argument(
        "--tenant",
        action="append",
        dest="tenants",
        metavar="T",
        help="tenant id, repeatable (default: every tenant of the registry)",
    )
    create.add_argument(
        "--kind",
        action="append",
        dest="kinds",
        choices=ALL_KINDS,
        help="event kind, repeatable (default: all)",
    )
    create.set_defaults(handler=_topics_create)
    listing = actions.add_parser("list", help="list maxlake topics and partition counts")
    listing.set_defaults(handler=_topics_list)

    produce: argparse.ArgumentParser = sub.add_parser(
        "produce", help="send a file of JSON lines (one event per line) to Kafka"
    )
    produce.add_argument("file", help="JSON-lines file, '-' for stdin")
    produce.add_argument("--topic", help="send every line here instead of <prefix>.<tenant>.<kind>")
    produce.add_argument("--spool-dir", type=Path, help="store-and-forward directory")
    produce.set_defaults(handler=_produce)

    sim: argparse.ArgumentParser = sub.add_parser(
        "simulate", help="generate realistic factory events (seeded) and send them"
    )
    sim.add_argument("--seed", type=int, default=0, help="same seed and options, same events")
    sim.add_argument("--duration", type=positive_float, default=60.0, help="simulated seconds (60)")
    pace = sim.add_mutually_exclusive_group()
    pace.add_argument(
        "--rate", type=positive_float, default=1000.0, help="events per second (1000)"
    )
    pace.add_argument("--as-fast-as-possible", action="store_true", help="no pacing")
    sim.add_argument(
        "--scale", type=positive_int, default=1, help="copies of each machine per line"
    )
    sim.add_argument("--tenants", nargs="+", metavar="T", help="tenant ids (default: all)")
    sim.add_argument(
        "--start",
        type=_parse_start,
        help="simulated start, ISO 8601 (default: now minus --duration)",
    )
    sim.add_argument("--bad-rate", type=float, default=0.0, help="fraction of bad messages")
    sim.add_argument("--tick", type=float, default=1.0, help="simulated seconds per tick")
    sim.add_argument("--registry", type=Path, help="registry TOML (default: packaged)")
    sim.add_argument("--spool-dir", type=Path, help="store-and-forward directory")
    sim.add_argument("--no-create-topics", action="store_true", help="assume topics exist")
    sim.set_defaults(handler=_simulate)


def _quiet_kafka(args: argparse.Namespace) -> None:
    """kafka-python logs every refused connection as ERROR; the spool already handles those."""
    if not getattr(args, "verbose", False):
        logging.getLogger("kafka").setLevel(logging.CRITICAL)


def _topics_create(args: argparse.Namespace) -> int:
    _quiet_kafka(args)
    settings = Settings()
    tenants = args.tenants or [t.id for t in registry_source(settings).snapshot()[1].tenants]
    require_broker(settings)
    created = ensure_topics(settings, tenants, args.kinds or ALL_KINDS)
    wanted = len(tenants) * len(args.kinds or ALL_KINDS)
    for name in created:
        print(f"created {name}")
    print(f"{len(created)} created, {wanted - len(created)} already existed")
    return 0


def _topics_list(args: argparse.Namespace) -> int:
    _quiet_kafka(args)
    settings = Settings()
    require_broker(settings)
    for info in list_topics(settings):
        print(f"{info.name}\t{info.partitions} partition(s)")
    return 0


def _lines(path: str) -> Iterator[tuple[int, bytes]]:
    handle: IO[bytes]
    if path == "-":
        handle = sys.stdin.buffer
    else:
        try:
            handle = Path(path).open("rb")  # noqa: SIM115 - closed below unless stdin
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        yield from enumerate(handle, start=1)
    finally:
        if handle is not sys.stdin.buffer:
            handle.close()


def _send_line(producer: PlantProducer, line: bytes, topic: str | None) -> str | None:
    """Send one JSON line; the reason it was skipped, or None when it was sent."""
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return f"not valid JSON ({exc})"
    if not isinstance(event, dict):
        return f"not a JSON object but a JSON {type(event).__name__}"
    try:
        producer.send(event, topic=topic)
    except (EventSerializationError, EventTooLargeError) as exc:
        return str(exc)
    return None


def _produce(args: argparse.Namespace) -> int:
    _quiet_kafka(args)
    settings = Settings()
    skipped = 0
    read = 0
    next_report = time.monotonic() + 1.0
    with PlantProducer(settings, spool_dir=args.spool_dir) as producer:
        for number, line in _lines(args.file):
            if not line.strip():
                continue
            read += 1
            problem = _send_line(producer, line, args.topic)
            if problem is not None:
                skipped += 1
                print(f"{args.file}:{number}: skipped: {problem}", file=sys.stderr)
            if time.monotonic() >= next_report:
                print(f"\r{read:,} lines, {skipped:,} skipped", end="", file=sys.stderr, flush=True)
                next_report = time.monotonic() + 1.0
        producer.flush()
        counts = producer.counters()
    print(
        f"lines {read:,}: sent {counts['sent']:,}, spooled {counts['spooled']:,}, resent "
        f"{counts['resent']:,}, failed {counts['failed']:,}, skipped {skipped:,}, still in spool "
        f"{counts['spool_pending']:,}"
    )
    if counts["spool_pending"]:
        print(
            f"maxlake: {counts['spool_pending']:,} events did not reach Kafka yet "
            f"(broker unreachable at {settings.bootstrap_servers}); they are kept in the spool "
            f"{args.spool_dir or settings.spool_dir} and sent first by the next `maxlake produce` "
            "or producer on that spool once the broker answers",
            file=sys.stderr,
        )
        return 3
    return 1 if skipped or counts["failed"] else 0


def _parse_start(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from exc
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _progress_line(stats: SimStats) -> str:
    producer = stats.producer
    return (
        f"{stats.events:,} event{'' if stats.events == 1 else 's'} "
        f"({stats.events_per_s:,.0f}/s), bad {stats.bad:,}, "
        f"sent {producer.get('sent', 0):,}, spooled {producer.get('spooled', 0):,}"
    )


def _simulate(args: argparse.Namespace) -> int:
    _quiet_kafka(args)
    settings = Settings()
    live = sys.stderr.isatty()

    def progress(stats: SimStats) -> None:
        print(
            ("\r" if live else "") + _progress_line(stats),
            end="" if live else "\n",
            file=sys.stderr,
            flush=True,
        )

    stats = run_simulation(
        settings,
        load_registry(args.registry),
        seed=args.seed,
        duration_s=args.duration,
        rate=None if args.as_fast_as_possible else args.rate,
        scale=args.scale,
        tenants=args.tenants,
        start=args.start,
        bad_rate=args.bad_rate,
        tick_s=args.tick,
        spool_dir=args.spool_dir,
        create_topics=not args.no_create_topics,
        progress=progress,
    )
    if live:
        print(file=sys.stderr)
    print(f"simulated {args.duration:g}s: {_progress_line(stats)}, in {stats.elapsed_s:.1f}s")
    print("by kind: " + ", ".join(f"{k} {n}" for k, n in sorted(stats.by_kind.items())))
    if stats.by_bad_class:
        print("bad: " + ", ".join(f"{k} {n}" for k, n in sorted(stats.by_bad_class.items())))
    print("producer: " + ", ".join(f"{k} {n}" for k, n in stats.producer.items()))
    return 0
