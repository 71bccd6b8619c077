"""Kafka consumer groups as operators see them: which exist, whether workers are in them,
what they committed on the lake's topics; deleting a stale one.

A lake's positions come from the lake, not from the group (docs/RELIABILITY.md), so a group
left behind by a renamed ``MAXLAKE_GROUP_ID`` holds nothing the lake needs; but ``maxlake
status`` run with the old name still reports it. These functions are what ``maxlake groups``
calls.
"""

from __future__ import annotations

from dataclasses import dataclass

from kafka import KafkaAdminClient
from kafka.admin import OffsetSpec
from kafka.errors import KafkaError

from maxlake.errors import ConfigError, did_you_mean
from maxlake.settings import Settings
from streams.topics import TopicAdminError, admin_client

__all__ = [
    "GroupInfo",
    "companion_group",
    "consumer_groups",
    "delete_group",
    "delete_leader_topic",
    "describe_group",
    "group_ids",
    "leader_topic",
]


def companion_group(group_id: str) -> str:
    """The Faust app's own group of a batch-engine worker group (``<group>-app``): it holds no
    offsets of the lake's topics, only the app's leader topic's."""
    return f"{group_id}-app"


def leader_topic(group_id: str) -> str:
    """The Faust app's leader topic of a batch-engine worker group (no data)."""
    return f"{companion_group(group_id)}-__assignor-__leader"


@dataclass(frozen=True, slots=True)
class GroupInfo:
    """One consumer group as the broker reports it.

    Attributes:
        group_id: the group's name.
        state: Kafka's group state (``Stable``, ``Empty``, ``PreparingRebalance``, ...).
        members: consumers in the group now (workers that run).
        lake_partitions: partitions of topics named ``<topic_prefix>.*`` it has a committed
            offset for.
        lag: messages (records and transaction markers) between its committed offsets and the
            ends of those partitions; None when it committed none of them. A stale group's lag
            grows while the lake's own group keeps up.
    """

    group_id: str
    state: str
    members: int
    lake_partitions: int
    lag: int | None


def consumer_groups(settings: Settings, *, timeout_s: float = 30.0) -> list[GroupInfo]:
    """Every consumer group the brokers know, by name.

    Raises:
        TopicAdminError: the broker could not be reached or refused (the reason named).
    """
    with admin_client(settings, timeout_s) as admin:
        return [_describe(admin, settings, name) for name in _group_names(admin)]


def describe_group(settings: Settings, group_id: str, *, timeout_s: float = 30.0) -> GroupInfo:
    """One group; raises when the broker does not know it.

    Raises:
        ConfigError: no such group (``maxlake groups list`` named).
        TopicAdminError: the broker could not be reached or refused.
    """
    with admin_client(settings, timeout_s) as admin:
        return _describe(admin, settings, group_id)


def group_ids(settings: Settings, *, timeout_s: float = 30.0) -> list[str]:
    """The consumer groups the brokers know (that committed or have members), sorted.

    Raises:
        TopicAdminError: the broker could not be reached or refused.
    """
    with admin_client(settings, timeout_s) as admin:
        return _group_names(admin)


def delete_leader_topic(settings: Settings, group_id: str, *, timeout_s: float = 30.0) -> bool:
    """Delete :func:`leader_topic` of ``group_id``; False when it does not exist.

    Raises:
        TopicAdminError: the broker could not be reached or refused.
    """
    topic = leader_topic(group_id)
    with admin_client(settings, timeout_s) as admin:
        try:
            if topic not in set(admin.list_topics()):
                return False
            admin.delete_topics([topic], timeout_ms=int(timeout_s * 1000))
        except KafkaError as exc:
            raise TopicAdminError(f"deleting topic {topic!r} failed: {exc}") from exc
    return True


def delete_group(settings: Settings, group_id: str, *, timeout_s: float = 30.0) -> None:
    """Delete ``group_id`` and its committed offsets (Kafka's DeleteGroups).

    Kafka refuses a group that has members; so does this, with the workers to stop named.

    Raises:
        ConfigError: no such group, or it has members now.
        TopicAdminError: the broker could not be reached or refused for another reason.
    """
    with admin_client(settings, timeout_s) as admin:
        try:
            outcome = admin.delete_groups([group_id]).get(group_id)
        except KafkaError as exc:
            raise TopicAdminError(f"deleting consumer group {group_id!r} failed: {exc}") from exc
        if outcome == "GroupIdNotFoundError":
            raise _unknown(admin, group_id)
    if outcome in (None, "OK"):
        return
    if outcome == "NonEmptyGroupError":
        raise ConfigError(
            f"consumer group {group_id!r} has live members: stop its workers first (`maxlake "
            "groups list` shows the members); nothing deleted"
        )
    raise TopicAdminError(f"the broker refused to delete consumer group {group_id!r}: {outcome}")


def _describe(admin: KafkaAdminClient, settings: Settings, group_id: str) -> GroupInfo:
    prefix = f"{settings.topic_prefix}."
    try:
        described = admin.describe_groups([group_id]).get(group_id) or {}
        if described.get("error") and "GroupIdNotFound" in str(described["error"]):
            raise _unknown(admin, group_id)
        offsets = admin.list_group_offsets({group_id: None}).get(group_id, {})
        lake = {tp: meta.offset for tp, meta in offsets.items() if tp.topic.startswith(prefix)}
        ends = admin.list_partition_offsets(dict.fromkeys(lake, OffsetSpec.LATEST)) if lake else {}
    except KafkaError as exc:
        raise TopicAdminError(f"describing consumer group {group_id!r} failed: {exc}") from exc
    members = described.get("members") or 0
    return GroupInfo(
        group_id=group_id,
        state=str(described.get("group_state") or "Unknown"),
        members=members if isinstance(members, int) else len(members),
        lake_partitions=len(lake),
        lag=sum(max(0, ends[tp].offset - offset) for tp, offset in lake.items() if tp in ends)
        if lake
        else None,
    )


def _group_names(admin: KafkaAdminClient) -> list[str]:
    """The names of the groups ``admin``'s brokers know, sorted.

    Raises:
        TopicAdminError: the broker could not be reached or refused (the reason named).
    """
    try:
        return sorted({g["group_id"] for g in admin.list_groups()})
    except KafkaError as exc:
        raise TopicAdminError(f"listing consumer groups failed: {exc}") from exc


def _unknown(admin: KafkaAdminClient, group_id: str) -> ConfigError:
    """The error for a group the broker does not know, with the closest one it knows."""
    try:
        known = _group_names(admin)
    except TopicAdminError:
        known = []
    return ConfigError(
        f"no consumer group {group_id!r} on the broker{did_you_mean(group_id, known)} "
        "(`maxlake groups list` shows them); nothing deleted"
    )
