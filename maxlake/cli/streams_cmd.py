"""``maxlake topics create|list|delete-records``, ``maxlake produce FILE`` and
``maxlake simulate``.

``produce`` and ``simulate`` send through :class:`~streams.producer.PlantProducer`, so they
spool to disk while the broker is down and resend when it is back. Exit codes: 0 done; 1 an error,
or (``produce``) some lines were skipped or events were rejected.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

from maxlake.cli.argtypes import non_negative_int, positive_float, positive_int
from maxlake.errors import ConfigError, did_you_mean
from maxlake.settings import Settings
from schemas.kinds import TENANT_ID_PATTERN
from schemas.registry import load_registry
from streams.groups import group_ids
from streams.offsets import committed_offset
from streams.producer import (
    EventSerializationError,
    EventTooLargeError,
    PlantProducer,
    UnknownTopicError,
)
from streams.simulator import SimStats, quarantine_names_line, run_simulation
from streams.status import check_tenants, close_match, registry_tenants, unknown_tenant
from streams.topics import (
    ALL_KINDS,
    delete_records,
    ensure_topics,
    list_topics,
    partition_bounds,
    require_broker,
)

_SKIPPED_SHOWN = 20


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
    delete = actions.add_parser(
        "delete-records",
        help="delete one partition's records below an offset (a lost corrupt batch)",
        description="Delete TOPIC[PARTITION]'s records below --before (Kafka's DeleteRecords, "
        "what kafka-delete-records.sh does): they are gone for every reader, and a worker "
        "records the offsets it had not ingested as a gap in ops/gaps. Without --yes it only "
        "says what it would delete. See docs/OPERATIONS.md, 'A corrupt record batch'.",
    )
    delete.add_argument("topic", help="the topic, e.g. maxlake.acme.telemetry")
    delete.add_argument("partition", type=non_negative_int, help="the partition number")
    delete.add_argument(
        "--before",
        type=non_negative_int,
        required=True,
        metavar="OFFSET",
        help="delete the records below this offset (for a corrupt batch: its last offset + 1, "
        "which the corrupt_record_batch alert names)",
    )
    delete.add_argument(
        "--group",
        metavar="GROUP",
        help="the ingest consumer group whose committed offset is shown beside the deletion "
        "(default: MAXLAKE_GROUP_ID)",
    )
    delete.add_argument("--yes", action="store_true", help="delete (without it: only show)")
    delete.set_defaults(handler=_topics_delete_records)

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
    check_tenants(settings, args.tenants)
    tenants = args.tenants or registry_tenants(settings)
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


def _topics_delete_records(args: argparse.Namespace) -> int:
    _quiet_kafka(args)
    settings = Settings()
    _require_ingest_topic(settings, args.topic)
    require_broker(settings)
    where = f"{args.topic}[{args.partition}]"
    start, end = partition_bounds(settings, args.topic, args.partition)
    if args.before > end:
        raise ConfigError(
            f"{where}'s last offset is {end - 1} (the next to be written {end}): --before is "
            f"at most {end}, not {args.before}; nothing deleted"
        )
    if args.before <= start:
        print(f"{where}: nothing to delete: its first offset is already {start}")
        return 0
    span = f"{where} offsets {start}..{args.before - 1} ({args.before - start:,} offsets)"
    group = args.group or settings.group_id
    committed = committed_offset(settings, args.topic, args.partition, group_id=group)
    known = group_ids(settings) if committed is None else []
    if committed is None and group not in known:
        print(
            f"no consumer group {group!r} on the broker{did_you_mean(group, known)} (`maxlake "
            "groups list`): which offsets to delete are in the lake is not known; check "
            "MAXLAKE_GROUP_ID or --group"
        )
    else:
        print(_ingested_line(group, committed, start, args.before))
    if not args.yes:
        print(f"would delete {span}; they are gone for every reader")
        raise ConfigError("nothing deleted: add --yes to delete them")
    low = delete_records(settings, args.topic, args.partition, args.before)
    print(f"deleted {span}; its first offset is now {low}")
    print(
        "a worker records the offsets it had not ingested in ops/gaps (`maxlake lake verify`); "
        "one held at a corrupt batch there goes on within MAXLAKE_CORRUPT_FETCH_RECHECK_S"
    )
    return 0


def _require_ingest_topic(settings: Settings, topic: str) -> None:
    """Refuse a topic that is not ``<topic_prefix>.<tenant>.<kind>``: the command exists for
    maxlake's ingest topics; any other topic is Kafka's own tools' business.

    Raises:
        ConfigError: the name is not an ingest topic's (the expected shape named).
    """
    head = f"{settings.topic_prefix}."
    tenant, _, kind = topic.removeprefix(head).rpartition(".")
    if (
        not topic.startswith(head)
        or re.fullmatch(TENANT_ID_PATTERN, tenant) is None
        or kind not in ALL_KINDS
    ):
        raise ConfigError(
            f"{topic!r} is not a maxlake ingest topic (expected "
            f"{settings.topic_prefix}.<tenant>.<{'|'.join(ALL_KINDS)}>, `maxlake topics list`); "
            "nothing deleted. For other topics use Kafka's kafka-delete-records.sh"
        )


def _ingested_line(group: str, committed: int | None, start: int, before: int) -> str:
    """What deleting ``start..before-1`` costs the lake, by ``group``'s committed offset."""
    if committed is None:
        return (
            f"consumer group {group!r} has committed no offset for this partition: the offsets "
            f"below {before} may not be in the lake (check MAXLAKE_GROUP_ID or --group)"
        )
    if committed >= before:
        return (
            f"consumer group {group!r} has committed offset {committed} (it has read the offsets "
            "below it): every offset to delete was ingested before"
        )
    first = max(committed, start)
    return (
        f"consumer group {group!r} has committed offset {committed} (it has read the offsets "
        f"below it): offsets {first}..{before - 1} ({before - first:,} offsets) are not "
        "ingested; deleted, they never reach the lake (a worker records them as a gap)"
    )


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


