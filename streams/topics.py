"""Topic administration: one topic per tenant and event kind, created idempotently.

Topic names come from :meth:`Settings.topic_for` (``<prefix>.<tenant>.<kind>``). Partition count
and retention come from the settings at creation time; existing topics are left as they are (a
partition change would move machines between partitions and break their ordering).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import OffsetSpec
from kafka.errors import KafkaError, TopicAlreadyExistsError

from maxlake.errors import BROKER_START_HINT, ConfigError, TransientError
from maxlake.settings import Settings
from schemas.errors import UnknownKindError
from schemas.kinds import TENANT_ID_PATTERN, EventKind
from streams.errors import StreamsError

__all__ = [
    "TopicAdminError",
    "TopicInfo",
    "admin_client",
    "delete_records",
    "ensure_topics",
    "list_topics",
    "partition_bounds",
    "probe_broker",
    "require_broker",
    "require_topic_ids",
    "topic_ids",
]

logger = logging.getLogger(__name__)

ALL_KINDS: tuple[str, ...] = tuple(kind.value for kind in EventKind)
_TENANT = re.compile(TENANT_ID_PATTERN)


class TopicAdminError(StreamsError, TransientError):
    """The broker could not be reached or refused a topic operation; the message says which."""


@dataclass(frozen=True, slots=True)
class TopicInfo:
    """A topic as the broker reports it."""

    name: str
    partitions: int


@contextmanager
def admin_client(settings: Settings, timeout_s: float) -> Iterator[KafkaAdminClient]:
    """kafka-python's admin client for the settings' broker and security, closed on exit.

    Raises:
        TopicAdminError: the broker could not be reached (the start hint named).
    """
    try:
        client = KafkaAdminClient(
            bootstrap_servers=settings.bootstrap_servers.split(","),
            client_id="maxlake-topic-admin",
            request_timeout_ms=int(timeout_s * 1000),
            bootstrap_timeout_ms=int(timeout_s * 1000),
            **settings.kafka_security(),
        )
    except KafkaError as exc:
        raise TopicAdminError(
            f"cannot reach the Kafka broker at {settings.bootstrap_servers} ({exc}); "
            f"{BROKER_START_HINT}"
        ) from exc
    try:
        yield client
    finally:
        client.close()


def probe_broker(settings: Settings, *, timeout_s: float = 10.0) -> None:
    """Return when the broker answers a metadata request within ``timeout_s`` seconds.

    Raises:
        TopicAdminError: it did not (its ``__cause__`` is the client's error).
    """
    with admin_client(settings, timeout_s) as admin:
        try:
            admin.describe_cluster()
        except KafkaError as exc:
            raise TopicAdminError(
                f"the Kafka broker at {settings.bootstrap_servers} did not answer ({exc}); "
                f"{BROKER_START_HINT}"
            ) from exc


def require_broker(settings: Settings, *, timeout_s: float = 10.0) -> None:
    """Fail fast, before a command's own clients wait out their 30 s timeouts.

    Raises:
        TopicAdminError: no answer within ``timeout_s`` seconds (the message names the servers,
            the setting, the time waited and how to start a broker).
    """
    try:
        probe_broker(settings, timeout_s=timeout_s)
    except TopicAdminError as exc:
        raise TopicAdminError(
            f"the Kafka broker at {settings.bootstrap_servers} (MAXLAKE_BOOTSTRAP_SERVERS) did "
            f"not answer within {timeout_s:g} s; {BROKER_START_HINT}"
        ) from exc


def ensure_topics(
    settings: Settings,
    tenants: Iterable[str],
    kinds: Iterable[str] = ALL_KINDS,
    *,
    timeout_s: float = 30.0,
) -> list[str]:
    """Create the missing topics of ``tenants`` x ``kinds``; return the names created.

    Idempotent: a second call creates nothing and returns ``[]``. A topic created concurrently
    by someone else counts as existing. New topics get ``settings.topic_partitions`` partitions,
    ``retention.ms`` from ``settings.topic_retention_hours`` and the broker's default replication.

    Raises:
        TopicAdminError: broker unreachable or a creation refused (the topic and reason named).
        ConfigError: a tenant id does not follow the tenant id grammar (docs/EVENT_SCHEMAS.md).
        UnknownKindError: (a ``ConfigError``) a kind no event schema knows, listing the valid ones.
    """
    kind_list = list(kinds)
    tenants = list(tenants)
    bad = [t for t in tenants if not _TENANT.fullmatch(t)]
    if bad:
        raise ConfigError(
            f"invalid tenant id {bad[0]!r}: tenant ids match {TENANT_ID_PATTERN} (no dots: the "
            "tenant is one segment of the topic name and of the ACL prefixes)"
        )
    unknown = sorted(set(kind_list) - set(ALL_KINDS))
    if unknown:
        raise UnknownKindError(unknown[0], list(ALL_KINDS))
    wanted = [settings.topic_for(tenant, kind) for tenant in tenants for kind in kind_list]
    retention_ms = str(settings.topic_retention_hours * 3600 * 1000)
    with admin_client(settings, timeout_s) as admin:
        try:
            existing = set(admin.list_topics())
            missing = [name for name in dict.fromkeys(wanted) if name not in existing]
            if not missing:
                return []
            result = admin.create_topics(
                {
                    name: {
                        "num_partitions": settings.topic_partitions,
                        "configs": {"retention.ms": retention_ms},
                    }
                    for name in missing
                },
                timeout_ms=int(timeout_s * 1000),
                raise_errors=False,
            )
        except KafkaError as exc:
            raise TopicAdminError(f"creating topics {missing} failed: {exc}") from exc
        created = []
        for topic in result["topics"]:
            code = topic.get("error_code", 0)
            if code == 0:
                created.append(topic["name"])
            elif code != TopicAlreadyExistsError.errno:
                message = topic.get("error_message") or f"error code {code}"
                raise TopicAdminError(f"creating topic {topic['name']!r} failed: {message}")
        try:
            admin.wait_for_topics(created, timeout_ms=int(timeout_s * 1000))
        except KafkaError as exc:
            raise TopicAdminError(f"topics {created} created but not ready: {exc}") from exc
    logger.info("created topics %s", created)
    return sorted(created)


def list_topics(
    settings: Settings, *, prefix: str | None = None, timeout_s: float = 30.0
) -> list[TopicInfo]:
    """The broker's topics whose name starts with ``prefix`` (default: ``<topic_prefix>.``)."""
    start = f"{settings.topic_prefix}." if prefix is None else prefix
    with admin_client(settings, timeout_s) as admin:
        try:
            described = admin.describe_topics()
        except KafkaError as exc:
            raise TopicAdminError(f"listing topics failed: {exc}") from exc
    return sorted(
        (
            TopicInfo(t["name"], len(t.get("partitions") or []))
            for t in described
            if t["name"].startswith(start)
        ),
        key=lambda info: info.name,
    )


def topic_ids(
    settings: Settings, topics: Iterable[str], *, timeout_s: float = 30.0
) -> dict[str, str]:
    """The Kafka topic id (a UUID, as text) of each existing topic of ``topics``.

    A topic deleted and created again under the same name has a new id: it is the topic's
    lineage (see lake/lineage.py). Topics that do not exist are left out.

    Raises:
        TopicAdminError: the broker could not be reached or did not answer.
    """
    wanted = list(dict.fromkeys(topics))
    if not wanted:
        return {}
    with admin_client(settings, timeout_s) as admin:
        try:
            described = admin.describe_topics(wanted)
        except KafkaError as exc:
            raise TopicAdminError(f"describing topics {wanted} failed: {exc}") from exc
    out: dict[str, str] = {}
    for topic in described:
        topic_id = str(topic.get("topic_id") or "")
        if topic.get("error_code", 0) == 0 and topic_id.strip("0-"):
            out[topic["name"]] = topic_id
    return out


def require_topic_ids(
    settings: Settings, topics: Iterable[str], *, timeout_s: float = 60.0, retry_s: float = 1.0
) -> dict[str, str]:
    """The topic id of every topic of ``topics``, asking again until each one is known.

    The lake keys offsets by topic id (lake/lineage.py): positioning or writing a partition
    without its topic's id would use the pre-lineage key, miss what the lake holds and write it
    again. A busy broker may answer without some topic (no leader yet, a timeout), so the
    question is repeated every ``retry_s`` seconds.

    Raises:
        TopicAdminError: some topic still has no id after ``timeout_s`` seconds (named), or the
            broker could not be reached for that long.
    """
    wanted = list(dict.fromkeys(topics))
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            found = topic_ids(settings, wanted)
        except TopicAdminError:
            if time.monotonic() >= deadline:
                raise
            found = {}
        missing = [topic for topic in wanted if topic not in found]
        if not missing:
            return found
        if time.monotonic() >= deadline:
            raise TopicAdminError(
                f"no topic id for {', '.join(missing)} after {timeout_s:.0f} s (the broker "
                "does not describe them); check that the topics exist (`maxlake topics list`)"
            )
        logger.info("topic id of %s not known yet; asking again", ", ".join(missing))
        time.sleep(retry_s)


def partition_bounds(
    settings: Settings, topic: str, partition: int, *, timeout_s: float = 30.0
) -> tuple[int, int]:
    """``topic[partition]``'s log start offset (the first still held) and its end offset (the
    next to be written), as its leader reports them.

    Raises:
        TopicAdminError: the broker could not be reached, or does not know the partition.
    """
    tp = TopicPartition(topic, partition)
    with admin_client(settings, timeout_s) as admin:
        try:
            start = admin.list_partition_offsets({tp: OffsetSpec.EARLIEST})[tp].offset
            end = admin.list_partition_offsets({tp: OffsetSpec.LATEST})[tp].offset
        except KafkaError as exc:
            raise TopicAdminError(
                f"reading the offsets of {topic}[{partition}] failed: {exc} (check the topic "
                "and partition with `maxlake topics list`)"
            ) from exc
    return int(start), int(end)


def delete_records(
    settings: Settings, topic: str, partition: int, before: int, *, timeout_s: float = 30.0
) -> int:
    """Delete ``topic[partition]``'s records below offset ``before`` (Kafka's DeleteRecords:
    the partition's log start moves to ``before``; what was below it is gone for every
    reader). Returns the partition's log start offset after the deletion.

    Raises:
        TopicAdminError: the broker could not be reached or refused (the reason named; an
            offset past the partition's end is refused by the broker).
    """
    tp = TopicPartition(topic, partition)
    with admin_client(settings, timeout_s) as admin:
        try:
            result = admin.delete_records({tp: before}, timeout_ms=int(timeout_s * 1000))
        except KafkaError as exc:
            raise TopicAdminError(
                f"deleting the records of {topic}[{partition}] below offset {before} failed: {exc}"
                " (a timed-out request may still have been applied: run the command again "
                "without --yes to see the partition's first offset now)"
            ) from exc
    low = result.get(tp, {}).get("low_watermark")
    return before if low is None else int(low)
