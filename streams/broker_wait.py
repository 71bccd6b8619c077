"""Waiting for the Kafka broker: one log line per attempt, never a traceback.

A worker started while the broker is down (a host reboot, a broker restart, a supervisor that
starts everything at once) waits for it instead of crashing. Before the worker's Kafka clients
are built, :func:`wait_for_broker` asks the broker for its metadata until it answers; each failed
attempt is one WARNING line naming the bootstrap servers and the setting, with capped exponential
backoff (1 s, 2 s, 4 s, then every 8 s). ``MAXLAKE_BROKER_WAIT_S`` bounds that wait (0, the default,
waits for ever, as a supervised service should); when it runs out the worker raises
:class:`BrokerUnreachable` and the command line prints one ``maxlake: error:`` line.

The broker can also go away between that check and the moment the worker's own clients connect
(Faust's producer and consumer, the batch engine's consumer). :func:`start_until_reachable`
retries such a start the same way, without a bound: the broker answered moments ago, so this is
an outage, which a running worker rides out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError

from maxlake.errors import TransientError
from maxlake.settings import Settings
from streams.errors import StreamsError
from streams.topics import TopicAdminError, probe_broker

__all__ = ["BrokerUnreachable", "start_until_reachable", "wait_for_broker"]

logger = logging.getLogger(__name__)

_MAX_DELAY_S = 8.0
_PROBE_TIMEOUT_S = 5.0
_UNREACHABLE = (KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError, OSError)

T = TypeVar("T")


class BrokerUnreachable(StreamsError, TransientError):
    """The broker did not answer within ``MAXLAKE_BROKER_WAIT_S``; the message says what to do."""


def _delay(attempt: int) -> float:
    """Seconds before attempt ``attempt + 1``: 1, 2, 4, then 8."""
    return float(min(2 ** (attempt - 1), _MAX_DELAY_S))


def _line(servers: str, attempt: int, cause: str, delay_s: float, bound: str) -> str:
    return (
        f"broker not reachable at {servers} (MAXLAKE_BOOTSTRAP_SERVERS), attempt {attempt}: "
        f"{cause}; next attempt in {round(delay_s, 1):g} s ({bound})"
    )


def wait_for_broker(
    settings: Settings,
    *,
    sleep: Callable[[float], None] = time.sleep,
    probe_timeout_s: float = _PROBE_TIMEOUT_S,
) -> int:
    """Return once the broker answers a metadata request; returns the attempts it took.

    Each failed attempt logs one WARNING line (servers, setting, cause, next delay).

    Raises:
        BrokerUnreachable: no answer within ``settings.broker_wait_s`` seconds (when > 0).
        ConfigError: the security settings are invalid (see ``Settings.kafka_security``).
    """
    bound_s = settings.broker_wait_s
    bound = (
        f"waiting up to {bound_s:.0f} s, MAXLAKE_BROKER_WAIT_S"
        if bound_s > 0
        else "waiting until it answers; MAXLAKE_BROKER_WAIT_S bounds the wait"
    )
    started = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        waited = time.monotonic() - started
        timeout_s = probe_timeout_s
        if bound_s > 0:
            timeout_s = max(1.0, min(probe_timeout_s, bound_s - waited))
        try:
            probe_broker(settings, timeout_s=timeout_s)
        except TopicAdminError as exc:
            cause = str(exc.__cause__ or exc)
        else:
            if attempt > 1:
                logger.info("broker at %s answers", settings.bootstrap_servers)
            return attempt
        waited = time.monotonic() - started
        delay = _delay(attempt)
        if bound_s > 0:
            if waited >= bound_s:
                raise BrokerUnreachable(
                    f"the Kafka broker at {settings.bootstrap_servers} "
                    f"(MAXLAKE_BOOTSTRAP_SERVERS) did not answer in {waited:.0f} s "
                    f"({attempt} attempt{'s' if attempt > 1 else ''}, MAXLAKE_BROKER_WAIT_S="
                    f"{bound_s:g}): {cause}; start the broker (`maxlake broker start`) or point "
                    "MAXLAKE_BOOTSTRAP_SERVERS at a running one"
                )
            delay = min(delay, bound_s - waited)
        logger.warning(_line(settings.bootstrap_servers, attempt, cause, delay, bound))
        sleep(delay)


async def start_until_reachable(
    start: Callable[[], Awaitable[T]],
    servers: str,
    what: str,
    *,
    discard: Callable[[], Awaitable[None]] | None = None,
) -> T:
    """``await start()`` until it does not fail for want of a broker; returns its result.

    ``start`` builds and starts a fresh client each call; ``discard`` (if given) releases the
    failed one. Each failed attempt logs one WARNING line naming ``servers``, ``what`` was being
    started and the setting. Other errors propagate.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            return await start()
        except _UNREACHABLE as exc:
            cause = f"{what}: {type(exc).__name__}: {exc}"
        if discard is not None:
            try:
                await discard()
            except Exception as exc:  # the failed client's state is unknown; it is dropped
                logger.debug("discarding the failed %s: %s", what, exc)
        delay = _delay(attempt)
        logger.warning(
            _line(servers, attempt, cause, delay, "a running worker waits until it answers")
        )
        await asyncio.sleep(delay)
