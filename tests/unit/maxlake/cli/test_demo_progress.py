"""The demo's plant progress in a log (not a terminal): the final count is printed, with commas."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest

from maxlake import native_parser
from maxlake.cli import datasets_run, demo_run
from maxlake.cli.streams_cmd import _progress_line
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
    stats = demo_run._stream(args, Settings(), None)
    lines = capsys.readouterr().out.splitlines()
    assert stats.events == 116_298
    assert lines[-1] == "    116,298 events sent (2,005/s), 1,161 bad"


def test_the_demo_ends_with_what_to_run_next() -> None:
    settings = Settings(server_host="127.0.0.1", server_port=8470)
    stopped = "\n".join(demo_run.look_around(".venv/bin/maxlake", settings, broker_stopped=True))
    assert ".venv/bin/maxlake status --no-kafka " in stopped
    assert ".venv/bin/maxlake quarantine show" in stopped
    assert "--kind data_engineer" in stopped
    assert "http://127.0.0.1:8470/status?kafka=0#token=" in stopped, "no 10 s broker waits"
    running = "\n".join(demo_run.look_around("maxlake", settings, broker_stopped=False))
    assert "--no-kafka" not in running
    assert "http://127.0.0.1:8470/status#token=" in running


def test_the_demo_says_its_worker_used_the_default_consumer_group() -> None:
    """A new user's first `maxlake status` after the demo raised shared_consumer_group with
    nothing in the getting-started path naming MAXLAKE_GROUP_ID."""
    default = "\n".join(demo_run.look_around("maxlake", Settings(), broker_stopped=False))
    assert "the worker used the default consumer group maxlake-ingest" in default
    assert "export MAXLAKE_GROUP_ID=<lake>-ingest" in default
    own = demo_run.look_around("maxlake", Settings(group_id="plant-a"), broker_stopped=False)
    assert "MAXLAKE_GROUP_ID" not in "\n".join(own)


def test_a_log_gets_no_repeated_catch_up_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lags = iter([116_298] * 25 + [60_000] * 11 + [0])
    clock = iter(range(10_000))

    class Lag:
        def __init__(self, lag: int) -> None:
            self.lag = lag

    class Running:
        returncode = None

        def poll(self) -> None:
            return None

    monkeypatch.setattr(demo_run, "group_offsets", lambda *_: [Lag(next(lags))])
    worker: Any = Running()
    waited = demo_run._wait_for_lag_zero(
        Settings(), worker, timeout_s=1_000, clock=lambda: float(next(clock)), sleep=lambda _: None
    )
    assert waited == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "    lag 116,298 messages (measuring the drain rate)"
    assert len(lines) == len(set(lines)), lines
    assert any("lag 60,000 messages, draining" in line for line in lines)


def test_the_simulate_progress_line_counts_in_words_and_separators() -> None:
    one = SimStats(events=1, bad=0, elapsed_s=1.0, producer={"sent": 1})
    assert _progress_line(one).startswith("1 event (1/s), bad 0, sent 1,")
    many = SimStats(events=12_345, bad=1_200, elapsed_s=1.0, producer={"sent": 12_000})
    assert _progress_line(many) == "12,345 events (12,345/s), bad 1,200, sent 12,000, spooled 0"


def test_datasets_build_and_the_demo_word_a_stage_alike(
    capsys: pytest.CaptureFixture[str],
) -> None:
    counts = {"train": 288, "validation": 52, "test": 1_069}
    datasets_run._progress("job", counts)
    datasets_run._progress("pin", {"telemetry": 3, "inspection": -1})
    progress = demo_run.DatasetProgress()
    progress("job", counts)
    progress.stop()

    said = capsys.readouterr()
    assert said.err.splitlines() == [
        "datasets: job: train 288, validation 52, test 1,069",
        "datasets: pin: telemetry 3, inspection absent",
    ]
    assert said.out.splitlines()[0] == "    job: train 288, validation 52, test 1,069"


@pytest.mark.parametrize("parser", ["native", "arrow"])
def test_the_demo_names_the_json_parser_of_its_worker(parser: str) -> None:
    with mock.patch.object(native_parser, "PARSER", parser):
        line = demo_run.worker_line("batch")
    assert line.startswith(f"batch engine, {parser} JSON parser")
    assert ("slower fallback" in line) == (parser == "arrow")
