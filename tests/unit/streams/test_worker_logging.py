"""The worker's log filter: maxlake's own INFO lines, libraries only from WARNING up."""

from __future__ import annotations

import logging

import pytest

from lake.sink import WriteResult
from schemas import EventKind
from streams.ingest import log_batch
from streams.tally import WorkerTally
from streams.worker import RepeatLimit, only_our_info


def _record(name: str, level: int, message: str) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, None, None)


@pytest.mark.parametrize(
    ("name", "level", "message", "kept"),
    [
        ("streams.ingest", logging.INFO, "telemetry: 5,000 consumed", True),
        ("lake.writer", logging.INFO, "committed", True),
        ("faust.transport.consumer", logging.INFO, "[^--Consumer]: Starting...", False),
        ("mode.timers", logging.INFO, "Timer commit woke up too late", False),
        ("aiokafka.consumer.group_coordinator", logging.INFO, "Joined group", False),
        ("aiokafka.consumer.group_coordinator", logging.WARNING, "coordinator dead", True),
        ("kafka.net.selector", logging.WARNING, "blocking the event loop", False),
        ("kafka.net.selector", logging.ERROR, "selector failed", True),
        ("faust.worker", logging.INFO, "[^Worker]: Ready", True),
        ("streams.faust_app", logging.INFO, "[^-ReadCommittedApp]: Starting...", False),
        ("streams.faust_app", logging.INFO, "[^--_Producer]: Creating topic 'x'", False),
        ("streams.faust_app", logging.WARNING, "[^--_Consumer]: slow commit", True),
        (
            "aiokafka.consumer.group_coordinator",
            logging.ERROR,
            "Group Coordinator Request failed: [Error 15] GroupCoordinatorNotAvailableError",
            False,
        ),
        (
            "aiokafka.consumer.group_coordinator",
            logging.ERROR,
            "Group Coordinator Request failed: [Error 31] ClusterAuthorizationFailedError",
            True,
        ),
        ("aiokafka.conn", logging.ERROR, "Unable connect to broker", True),
    ],
)
def test_only_our_info_passes(name: str, level: int, message: str, kept: bool) -> None:
    assert only_our_info(_record(name, level, message)) is kept


def test_the_batch_line_groups_thousands(caplog: pytest.LogCaptureFixture) -> None:
    result = WriteResult(
        consumed=50_000,
        silver_events=48_000,
        silver_rows=217_000,
        quarantined=1_083,
        duplicates=917,
        skipped=12_345,
        write_ms=1_234.5,
    )
    with caplog.at_level(logging.INFO, logger="streams.ingest"):
        log_batch(EventKind.TELEMETRY, result)
    assert caplog.messages == [
        "telemetry batch: 50,000 events consumed: 48,000 to silver (217,000 readings), "
        "1,083 quarantined, 917 duplicates, 12,345 already in lake; write 1,234 ms"
    ]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="streams.ingest"):
        log_batch(EventKind.MACHINE_EVENT, WriteResult(10, 9, 9, 1, 0, 0, 5.0))
    assert caplog.messages == [
        "machine_event batch: 10 events consumed: 9 to silver, 1 quarantined, 0 duplicates, "
        "0 already in lake; write 5 ms"
    ]


def test_the_stop_line_says_what_the_worker_committed() -> None:
    tally = WorkerTally()
    assert tally.stopped_line("SIGTERM", clean=True) == (
        "stopped cleanly on SIGTERM: 0 batches written and committed since start (nothing to "
        "ingest); the next start resumes after them"
    )
    for kind, consumed in ((EventKind.TELEMETRY, 30_000), (EventKind.TELEMETRY, 6_336)):
        tally.add(kind, WriteResult(consumed, consumed, consumed * 4, 0, 0, 0, 1.0))
    tally.add(EventKind.MACHINE_EVENT, WriteResult(151, 151, 151, 0, 0, 0, 1.0))
    assert tally.stopped_line("SIGINT", clean=True) == (
        "stopped cleanly on SIGINT: 3 batches written and committed since start "
        "(machine_event 151 events, telemetry 36,336 events); the next start resumes after them"
    )
    assert tally.stopped_line("SIGTERM", clean=False).startswith(
        "stopped on SIGTERM with an error: 3 batches"
    )


def test_a_library_line_repeated_by_every_retry_passes_once_per_window() -> None:
    now = [0.0]
    limit = RepeatLimit(every_s=30.0, clock=lambda: now[0])
    connect = "Unable connect to node with id %s: %s"

    def passed(name: str, msg: str, *args: object) -> list[str]:
        record = logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args, None)
        return [record.getMessage()] if limit(record) else []

    lines: list[str] = []
    for second in range(60):  # the broker is down: 150 lines a second from aiokafka
        now[0] = float(second)
        for _ in range(150):
            lines += passed("aiokafka", connect, 1, "Connect call failed")
            lines += passed("aiokafka.cluster", "Unable to update metadata from %s", [1])
        lines += passed("streams.broker_wait", "broker not reachable, attempt %d", second)
    ours = [line for line in lines if line.startswith("broker not reachable")]
    assert len(ours) == 60, "maxlake's own lines are never limited"
    theirs = [line for line in lines if not line.startswith("broker not reachable")]
    assert theirs == [
        "Unable connect to node with id 1: Connect call failed",
        "Unable to update metadata from [1]",
        "Unable connect to node with id 1: Connect call failed (and 4,499 more like it in 30 s)",
        "Unable to update metadata from [1] (and 4,499 more like it in 30 s)",
    ]
