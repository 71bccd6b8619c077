"""One snapshot of the whole ingest system for operators: Kafka, workers, tables and quality.

:func:`collect_status` is what ``maxlake status`` prints and what the HTTP status page serves:
a JSON-serialisable dict. It never raises because one source is down: an unreachable broker
gives ``kafka.error`` and the lake part is still filled in (and the other way round), so the
page shows what it can. :func:`status_history` gives per-bucket throughput and quarantine rates
for charts. Both live in ``streams`` because the Kafka half needs the consumer-group API; the
lake half is :mod:`lake.ops_status`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaTimeoutError

from lake import DeltaStore
from lake.registry_store import registry_source
from maxlake import native_parser
from maxlake.errors import ConfigError, close_match, exception_text
from maxlake.settings import Settings
from schemas import EventKind
from streams.offsets import group_offsets
from streams.write_block import read_worker_states, worker_state_dir

__all__ = [
    "Thresholds",
    "check_tenants",
    "close_match",
    "collect_status",
    "ingest_topics",
    "registry_tenants",
    "status_history",
    "unknown_tenant",
]

logger = logging.getLogger(__name__)


class Thresholds:
    """When :func:`collect_status` raises an alert (see docs/OPERATIONS.md)."""

    max_lag: int = 100_000
    max_quarantine_rate: float = 0.05
    stale_table_s: float = 900.0
    max_small_files: int = 500
    offset_events_s: float = 7 * 24 * 3600.0
    """How long a topic recreation or an offset gap stays an alert."""
    kafka_timeout_s: float = 10.0
    """How long to wait for a broker before the status says Kafka is unreachable (kafka-python
    waits 30 s by default: ``maxlake status`` and the page sat silent that long)."""


def ingest_topics(
    settings: Settings,
    *,
    tenants: Sequence[str] | None = None,
    kinds: Sequence[EventKind] = tuple(EventKind),
) -> list[str]:
    """``<prefix>.<tenant>.<kind>`` for the registry's tenants (or ``tenants``) and ``kinds``."""
    if tenants:
        tenant_ids = list(tenants)
    else:
        tenant_ids = [t.id for t in registry_source(settings).snapshot()[1].tenants]
    return [settings.topic_for(t, k.value) for t in tenant_ids for k in kinds]


def registry_tenants(settings: Settings) -> list[str]:
    """Sorted tenant ids of the registry ``settings`` point to: the live registry under the lake
    root (the packaged seed while none is stored), or ``settings.registry_file``."""
    return sorted(t.id for t in registry_source(settings).snapshot()[1].tenants)


def unknown_tenant(tenant: str, known: Sequence[str], *, label: str) -> str:
    """``"<label> 'x' is not a tenant of the registry (did you mean y?); known: ..."``."""
    match = close_match(tenant, known)
    hint = f" (did you mean {match}?)" if match else ""
    return (
        f"{label} {tenant!r} is not a tenant of the registry{hint}; "
        f"known: {', '.join(known) or 'none (maxlake tenants onboard)'}"
    )


def check_tenants(
    settings: Settings, tenants: Sequence[str] | None, *, option: str = "--tenant"
) -> None:
    """Return when every one of ``tenants`` is a tenant of the registry (or none is given);
    ``option`` names the filter in the message. The registry is :func:`registry_tenants`'.

    Raises:
        ConfigError: naming the first unknown tenant, the closest known one and every known
            tenant (a typo used to give an empty table, idle workers or stray topics).
    """
    if not tenants:
        return
    known = registry_tenants(settings)
    for tenant in tenants:
        if tenant not in known:
            raise ConfigError(unknown_tenant(tenant, known, label=option))


def _admin(settings: Settings, timeout_s: float = Thresholds.kafka_timeout_s) -> KafkaAdminClient:
    return KafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers,
        request_timeout_ms=10_000,
        bootstrap_timeout_ms=int(timeout_s * 1000),
        **settings.kafka_security(),
    )


def _existing(
    settings: Settings, topics: list[str], timeout_s: float
) -> tuple[list[str], set[str]]:
    """The topics of ``topics`` that exist, and every topic of the broker."""
    admin = _admin(settings, timeout_s)
    try:
        known = set(admin.list_topics())
    finally:
        admin.close()
    return [t for t in topics if t in known], known


