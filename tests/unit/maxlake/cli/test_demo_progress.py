"""The demo's plant progress in a log (not a terminal): the final count is printed, with commas."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import pytest

from maxlake.cli import demo_run
from maxlake.settings import Settings
from streams.simulator import SimStats


def test_a_log_gets_the_final_sent_count(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fake_run(settings: Settings, *, progress: Callable[[SimStats], None], **_: Any) -> SimStats:
        stats = SimStats(events=1_000, bad=10, elapsed_s=1.0)
        progress(stats)
        stats = SimStats(events=116_298, bad=1_161, elapsed_s=58.0)
        progress(stats)
        return stats

    monkeypatch.setattr(demo_run, "run_simulation", fake_run)
    args = argparse.Namespace(seconds=60.0, rate=2000.0, bad_rate=0.01, seed=1)
    stats = demo_run._stream(args, Settings())
    lines = capsys.readouterr().out.splitlines()
    assert stats.events == 116_298
    assert lines[-1] == "    116,298 events sent (2,005/s), 1,161 bad"


def test_the_demo_ends_with_what_to_run_next() -> None:
    settings = Settings(server_host="127.0.0.1", server_port=8470)
    stopped = "\n".join(demo_run.look_around(".venv/bin/maxlake", settings, broker_stopped=True))
    assert ".venv/bin/maxlake status --no-kafka " in stopped
    assert ".venv/bin/maxlake quarantine show" in stopped
    assert "--kind data_engineer" in stopped
    assert "http://127.0.0.1:8470/status#token=" in stopped
    running = "\n".join(demo_run.look_around("maxlake", settings, broker_stopped=False))
    assert "--no-kafka" not in running
