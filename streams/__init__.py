"""Moving events: the plant producer, the simulator, topic set-up and the ingest workers.

Plant integrators use :class:`PlantProducer` (one per plant; a local spool keeps events while
the broker is away) and its errors; :func:`ensure_topics` creates a tenant's topics. The
workers (:mod:`streams.worker`, :mod:`streams.batch_engine`) are started by ``maxlake ingest``.
"""

from streams.errors import StreamsError
from streams.producer import (
    DeliveryError,
    DeliveryRejectedError,
    EventSerializationError,
    EventTooLargeError,
    PlantProducer,
    UnknownTopicError,
)
from streams.simulator import SimStats, Simulator, run_simulation
from streams.topics import ALL_KINDS, TopicAdminError, ensure_topics, list_topics

__all__ = [
    "ALL_KINDS",
    "DeliveryError",
    "DeliveryRejectedError",
    "EventSerializationError",
    "EventTooLargeError",
    "PlantProducer",
    "SimStats",
    "Simulator",
    "StreamsError",
    "TopicAdminError",
    "UnknownTopicError",
    "ensure_topics",
    "list_topics",
    "run_simulation",
]