def _members(settings: Settings) -> dict[str, Any]:
    """The consumer group's state and live members (one per worker process)."""
    admin = _admin(settings)
    noisy = logging.getLogger("kafka.admin._groups")
    level = noisy.level
    noisy.setLevel(logging.ERROR)  # Faust's subscription metadata is not the standard format
    try:
        described = admin.describe_groups([settings.group_id])
    finally:
        noisy.setLevel(level)
        admin.close()
    info = described.get(settings.group_id, {}) if isinstance(described, dict) else {}
    members = []
    for member in info.get("members", []) or []:
        assignment = member.get("member_assignment") or {}
        assigned = assignment.get("assigned_partitions") or assignment.get("assignment") or []
        partitions = []
        for entry in assigned:
            if isinstance(entry, dict):
                partitions += [f"{entry.get('topic')}[{p}]" for p in entry.get("partitions", [])]
            else:
                topic, parts = entry[0], entry[1]
                partitions += [f"{topic}[{p}]" for p in parts]
        members.append(
            {
                "member_id": member.get("member_id"),
                "client_id": member.get("client_id"),
                "host": member.get("client_host"),
                "partitions": sorted(partitions),
            }
        )
    return {"state": info.get("group_state"), "members": members}


def _unregistered(settings: Settings, known: set[str]) -> list[str]:
    """Ingest-shaped topics (``<prefix>.<tenant>.<kind>``) of tenants not in the registry."""
    tenants = {t.id for t in registry_source(settings).snapshot()[1].tenants}
    kinds = {k.value for k in EventKind}
    prefix = f"{settings.topic_prefix}."
    out = []
    for topic in sorted(known):
        rest = topic.removeprefix(prefix)
        tenant, _, kind = rest.rpartition(".")
        shaped = topic.startswith(prefix) and kind in kinds and tenant and "." not in tenant
        if shaped and tenant not in tenants:
            out.append(topic)
    return out


def _kafka(settings: Settings, topics: list[str], timeout_s: float) -> dict[str, Any]:
    try:
        existing, known = _existing(settings, topics, timeout_s)
        parts = group_offsets(settings, existing)
        group = _members(settings)
    except Exception as exc:  # the page must still show the lake when Kafka is down
        logger.debug("Kafka status unavailable: %s", exception_text(exc))  # shown as an alert
        error = exception_text(exc)
        if isinstance(exc, KafkaTimeoutError):
            error += (
                f" (no answer within {timeout_s:g} s): start the broker (`maxlake broker "
                "start`) or point MAXLAKE_BOOTSTRAP_SERVERS at yours"
            )
        return {"checked": True, "reachable": False, "error": error}
    by_topic: dict[str, int] = {}
    for p in parts:
        by_topic[p.topic] = by_topic.get(p.topic, 0) + p.lag
    return {
        "checked": True,
        "reachable": True,
        "error": None,
        "group_id": settings.group_id,
        "group_shared": settings.group_id == Settings.model_fields["group_id"].default,
        "group_state": group["state"],
        "members": group["members"],
        "missing_topics": [t for t in topics if t not in existing],
        "unregistered_topics": _unregistered(settings, known),
        "partitions": [
            {
                "topic": p.topic,
                "partition": p.partition,
                "start": p.start,
                "end": p.end,
                "committed": p.committed,
                "lag": p.lag,
            }
            for p in parts
        ],
        "lag_by_topic": by_topic,
        "total_lag": sum(by_topic.values()),
    }


