"""The demo says each long step and drops log lines repeating its `==>` lines."""

from __future__ import annotations

import io
import logging
import threading

import pytest

from maxlake.cli import demo_run
from maxlake.cli.ticker import Ticker


def test_the_demo_quiets_the_loggers_its_lines_repeat(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    before = {name: logging.getLogger(name).level for name in demo_run.DEMO_QUIET_LOGGERS}
    with demo_run.quiet_demo_loggers(verbose=False):
        logging.getLogger("infra.broker").info("broker pid 1 answers on 127.0.0.1:9092")
        logging.getLogger("streams.topics").info("created topics [...]")
        logging.getLogger("streams.producer").info("connected to 127.0.0.1:9092")
        logging.getLogger("streams.producer").warning("spool is full")
        logging.getLogger("streams.ingest").info("telemetry batch: 5 consumed")
    assert [r.getMessage() for r in caplog.records] == [
        "spool is full",
        "telemetry batch: 5 consumed",
    ]
    assert {name: logging.getLogger(name).level for name in demo_run.DEMO_QUIET_LOGGERS} == before


def test_a_slow_broker_is_a_progress_line_not_a_raw_warning(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """The producer's spooling WARNING printed as a raw log line in the middle of the demo's
    progress, with no next step and nothing saying later that the events were sent."""
    caplog.set_level(logging.INFO)
    producer = logging.getLogger("streams.producer")
    with demo_run.quiet_demo_loggers(verbose=False):
        producer.warning("broker unavailable (%s); spooling events", "no acknowledgement for 15s")
    assert caplog.records == []
    out = capsys.readouterr().out
    assert "the broker is slow to answer (no acknowledgement for 15s)" in out
    assert "nothing is lost" in out
    producer.warning("broker unavailable (%s); spooling events", "down")
    assert len(caplog.records) == 1  # outside the demo: the WARNING as before


def test_verbose_keeps_every_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with demo_run.quiet_demo_loggers(verbose=True):
        logging.getLogger("infra.broker").info("broker pid 1 answers on 127.0.0.1:9092")
    assert [r.getMessage() for r in caplog.records] == ["broker pid 1 answers on 127.0.0.1:9092"]


def test_a_dataset_build_says_what_its_long_steps_do(capsys: pytest.CaptureFixture[str]) -> None:
    progress = demo_run.DatasetProgress(Ticker(every_s=3600.0, live=False))
    for stage, counts in [
        ("pin", {"telemetry": 3}),
        ("read", {"telemetry": 1_200}),
        ("job", {"train": 70}),
        ("write", {"train": 70}),
        ("quality", {"expectations": 12, "failed": 0}),
        ("published", {"version": 1}),
    ]:
        progress(stage, counts)
    lines = capsys.readouterr().out.splitlines()
    assert lines[1:3] == [
        "    read: telemetry 1,200",
        "    job: computing the dataset's rows and splits (the longest step) ...",
    ]
    assert lines[4:6] == [
        "    write: train 70",
        "    quality: running the output checks (Great Expectations) ...",
    ]
    assert len(lines) == 8


class _Clock:
    """Seconds that advance by 10 for every reading: each tick of a ticker is 10 s later."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 10.0
        return self.now


def test_a_long_build_step_prints_its_seconds_while_it_runs() -> None:
    out = io.StringIO()
    ticked = threading.Event()

    class _Out(io.StringIO):
        def write(self, text: str) -> int:
            if "job: computing ..." in text:
                ticked.set()
            return out.write(text)

    progress = demo_run.DatasetProgress(
        Ticker(every_s=0.001, live=False, out=_Out(), clock=_Clock())
    )
    progress("read", {"telemetry": 1_200})  # the job starts: it reports only when done
    assert ticked.wait(10.0), "no line while the job ran"
    progress("job", {"train": 70})
    progress.stop()
    lines = out.getvalue().splitlines()
    assert lines[0] == "    job: computing ... 10 s"
    assert all(line.startswith("    job: computing ... ") for line in lines)
    assert all(line.endswith("0 s") for line in lines)
