"""Errors of :class:`~streams.producer.PlantProducer` (re-exported by ``streams.producer``)."""

from __future__ import annotations

from maxlake.errors import TerminalError, TransientError
from streams.errors import StreamsError

__all__ = [
    "DeliveryError",
    "DeliveryRejectedError",
    "EventSerializationError",
    "EventTooLargeError",
    "UnknownTopicError",
]


class _DeliveryFailure(StreamsError):
    """Events of one topic that did not reach the broker, with the reason and how many."""

    verb = "not delivered"

    def __init__(self, topic: str, reason: str, count: int = 1) -> None:
        self.topic = topic
        self.reason = reason
        self.count = count
        super().__init__(f"{count} event(s) to topic {topic!r} {self.verb}: {reason}")


class DeliveryError(_DeliveryFailure, TransientError):
    """Events could not be delivered and there is no spool to keep them (or the spool failed)."""


class DeliveryRejectedError(_DeliveryFailure, TerminalError):
    """The broker refused events for good (authorization, record too large for the topic, ...)."""

    verb = "rejected by the broker"


class EventSerializationError(StreamsError, TerminalError):
    """An event is not JSON-serializable or lacks what the producer needs to route it."""


class EventTooLargeError(StreamsError, TerminalError):
    """An event is larger than the producer's ``max_request_size``."""


class UnknownTopicError(StreamsError, TerminalError):
    """The broker answers but has no such topic (maxlake brokers do not auto-create topics)."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        super().__init__(
            f"topic {topic!r} does not exist; create it first (`maxlake topics create`)"
        )