def _alerts(status: dict[str, Any], limits: type[Thresholds]) -> list[dict[str, str]]:
    alerts: list[dict[str, str]] = []
    kafka = status["kafka"]
    if kafka["reachable"] is False:
        alerts.append({"alert": "kafka_unreachable", "detail": str(kafka["error"])})
    elif kafka["reachable"]:
        never = bool(kafka["partitions"]) and all(
            p["committed"] is None for p in kafka["partitions"]
        )
        why = (
            f" (group {kafka['group_id']} has no committed offset, so its lag is the whole "
            "log: a new MAXLAKE_GROUP_ID, or a deleted group (`maxlake groups list`)? It goes "
            "once a worker of the group has positioned its partitions from the lake and "
            "committed; nothing is ingested again)"
            if never
            else ""
        )
        if kafka["total_lag"] > limits.max_lag:
            alerts.append(
                {
                    "alert": "lag_high",
                    "detail": f"total lag {kafka['total_lag']:,} messages{why}",
                }
            )
        if kafka["total_lag"] > 0 and not kafka["members"]:
            alerts.append({"alert": "no_workers", "detail": f"lag but no live group member{why}"})
        shared = _shared_group(kafka, status["tables"])
        if shared:
            alerts.append({"alert": "shared_consumer_group", "detail": shared})
    for kind, q in status["quality"].get("kinds", {}).items():
        if q["consumed"] and q["quarantine_rate"] > limits.max_quarantine_rate:
            alerts.append(
                {
                    "alert": "quarantine_rate_high",
                    "detail": f"{kind}: {q['quarantine_rate']:.1%} quarantined "
                    f"({', '.join(list(q['quarantined_by_reason'])[:3])})",
                }
            )
        for name, batches in q["failed_batch_checks"].items():
            alerts.append(
                {"alert": "batch_expectation_failed", "detail": f"{kind}: {name} in {batches}"}
            )
    for worker in status["local_workers"]:
        if worker.get("blocked"):
            since = datetime.fromtimestamp(float(worker.get("since") or 0), UTC)
            alerts.append(
                {
                    "alert": "lake_write_blocked",
                    "detail": f"worker {worker['worker']}: lake not writable ({worker['cause']}) "
                    f"since {since:%Y-%m-%d %H:%M:%S} UTC ({worker['detail']}, "
                    f"{worker['retries']} failed attempts), consumption paused; "
                    f"next step: {worker['next_step']}",
                }
            )
        for corrupt in worker.get("corrupt_partitions") or []:
            alerts.append(_corrupt_alert(worker["worker"], corrupt))
    if kafka["reachable"]:
        for topic in kafka.get("unregistered_topics", []):
            alerts.append(
                {
                    "alert": "unregistered_tenant_topic",
                    "detail": f"{topic}: its tenant is not in the registry, no worker reads it; "
                    "add the tenant (maxlake registry) or delete the topic",
                }
            )
    events = status.get("offsets", {})
    for change in events.get("lineage_changes", []):
        alerts.append(
            {
                "alert": "topic_recreated",
                "detail": f"{change['topic']} was deleted and created again (topic id "
                f"{change['topic_id']}, was {change['previous_topic_id']}) at "
                f"{change['detected_at']}: a new lineage, offsets start again; see "
                "docs/OPERATIONS.md",
            }
        )
    for gap in events.get("gaps", []):
        where = f"{gap['topic']}[{gap['partition']}] offsets {gap['from_offset']}.."
        if gap["cause"] == "discarded_topic_recreated":
            alerts.append(
                {
                    "alert": "offsets_discarded_topic_recreated",
                    "detail": f"{where}{gap['to_offset']} of topic id {gap['topic_id']} "
                    f"({gap['offsets']:,} offsets, an upper bound) are not in the lake and "
                    "never will be: the topic was deleted and created again under a worker, "
                    "which discarded or never read them, and Kafka deleted them with the "
                    "topic; see docs/OPERATIONS.md",
                }
            )
            continue
        alerts.append(
            {
                "alert": "offsets_expired_before_ingest",
                "detail": f"{where}{gap['to_offset']} ({gap['offsets']:,} offsets) were gone "
                f"from Kafka before ingest ({gap['cause']}); some may have been transaction "
                "markers or aborted records, which hold no event",
            }
        )
    lagging = kafka.get("lag_by_topic", {}) if kafka["reachable"] else {}
    for table in status["tables"]:
        age = table["last_commit_age_s"]
        kind = table["table"].split("/", 1)[1]
        behind = any(lag > 0 for t, lag in lagging.items() if t.endswith(f".{kind}"))
        if table["table"].startswith("silver/") and behind and age and age > limits.stale_table_s:
            alerts.append(
                {"alert": "stale_table", "detail": f"{table['table']}: {age:.0f} s, lag > 0"}
            )
        if table["small_files"] > limits.max_small_files:
            alerts.append(
                {
                    "alert": "small_files",
                    "detail": f"{table['table']}: {table['small_files']} small files",
                }
            )
    return alerts


def _shared_group(kafka: dict[str, Any], tables: list[dict[str, Any]]) -> str | None:
    """Why the group's members and lag may not be this lake's: the group id is the default,
    which every lake on the broker that keeps it shares (None when that is not so, or the
    group shows nothing)."""
    committed = any(p["committed"] is not None for p in kafka["partitions"])
    if not kafka.get("group_shared") or not (kafka["members"] or committed):
        return None
    written = any(t["table"].startswith("silver/") for t in tables)
    whose = (
        "this lake has no ingest table yet, so they are another lake's"
        if not written
        else "they may be another lake's"
    )
    return (
        f"consumer group {kafka['group_id']} is the default group id, shared by every lake "
        f"on this broker that keeps it: its {len(kafka['members'])} live worker(s) and its "
        f"committed offsets (lag) are the group's, not this lake's; {whose}. Give each lake "
        "its own MAXLAKE_GROUP_ID (workers of two lakes in one group split the partitions "
        "between the lakes)"
    )


