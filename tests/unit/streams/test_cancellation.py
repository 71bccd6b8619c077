"""A worker told to stop (SIGTERM cancels the engine's task) stops, even when the cancellation
arrives in the same loop turn as the answer the engine was waiting for.

On Python 3.11 ``asyncio.wait_for`` returns the result then and drops the cancellation (CPython
gh-86296): the engine went on fetching forever and a clean-clone CI run hung 25 min in
``test_an_empty_topic_created_again_under_the_worker_loses_nothing``. Each case below resolves
what the engine awaits and cancels its task at once; ruff bans ``asyncio.wait_for``
(pyproject, TID251) so that no new call site comes back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition

from maxlake.settings import Settings
from schemas import EventKind
from streams.batch_engine import BatchEngine
from streams.write_block import WriteBlock

TP = TopicPartition("t", 0)


def _engine(tmp_path: Path) -> BatchEngine:
    engine = BatchEngine(
        Settings(lake_root=str(tmp_path / "lake")),
        {"t": EventKind.TELEMETRY},
        lambda: None,  # type: ignore[arg-type,return-value]
        block=WriteBlock("w", tmp_path),
    )
    engine._ready.add(TP)
    engine._topic_ids["t"] = "old"
    return engine


def _cancelled_as_answered(
    call: Callable[[BatchEngine, Any], Coroutine[Any, Any, Any]], answer: Any, tmp_path: Path
) -> None:
    """Run ``call(engine, consumer)``; once it waits, resolve its answer and cancel it at once:
    it must end cancelled."""

    async def scenario() -> None:
        pending: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        consumer = SimpleNamespace(
            assignment=lambda: {TP},
            position=lambda tp: pending,
            _client=SimpleNamespace(
                get_random_node=lambda: 1,
                cluster=SimpleNamespace(leader_for_partition=lambda tp: 1),
                send=lambda node, request: pending,
            ),
        )
        task = asyncio.create_task(call(_engine(tmp_path), consumer))
        for _ in range(5):
            await asyncio.sleep(0)
        assert not task.done()
        pending.set_result(answer)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())


def test_a_stop_while_the_positions_are_read_is_not_lost(tmp_path: Path) -> None:
    _cancelled_as_answered(lambda e, c: e._advanced_positions(c), 7, tmp_path)


def test_a_stop_while_a_fetch_position_is_checked_is_not_lost(tmp_path: Path) -> None:
    _cancelled_as_answered(lambda e, c: e._fetching_at(c, TP, 7), 7, tmp_path)


def test_a_stop_while_the_topic_ids_are_asked_is_not_lost(tmp_path: Path) -> None:
    answer = SimpleNamespace(topics=[])
    _cancelled_as_answered(lambda e, c: e._ask_topic_ids(c, ["t"], [TP]), answer, tmp_path)
