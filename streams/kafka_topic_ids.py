"""Topic ids over a running aiokafka client: Metadata requests (v10) on its connections.

aiokafka asks for metadata up to v5, which carries no topic id; a topic deleted and created
again under the same name is the same topic to it. The batch engine asks for the ids before
each batch is handed over (:mod:`streams.batch_lineage`); a new admin client per question
(:func:`streams.topics.topic_ids`) would cost a connection, its handshake and authentication
each time. Metadata v10 (Kafka 2.8+) is the first version whose response has topic ids.

Every question the batch engine asks about topic ids goes through here: the check before each
batch, positioning a partition from the lake and the out-of-range path. All of them ask the
leaders of the partitions concerned, never a random broker (one that has not applied a topic's
recreation yet still answers the old id).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Iterable, Mapping
from io import BytesIO
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError, UnsupportedVersionError
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    AbstractType,
    Boolean,
    CompactArray,
    CompactString,
    Int16,
    Int32,
    Schema,
    TaggedFields,
)

from maxlake.errors import TerminalError
from streams.errors import StreamsError
from streams.topics import TopicAdminError

__all__ = ["UnsupportedBrokerError", "current_topic_ids", "require_current_topic_ids"]

logger = logging.getLogger(__name__)

_NO_ID = uuid.UUID(int=0)
_UNKNOWN_TOPIC_OR_PARTITION = 3


class UnsupportedBrokerError(StreamsError, TerminalError):
    """The broker cannot tell topic ids (older than Kafka 2.8)."""


class _Uuid(AbstractType):  # type: ignore[misc]
    """Kafka's ``uuid`` field: 16 bytes."""

    @classmethod
    def encode(cls, value: uuid.UUID) -> bytes:
        return value.bytes

    @classmethod
    def decode(cls, data: BytesIO) -> uuid.UUID:
        raw = data.read(16)
        if len(raw) != 16:
            raise ValueError("Buffer underrun decoding a uuid")
        return uuid.UUID(bytes=raw)


class _MetadataResponse_v10(Response):  # type: ignore[misc]
    API_KEY = 3
    API_VERSION = 10
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "brokers",
            CompactArray(
                ("node_id", Int32),
                ("host", CompactString("utf-8")),
                ("port", Int32),
                ("rack", CompactString("utf-8")),
                ("tags", TaggedFields),
            ),
        ),
        ("cluster_id", CompactString("utf-8")),
        ("controller_id", Int32),
        (
            "topics",
            CompactArray(
                ("error_code", Int16),
                ("name", CompactString("utf-8")),
                ("topic_id", _Uuid),
                ("is_internal", Boolean),
                (
                    "partitions",
                    CompactArray(
                        ("error_code", Int16),
                        ("partition_index", Int32),
                        ("leader_id", Int32),
                        ("leader_epoch", Int32),
                        ("replica_nodes", CompactArray(Int32)),
                        ("isr_nodes", CompactArray(Int32)),
                        ("offline_replicas", CompactArray(Int32)),
                        ("tags", TaggedFields),
                    ),
                ),
                ("topic_authorized_operations", Int32),
                ("tags", TaggedFields),
            ),
        ),
        ("cluster_authorized_operations", Int32),
        ("tags", TaggedFields),
    )


class _MetadataRequest_v10(RequestStruct):  # type: ignore[misc]
    FLEXIBLE_VERSION = True
    API_KEY = 3
    API_VERSION = 10
    RESPONSE_TYPE = _MetadataResponse_v10
    SCHEMA = Schema(
        (
            "topics",
            CompactArray(
                ("topic_id", _Uuid),
                ("name", CompactString("utf-8")),
                ("tags", TaggedFields),
            ),
        ),
        ("allow_auto_topic_creation", Boolean),
        ("include_cluster_authorized_operations", Boolean),
        ("include_topic_authorized_operations", Boolean),
        ("tags", TaggedFields),
    )


class _TopicIdsRequest(Request[_MetadataRequest_v10]):  # type: ignore[misc]
    API_KEY = 3

    def __init__(self, topics: list[str]) -> None:
        self.topics = topics

    def build(self, request_struct_class: type[_MetadataRequest_v10]) -> _MetadataRequest_v10:
        return request_struct_class(
            [(_NO_ID, topic, {}) for topic in self.topics], False, False, False, {}
        )


