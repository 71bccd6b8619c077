"""WriteBlock: a refused write pauses, retries the same batch with backoff, resumes, and shows
its state in metrics and in a state file; abandoning gives up at once."""

from __future__ import annotations

import asyncio
import errno
import logging
from pathlib import Path

import pytest

from streams.metrics import WorkerMetrics
from streams.write_block import WriteAbandoned, WriteBlock, read_worker_states


class _Lake:
    """Refuses ``failures`` writes with ``code``, then accepts."""

    def __init__(self, failures: int, code: int = errno.ENOSPC) -> None:
        self.failures, self.code, self.calls = failures, code, 0

    async def write(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise OSError(self.code, "refused")
        return "written"


def _value(metrics: WorkerMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_a_refused_write_is_retried_until_the_lake_takes_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = WorkerMetrics(process_collectors=False)
    block = WriteBlock("w-1", tmp_path, metrics=metrics, initial_s=0.01, max_s=0.04)
    lake = _Lake(failures=4)
    paused: list[int] = []
    resumed: list[bool] = []
    states: list[list[dict[str, object]]] = []

    def pause() -> int:
        paused.append(1)
        states.append(read_worker_states(tmp_path))
        return 8

    with caplog.at_level(logging.DEBUG, logger="streams.write_block"):
        result = asyncio.run(
            block.retry(lake.write, pause=pause, resume=lambda: resumed.append(True))
        )

    assert result == "written"
    assert lake.calls == 5
    assert len(paused) == 4
    assert resumed == [True]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    line = errors[0].getMessage()
    assert "\n" not in line
    assert errors[0].exc_info is None
    assert "disk full" in line
    assert "os error 28" in line
    assert "8 partition(s) paused" in line
    assert "free space" in line
    assert any("writable again" in r.getMessage() for r in caplog.records)
    assert _value(metrics, "maxlake_lake_write_retries_total", cause="disk_full") == 4
    assert _value(metrics, "maxlake_lake_write_blocked", cause="disk_full") == 0
    assert states[0] == []  # the first failure is recorded after pause() ...
    assert states[1][0]["blocked"] is True
    assert states[1][0]["cause"] == "disk_full"
    assert read_worker_states(tmp_path)[0]["blocked"] is False  # ... and the recovery too
    block.close()
    assert read_worker_states(tmp_path) == []


def test_the_gauge_shows_the_cause_while_blocked(tmp_path: Path) -> None:
    metrics = WorkerMetrics(process_collectors=False)
    block = WriteBlock("w-2", tmp_path, metrics=metrics, initial_s=0.01, max_s=0.01)
    seen: list[float | None] = []

    def pause() -> int:
        seen.append(_value(metrics, "maxlake_lake_write_blocked", cause="read_only"))
        return 1

    asyncio.run(block.retry(_Lake(2, errno.EROFS).write, pause=pause, resume=lambda: None))
    assert seen == [0, 1]  # set by the first failure, seen by the second pause


def test_abandon_gives_up_a_blocked_batch_at_once(tmp_path: Path) -> None:
    block = WriteBlock("w-3", tmp_path, initial_s=60, max_s=60)

    async def scenario() -> None:
        task = asyncio.create_task(
            block.retry(_Lake(10**6).write, pause=lambda: 1, resume=lambda: None)
        )
        await asyncio.sleep(0.05)
        assert block.blocked
        assert not task.done()
        block.abandon()
        with pytest.raises(WriteAbandoned):
            async with asyncio.timeout(5):
                await task

    asyncio.run(scenario())


def test_other_failures_are_raised_unchanged(tmp_path: Path) -> None:
    block = WriteBlock("w-4", tmp_path, initial_s=0.01)

    async def broken() -> None:
        raise ValueError("a bug, not a full disk")

    with pytest.raises(ValueError, match="a bug"):
        asyncio.run(block.retry(broken, pause=lambda: 0, resume=lambda: None))
    assert not block.blocked