@dataclass
class _Routing:
    """What a line's ``tenant`` and ``kind`` are checked against before it is sent."""

    tenants: list[str]
    """Tenants of the registry (:func:`~streams.status.registry_tenants`)."""
    kinds: list[str]
    missing: dict[str, str] = field(default_factory=dict)
    """Topics the broker said do not exist, with the reason given for their lines."""

    def problem(self, event: dict[str, Any]) -> str | None:
        """Why ``event`` cannot be routed to an ingest topic, or None."""
        tenant, kind = event.get("tenant"), event.get("kind")
        if isinstance(tenant, str) and tenant not in self.tenants:
            return unknown_tenant(tenant, self.tenants, label="tenant")
        if isinstance(kind, str) and kind not in self.kinds:
            match = close_match(kind, self.kinds)
            hint = f" (did you mean {match}?)" if match else ""
            return f"kind {kind!r} is not an event kind{hint}; kinds: {', '.join(self.kinds)}"
        return None


def _send_line(
    producer: PlantProducer, line: bytes, topic: str | None, routing: _Routing
) -> str | None:
    """Send one JSON line; the reason it was skipped, or None when it was sent.

    Without ``topic``, a line whose tenant is not in the registry, whose kind is not an event
    kind or whose topic does not exist is skipped (the broker is asked once per topic).
    """
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return f"not valid JSON ({exc})"
    if not isinstance(event, dict):
        return f"not a JSON object but a JSON {type(event).__name__}"
    if topic is None and (problem := routing.problem(event)) is not None:
        return problem
    target = topic or f"{event.get('tenant')}/{event.get('kind')}"
    if target in routing.missing:
        return routing.missing[target]
    try:
        producer.send(event, topic=topic)
    except (EventSerializationError, EventTooLargeError) as exc:
        return str(exc)
    except UnknownTopicError as exc:
        routing.missing[target] = f"topic {exc.topic!r} does not exist; " + (
            f"create it with `maxlake topics create --tenant {event['tenant']}`"
            if topic is None
            else "the broker does not create topics on first use"
        )
        return routing.missing[target]
    return None


def _produce(args: argparse.Namespace) -> int:
    _quiet_kafka(args)
    settings = Settings()
    routing = _Routing(
        tenants=[] if args.topic else registry_tenants(settings), kinds=list(ALL_KINDS)
    )
    skipped: list[int] = []
    read = 0
    next_report = time.monotonic() + 1.0
    with PlantProducer(settings, spool_dir=args.spool_dir) as producer:
        for number, line in _lines(args.file):
            if not line.strip():
                continue
            read += 1
            problem = _send_line(producer, line, args.topic, routing)
            if problem is not None:
                skipped.append(number)
                print(f"{args.file}:{number}: skipped: {problem}", file=sys.stderr)
            if time.monotonic() >= next_report:
                print(
                    f"\r{read:,} lines, {len(skipped):,} skipped",
                    end="",
                    file=sys.stderr,
                    flush=True,
                )
                next_report = time.monotonic() + 1.0
        producer.flush()
        counts = producer.counters()
    print(
        f"lines {read:,}: sent {counts['sent']:,}, spooled {counts['spooled']:,}, resent "
        f"{counts['resent']:,}, failed {counts['failed']:,}, skipped {len(skipped):,}, still in "
        f"spool {counts['spool_pending']:,}"
    )
    if skipped:
        shown = ", ".join(str(n) for n in skipped[:_SKIPPED_SHOWN])
        more = (
            f" and {len(skipped) - _SKIPPED_SHOWN:,} more" if len(skipped) > _SKIPPED_SHOWN else ""
        )
        print(
            f"maxlake: skipped line(s) {shown}{more} of {args.file} (reasons above); "
            + ("no line was sent" if len(skipped) == read else "every other line was sent")
            + ": fix the skipped lines and send only them again",
            file=sys.stderr,
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

    registry = load_registry(args.registry)
    known = {t.id for t in registry.tenants}
    missing = [t for t in args.tenants or () if t not in known]
    if missing and args.registry is None:
        raise ConfigError(
            f"unknown tenants {missing}: the simulator plays the packaged registry's tenants "
            f"({', '.join(sorted(known))}), not the lake's; for a tenant onboarded on the lake: "
            "`maxlake registry show > live.toml`, then `maxlake simulate --registry live.toml ...`"
        )
    stats = run_simulation(
        settings,
        registry,
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
    print("by kind: " + ", ".join(f"{k} {n:,}" for k, n in sorted(stats.by_kind.items())))
    if stats.by_bad_class:
        print("bad: " + ", ".join(f"{k} {n:,}" for k, n in sorted(stats.by_bad_class.items())))
        names = quarantine_names_line(stats.by_bad_class)
        if names:
            print(f"  {names}")
    print("producer: " + ", ".join(f"{k} {n:,}" for k, n in stats.producer.items()))
    return 0