def _corrupt_alert(worker: str, corrupt: dict[str, Any]) -> dict[str, str]:
    """A partition a worker holds paused at a corrupt record batch (streams/batch_corrupt)."""
    since = datetime.fromtimestamp(float(corrupt.get("since") or 0), UTC)
    where = f"{corrupt['topic']}[{corrupt['partition']}]"
    if corrupt.get("held"):
        state = (
            f"the broker's copy is damaged; paused at offset {corrupt['offset']} (the other "
            f"partitions go on, nothing past it committed); next step: {corrupt['next_step']}"
        )
    else:
        state = f"retrying with backoff, paused at offset {corrupt['offset']} meanwhile"
    return {
        "alert": "corrupt_record_batch",
        "detail": f"worker {worker}: {where}: {corrupt['reason']}; {corrupt['attempts']} "
        f"fetch(es) since {since:%Y-%m-%d %H:%M:%S} UTC; {state}",
    }


def collect_status(
    settings: Settings,
    window: timedelta = timedelta(hours=1),
    *,
    tenants: Sequence[str] | None = None,
    kafka: bool = True,
    thresholds: type[Thresholds] = Thresholds,
) -> dict[str, Any]:
    """Everything ``maxlake status`` shows, as a JSON-serialisable dict.

    Args:
        settings: broker, group and lake settings.
        window: how far back the quality figures reach.
        tenants: tenants whose topics and quality figures to show (default: every tenant of
            the registry); see :func:`check_tenants` to refuse unknown ones first.
        kafka: False skips the broker (lake-only status).
        thresholds: limits for the ``alerts`` list.

    Returns:
        ``{"generated_at", "window_s", "lake_root", "kafka": {...}, "tables": [...],
        "quality": {...}, "alerts": [...]}``; ``kafka`` holds ``checked`` (False with
        ``kafka=False``: then ``reachable`` and ``error`` are None and nothing else is
        there), ``reachable``, ``error``,
        ``group_state``, ``members``, ``partitions`` (start, end, committed, lag),
        ``lag_by_topic`` and ``total_lag``; ``tables`` and ``quality`` are
        :func:`lake.ops_status.table_health` and :func:`lake.ops_status.quality_window`;
        ``local_workers`` holds the state files of live workers on this host that share
        ``MAXLAKE_FAUST_DATADIR`` (:func:`streams.write_block.read_worker_states`), read
        without touching the lake, so a blocked lake still shows as ``lake_write_blocked``;
        ``json_parser`` is the JSON parser a worker started from this install runs
        (:func:`maxlake.native_parser.report`: ``parser`` native or arrow, ``detail``).
    """
    # Lazy: ops_status reads with Polars (~35 MiB), which a worker importing this module for
    # ingest_topics does not need.
    from lake.ops_status import offset_events, quality_window, table_health  # noqa: PLC0415

    store = DeltaStore.from_settings(settings)
    kafka_part: dict[str, Any] = (
        _kafka(settings, ingest_topics(settings, tenants=tenants), thresholds.kafka_timeout_s)
        if kafka
        else {"checked": False, "reachable": None, "error": None}
    )
    status: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(),
        "window_s": window.total_seconds(),
        "lake_root": settings.lake_root,
        "json_parser": native_parser.report(),
        "kafka": kafka_part,
        "tables": table_health(store),
        "quality": quality_window(
            store,
            window,
            tenants=tenants or None,
            topics=ingest_topics(settings, tenants=tenants) if tenants else None,
        ),
        "local_workers": read_worker_states(worker_state_dir(settings.faust_datadir)),
        "offsets": offset_events(
            store, datetime.now(UTC) - timedelta(seconds=thresholds.offset_events_s)
        ),
    }
    status["alerts"] = _alerts(status, thresholds)
    return status


def status_history(settings: Settings, window: timedelta, bucket: timedelta) -> dict[str, Any]:
    """Per-bucket throughput (events/s), quarantine rate and consumed counts for charts.

    See :func:`lake.ops_status.runs_history`.
    """
    from lake.ops_status import runs_history  # noqa: PLC0415 - lazy, as in collect_status

    return runs_history(DeltaStore.from_settings(settings), window, bucket)