async def current_topic_ids(
    client: Any,
    topics: list[str],
    *,
    leaders_of: Iterable[tuple[str, int]] = (),
    held: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The topic id of each of ``topics`` that exists now (topic -> id, the text form
    :func:`streams.topics.topic_ids` gives); topics no broker asked describes are left out.

    Brokers apply metadata changes one after another, so one may still describe a recreated
    topic under its old id while the leader the client fetches from already serves the new
    incarnation. The brokers asked are therefore the client's leaders of ``leaders_of``
    (topic, partition pairs: the partitions whose records are checked or positioned), one
    request each, at once; a random broker when none is known. A leader serving a partition's
    new incarnation has applied its creation, so it answers the new id. When the brokers asked
    answer one topic with different ids, the id not in ``held`` (topic -> the id the caller
    holds) wins: a topic id is never reused, so any other id means the topic was created
    again. When more than one of the ids is not held (the caller holds none, or the topic was
    created again twice), which is the newest is not known: that is an error, asked again.

    Args:
        client: the running consumer's ``AIOKafkaClient`` (``consumer._client``).
        topics: topic names.
        leaders_of: (topic, partition) pairs whose leaders are asked.
        held: topic -> the id the caller holds (None: none held).

    Raises:
        KafkaError: no broker is known, a request failed (the client's errors: timeout,
            connection), a broker answered a topic with an error other than "unknown
            topic" (not authorised, no leader yet: the topic's id is not known, so it is not
            taken for the old one), or the brokers answered one topic with more than one id
            not in ``held``.
        UnsupportedBrokerError: a broker is older than Kafka 2.8 (no Metadata v10).
        ValueError: a response could not be read.
    """
    nodes = _leaders(client, leaders_of)
    if not nodes:
        node = client.get_random_node()
        if node is None:
            raise KafkaError("no broker known to ask for topic ids")
        nodes = [node]
    answers = await asyncio.gather(*(_ask(client, node, topics) for node in nodes))
    held = held or {}
    seen: dict[str, set[str]] = {}
    for answer in answers:
        for name, topic_id in answer.items():
            seen.setdefault(name, set()).add(topic_id)
    out: dict[str, str] = {}
    for name, ids in seen.items():
        new = sorted(ids - {held.get(name)})
        if len(new) > 1:
            raise KafkaError(
                f"the brokers answer topic {name!r} with different ids ({', '.join(new)}): "
                "a recreation not yet applied by every broker"
            )
        out[name] = new[0] if new else next(iter(ids))
    return out


async def require_current_topic_ids(
    client: Any,
    topics: list[str],
    *,
    leaders_of: Iterable[tuple[str, int]] = (),
    held: Mapping[str, str] | None = None,
    ask_timeout_s: float = 30.0,
    timeout_s: float = 60.0,
    retry_s: float = 1.0,
) -> dict[str, str]:
    """:func:`current_topic_ids` of every topic of ``topics``, asking again (every ``retry_s``
    seconds) until each one is known: a busy broker may answer without some topic (no leader
    yet, a timeout), or brokers may disagree while they apply a recreation.

    Args:
        client: the running consumer's ``AIOKafkaClient``.
        topics: topic names.
        leaders_of: (topic, partition) pairs whose leaders are asked.
        held: topic -> the id the caller holds.
        ask_timeout_s: the longest one question may take.
        timeout_s: the longest all questions may take.
        retry_s: seconds between two questions.

    Raises:
        TopicAdminError: some topic still has no id after ``timeout_s`` seconds (named), or no
            broker answered for that long (the last error named).
        UnsupportedBrokerError: a broker is older than Kafka 2.8.
    """
    wanted = list(dict.fromkeys(topics))
    pairs = list(leaders_of)
    deadline = time.monotonic() + timeout_s
    while True:
        failure: BaseException | None = None
        found: dict[str, str] = {}
        try:
            async with asyncio.timeout(ask_timeout_s):
                found = await current_topic_ids(client, wanted, leaders_of=pairs, held=held)
        except (TimeoutError, KafkaError, ValueError) as exc:
            failure = exc
        missing = [topic for topic in wanted if topic not in found]
        if not missing:
            return found
        if time.monotonic() >= deadline:
            if failure is not None:
                raise TopicAdminError(
                    f"no topic id for {', '.join(missing)} after {timeout_s:.0f} s: "
                    f"{type(failure).__name__}: {failure}"
                ) from failure
            raise TopicAdminError(
                f"no topic id for {', '.join(missing)} after {timeout_s:.0f} s (the broker "
                "does not describe them); check that the topics exist (`maxlake topics list`)"
            )
        logger.info("topic id of %s not known yet; asking again", ", ".join(missing))
        await asyncio.sleep(retry_s)


def _leaders(client: Any, partitions: Iterable[tuple[str, int]]) -> list[int]:
    """The node ids the client knows as leaders of ``partitions`` (unknown ones left out)."""
    nodes: set[int] = set()
    for topic, partition in partitions:
        leader = client.cluster.leader_for_partition(TopicPartition(topic, partition))
        if leader is not None and leader >= 0:
            nodes.add(int(leader))
    return sorted(nodes)


async def _ask(client: Any, node: int, topics: list[str]) -> dict[str, str]:
    """One broker's answer: the ids of those of ``topics`` it describes."""
    try:
        response = await client.send(node, _TopicIdsRequest(topics))
    except (NotImplementedError, UnsupportedVersionError) as exc:
        raise UnsupportedBrokerError(
            "the broker does not answer Metadata v10: Kafka 2.8 or later is needed to check "
            "topic ids"
        ) from exc
    out: dict[str, str] = {}
    for error, name, topic_id, *_ in response.topics:
        if error == _UNKNOWN_TOPIC_OR_PARTITION:
            continue
        if error:
            raise KafkaError(f"the broker answered topic {name!r} with error code {error}")
        if name and topic_id != _NO_ID:
            out[name] = str(topic_id)
    return out
