"""Operations commands: ``status``, ``quarantine list|replay``, ``backfill``.

See docs/OPERATIONS.md for what each command is for (``quality docs`` lives in
:mod:`maxlake.cli.quality_cmd`).
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from maxlake.cli.lake_cmd import _age
from maxlake.cli.lake_guard import require_lake
from maxlake.errors import ConfigError
from maxlake.settings import Settings
from schemas import EventKind

KINDS = [k.value for k in EventKind]
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``1h``, ``7d`` -> timedelta (argparse type)."""
    match = _DURATION.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}: use e.g. 90s, 15m, 1h, 7d")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


def positive_duration(text: str) -> timedelta:
    """:func:`duration`, refusing ``0s`` (a window must hold some time)."""
    value = duration(text)
    if value <= timedelta(0):
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}: must be more than 0")
    return value


def instant(text: str) -> datetime:
    """An ISO date or date-time (naive values are UTC), or a duration back from now such as
    ``30m`` or ``24h`` (as ``maxlake audit --since`` takes) (argparse type)."""
    if _DURATION.match(text.strip()):
        return datetime.now(UTC) - duration(text)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid time {text!r}: give an ISO date/time (UTC unless it has an offset) or a "
            "duration back from now such as 30m, 24h, 7d"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def register(sub: Any) -> None:
    """Add ``status``, ``quarantine`` and ``backfill``."""
    status: argparse.ArgumentParser = sub.add_parser(
        "status", help="lag, workers, tables and quality at a glance"
    )
    status.add_argument(
        "--window", type=positive_duration, default=timedelta(hours=1), help="e.g. 1h"
    )
    status.add_argument(
        "--tenant",
        action="append",
        dest="tenants",
        metavar="T",
        help="only this tenant's topics (repeatable; default: all)",
    )
    status.add_argument("--no-kafka", action="store_true", help="lake only; skip the broker")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=_status)

    quarantine: argparse.ArgumentParser = sub.add_parser(
        "quarantine", help="inspect and replay quarantined messages"
    )
    actions = quarantine.add_subparsers(dest="quarantine_action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="quarantined messages by kind and reason")
    listing.add_argument("--kind", choices=KINDS, help="only this event kind")
    listing.add_argument("--reason", help="only this quarantine reason")
    listing.add_argument("--tenant", help="only this tenant")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(handler=_list)
    show = actions.add_parser(
        "show", help="the quarantined messages themselves (raw payload escaped, every reason)"
    )
    show.add_argument("--kind", choices=KINDS, help="one event kind (default: every kind)")
    show.add_argument("--reason", help="only messages with this reason")
    show.add_argument("--tenant", help="only this tenant's messages")
    show.add_argument(
        "--since",
        type=instant,
        help="quarantined at or after (ISO 8601, or 30m, 24h: back from now)",
    )
    show.add_argument("--limit", type=int, default=20, help="newest N messages (default 20)")
    show.add_argument(
        "--offset", type=int, default=0, help="skip the N newest matching messages (default 0)"
    )
    show.add_argument(
        "--max-bytes", type=int, default=2000, help="payload bytes printed per message"
    )
    show.add_argument("--json", action="store_true", help="JSON lines, payload in base64 too")
    show.set_defaults(handler=_show)
    replay = actions.add_parser(
        "replay", help="validate quarantined messages again; move the valid ones to silver"
    )
    replay.add_argument("--kind", choices=KINDS, required=True, help="event kind to replay")
    replay.add_argument(
        "--since",
        type=instant,
        help="quarantined at or after (ISO 8601, or 30m, 24h: back from now)",
    )
    replay.add_argument("--reason", help="only messages with this reason")
    replay.add_argument("--tenant", help="only this tenant's messages")
    replay.add_argument("--dry-run", action="store_true", help="report only, write nothing")
    replay.add_argument("--suites-dir", type=Path, help="suites folder (default: packaged)")
    replay.add_argument(
        "--registry",
        type=Path,
        help="registry TOML file (default: MAXLAKE_REGISTRY_FILE, else the newest version of "
        "the live registry under the lake root)",
    )
    replay.add_argument("--json", action="store_true", help="machine-readable report")
    replay.set_defaults(handler=_replay)

    backfill: argparse.ArgumentParser = sub.add_parser(
        "backfill", help="ingest a historical JSON-lines file (idempotent)"
    )
    backfill.add_argument("file", type=Path, help="JSON Lines file of events, one per line")
    backfill.add_argument("--kind", choices=KINDS, required=True, help="event kind of every line")
    backfill.add_argument("--tenant", help="tenant of every line (default: each line's field)")
    backfill.add_argument(
        "--name", help="names this backfill in topic names (default: the file name's stem)"
    )
    backfill.add_argument(
        "--max-age-days", type=int, help="accept events up to this old (MAXLAKE_MAX_EVENT_AGE_DAYS)"
    )
    backfill.add_argument("--json", action="store_true", help="machine-readable report")
    backfill.set_defaults(handler=_backfill)


def _status(args: argparse.Namespace) -> int:
    from streams.status import check_tenants, collect_status  # noqa: PLC0415 - lazy: `maxlake --help` stays fast

    settings = Settings()
    try:
        require_lake(settings)
    except ConfigError as missing:
        print(f"maxlake: warning: {missing}", file=sys.stderr)
    check_tenants(settings, args.tenants)
    status = collect_status(settings, args.window, tenants=args.tenants, kafka=not args.no_kafka)
    if args.json:
        print(json.dumps(status, indent=2, default=str))
    else:
        print(render_status(status))
    return 0


def render_status(status: dict[str, Any]) -> str:
    """The terminal view of :func:`streams.status.collect_status`."""
    lines: list[str] = []
    kafka = status["kafka"]
    lines.append(f"maxlake status at {status['generated_at'][:19]}Z  lake {status['lake_root']}")
    parser = status.get("json_parser")
    if parser:
        lines.append(f"decoder JSON parser of this install: {parser['detail']}")
    if kafka.get("checked") is False:
        lines.append("kafka: not checked (--no-kafka): no consumer group, lag or live workers")
    elif not kafka["reachable"]:
        lines.append(f"KAFKA: unavailable ({kafka['error']})")
    else:
        members = kafka["members"]
        lines.append(
            f"\nconsumer group {kafka['group_id']} ({kafka['group_state']}): "
            f"{len(members)} live worker(s), total lag {kafka['total_lag']:,} messages "
            "(offsets not yet committed)"
        )
        if kafka.get("group_shared"):
            lines.append(
                "  (the default group id, shared by every lake on this broker that keeps it: the"
                " workers and lag shown are the group's, maybe another lake's; set"
                " MAXLAKE_GROUP_ID per lake)"
            )
        for m in members:
            lines.append(f"  {m['client_id']} on {m['host']}: {len(m['partitions'])} partitions")
        lines.append(f"  {'topic':<48}{'part':>5}{'end':>11}{'committed':>11}{'lag':>9}")
        for p in kafka["partitions"]:
            committed = "-" if p["committed"] is None else f"{p['committed']:,}"
            lines.append(
                f"  {p['topic']:<48}{p['partition']:>5}{p['end']:>11,}{committed:>11}{p['lag']:>9,}"
            )
    lines.append(f"\n{'table':<26}{'version':>8}{'files':>8}{'small':>8}  last commit")
    for t in status["tables"]:
        lines.append(
            f"{t['table']:<26}{t['version']:>8}{t['files']:>8}{t['small_files']:>8}"
            f"  {_age(t['last_commit_age_s'])}"
        )
    if status["tables"]:
        lines.append("(small: files beyond one per partition; `maxlake lake compact` merges them)")
    seconds = status["window_s"]
    window = f"{seconds / 3600:g} h" if seconds >= 3600 else f"{seconds / 60:g} min"
    quality = status["quality"]
    scope = quality.get("tenants")
    whose = f"tenant {', '.join(scope)}" if scope else "all tenants"
    recent = quality.get("recent_s", 300.0)
    recent_label = f"{recent / 60:g}-min ev/s"
    lines.append(
        f"\nlast {window}, {whose}: (avg ev/s = consumed / {window}, over the whole window)"
    )
    lines.append(
        f"  ({recent_label}: consumed by the batches of the last {recent / 60:g} min / "
        f"{recent / 60:g} min; quar. %: quarantined / consumed)"
    )
    lines.extend(f"  {line}" for line in _quality_table(quality["kinds"], recent_label))
    if scope:
        lines.append("  (consumed: offsets read from these tenants' topics; quarantined, dups:")
        lines.append("  their messages; batches and checks: every batch that read their topics)")
    for kind, q in quality["kinds"].items():
        reasons = list(q["quarantined_by_reason"].items())
        for reason, n in reasons[:_TOP_REASONS]:
            lines.append(f"    {kind} quarantined {reason}: {n:,}")
        if len(reasons) > _TOP_REASONS:
            only = f" --tenant {scope[0]}" if scope and len(scope) == 1 else ""
            lines.append(
                f"    ({kind}: top {_TOP_REASONS} of {len(reasons)} reasons; `--json` or "
                f"`maxlake quarantine list --kind {kind}{only}` for all)"
            )
        for name, batches in q["failed_batch_checks"].items():
            lines.append(f"    {kind} batch check failed {name}: {batches} batches")
    alerts = status["alerts"]
    lines.append("\nalerts: " + ("none" if not alerts else ""))
    for a in alerts:
        lines.append(f"  {a['alert']}: {a['detail']}")
    return "\n".join(lines)


_TOP_REASONS = 5
"""Quarantine reasons listed per kind under the quality table (the most frequent)."""


def _quality_table(kinds: dict[str, Any], recent_label: str = "5-min ev/s") -> list[str]:
    """The quality block's table, each column as wide as its header or widest value."""
    header = (
        "kind",
        "batches",
        "consumed",
        "avg ev/s",
        recent_label,
        "quarantined",
        "quar. %",
        "dups",
    )
    rows = [
        (
            kind,
            f"{q['batches']:,}",
            f"{q['consumed']:,}",
            _events_per_s(q["events_per_s"]),
            _events_per_s(q.get("recent_events_per_s", 0.0)),
            f"{q['quarantined']:,}",
            f"{q['quarantine_rate']:.1%}",
            f"{q['duplicates']:,}",
        )
        for kind, q in kinds.items()
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return [
        f"{r[0]:<{widths[0]}}"
        + "".join(f"  {v:>{w}}" for v, w in zip(r[1:], widths[1:], strict=True))
        for r in [header, *rows]
    ]


def _events_per_s(rate: float) -> str:
    """``12.2``; a rate below 0.1 with two significant digits (``0.0067``), not ``0.0``."""
    if rate == 0 or rate >= 0.1:
        return f"{rate:,.1f}"
    return f"{rate:.2g}"


def _list(args: argparse.Namespace) -> int:
    from streams.replay import quarantine_summary  # noqa: PLC0415 - lazy: `maxlake --help` stays fast

    kinds = (EventKind(args.kind),) if args.kind else tuple(EventKind)
    settings = Settings()
    require_lake(settings)
    rows = quarantine_summary(settings, kinds=kinds, reason=args.reason, tenant=args.tenant)
    if not rows:
        _check_reason(settings, args.reason, kinds)
        _check_tenant(settings, args.tenant)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        filtered = args.kind or args.reason or args.tenant
        print("no quarantined message matches" if filtered else "quarantine is empty")
        return 0
    print(f"{'kind':<14}{'reason':<36}{'stage':<10}{'messages':>9}{'replayed':>9}  last")
    for r in rows:
        print(
            f"{r['kind']:<14}{r['reason']:<36}{r['stage']:<10}{r['messages']:>9,}"
            f"{r['replayed']:>9,}  {r['last'][:19]}"
        )
    return 0


def _show(args: argparse.Namespace) -> int:
    from streams.replay import escape_payload, quarantine_page  # noqa: PLC0415 - lazy: `maxlake --help` stays fast

    if args.limit < 1 or args.max_bytes < 1 or args.offset < 0:
        raise ConfigError("--limit and --max-bytes must be at least 1, --offset at least 0")
    kinds = (EventKind(args.kind),) if args.kind else tuple(EventKind)
    settings = Settings()
    require_lake(settings)
    total, messages = quarantine_page(
        settings,
        kinds=kinds,
        reason=args.reason,
        tenant=args.tenant,
        since=args.since,
        offset=args.offset,
        limit=args.limit,
    )
    if not total:
        _check_reason(settings, args.reason, kinds)
        _check_tenant(settings, args.tenant)
    if args.json:
        for m in messages:
            raw: bytes = m.pop("raw")
            m["raw_text"] = escape_payload(raw, len(raw) or 1)
            m["raw_base64"] = base64.b64encode(raw).decode()
            print(json.dumps(m))
        return 0
    if not total:
        print("no quarantined message matches")
        return 0
    for m in messages:
        # the event id is the sender's text too: escaped like the payload (no terminal codes)
        event_id = escape_payload(m["event_id"].encode(), args.max_bytes) if m["event_id"] else "-"
        tenant = escape_payload(str(m["tenant"]).encode(), args.max_bytes)
        print(
            f"{m['quarantined_at'][:19]}Z  {m['kind']}  tenant {tenant}  "
            f"{m['kafka_topic']}[{m['kafka_partition']}]@{m['kafka_offset']}  "
            f"stage {m['stage']}  event_id {event_id}"
        )
        for reason, detail in zip(m["reasons"], m["details"], strict=False):
            print(f"  {reason}: {escape_payload(detail.encode(), args.max_bytes)}")
        print(f"  {replay_line(m['replay'])}")
        print(f"  payload ({len(m['raw']):,} bytes): {escape_payload(m['raw'], args.max_bytes)}")
    last = args.offset + len(messages)
    shown = f"messages {args.offset + 1:,}-{last:,}" if messages else "no message"
    older = f"; --offset {last} for older ones" if last < total else ""
    print(f"{shown} of {total:,}, newest first{older}")
    return 0


def replay_line(mark: dict[str, Any] | None) -> str:
    """One line on what ``maxlake quarantine replay`` did to a message (``mark`` as in
    :func:`lake.replays.replay_marks`; None: never replayed)."""
    if mark is None:
        return "replay: not replayed (still needs attention)"
    at = f"{mark['replayed_at'][:19]}Z"
    run = f"replay {mark['replay_id']}"
    if mark["outcome"] == "replayed":
        return f"replayed {at} to silver: {mark['silver_rows']:,} row(s) ({run})"
    if mark["outcome"] == "duplicate":
        return f"replayed {at}: a duplicate, its event was already in silver ({run})"
    tries = f", {mark['attempts']} attempts" if mark["attempts"] > 1 else ""
    return (
        f"replay {at} failed again{tries}: still invalid "
        f"({', '.join(mark['reasons']) or 'no reason'}; {run})"
    )


def _check_reason(settings: Settings, reason: str | None, kinds: tuple[EventKind, ...]) -> None:
    """Raise when ``reason`` (a filter that matched nothing) is no quarantine reason at all."""
    from streams.replay import known_reasons  # noqa: PLC0415 - lazy: `maxlake --help` stays fast

    if reason is None:
        return
    known = known_reasons(settings, kinds=kinds)
    if reason not in known:
        raise ConfigError(
            f"--reason {reason!r} is not a quarantine reason of "
            f"{', '.join(k.value for k in kinds)}; known: {', '.join(known)}"
        )


def _check_tenant(settings: Settings, tenant: str | None) -> None:
    """Raise when ``tenant`` (a filter that matched nothing) is no tenant of the registry."""
    from streams.status import check_tenants  # noqa: PLC0415 - lazy: `maxlake --help` stays fast

    check_tenants(settings, [tenant] if tenant else None)


def _replay(args: argparse.Namespace) -> int:
    from streams.replay import replay_quarantine  # noqa: PLC0415 - lazy: `maxlake --help` stays fast

    if args.suites_dir is not None and not args.suites_dir.is_dir():
        raise ConfigError(f"suites folder {args.suites_dir} does not exist")
    settings = Settings()
    require_lake(settings)
    report = replay_quarantine(
        settings,
        args.kind,
        since=args.since,
        reason=args.reason,
        tenant=args.tenant,
        dry_run=args.dry_run,
        suites_dir=args.suites_dir,
        registry_file=args.registry,
    )
    if report.selected == 0:
        _check_reason(settings, args.reason, (EventKind(args.kind),))
        _check_tenant(settings, args.tenant)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
        return 0
    verb = "would move" if report.dry_run else "moved"
    print(
        f"{report.kind}: {report.selected:,} quarantined selected, "
        f"{report.skipped_already_replayed:,} already replayed; suite {report.suite_version}, "
        f"registry {_registry_label(report.registry_version)}"
    )
    print(f"  {verb} {report.replayed:,} messages ({report.silver_rows:,} rows) to silver")
    print(
        f"  {report.duplicates:,} already in silver (duplicates), "
        f"{report.still_invalid:,} still invalid"
    )
    for reason, n in report.still_invalid_by_reason.most_common():
        print(f"    {reason:<40}{n:>8,}")
    if report.dry_run:
        print("dry run: nothing written")
    return 0


def _backfill(args: argparse.Namespace) -> int:
    from streams.backfill import backfill_file  # noqa: PLC0415 - lazy: `maxlake --help` stays fast

    settings = Settings()
    if args.max_age_days is not None:
        settings = settings.model_copy(update={"max_event_age_days": args.max_age_days})
    report = backfill_file(settings, args.file, args.kind, tenant=args.tenant, name=args.name)
    code = 1 if report.quarantined else 0
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(
            f"{report.path}: {report.lines:,} lines ({report.blank:,} blank), "
            f"{report.already_in_lake:,} already in the lake"
        )
        print(
            f"  new: {report.consumed:,} messages -> {report.silver_events:,} events "
            f"({report.silver_rows:,} rows) in silver, {report.quarantined:,} quarantined, "
            f"{report.duplicates:,} duplicates"
        )
    if code:
        print(
            f"{report.quarantined:,} line(s) of {report.path} failed validation and are in "
            f"quarantine (exit 1): maxlake quarantine show --kind {args.kind} --since 1h",
            file=sys.stderr,
        )
    return code


def _registry_label(version: int | None) -> str:
    return "file" if version is None else f"version {version}"
