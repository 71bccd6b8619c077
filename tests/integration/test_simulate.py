"""run_simulation and `maxlake simulate` send every simulated message to the right topic."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from maxlake.cli import main
from maxlake.settings import Settings
from schemas.registry import load_registry
from streams.simulator import Simulator, run_simulation
from tests.integration.test_producer import consume_all

pytestmark = pytest.mark.integration

TENANT = "ironbridge-steel"
START = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


def test_simulation_arrives_byte_for_byte(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    settings = Settings(bootstrap_servers=kafka_bootstrap, topic_prefix=unique_name)
    stats = run_simulation(
        settings,
        seed=4,
        duration_s=300,
        tenants=[TENANT],
        start=START,
        bad_rate=0.05,
        spool_dir=tmp_path / "spool",
    )
    assert stats.producer["sent"] == stats.events
    assert stats.bad == sum(stats.by_bad_class.values()) > 0
    expected = Simulator(
        load_registry(), seed=4, start=START, tenants=[TENANT], bad_rate=0.05
    ).events(300)
    by_kind: dict[str, list[bytes]] = {}
    for event in expected:
        by_kind.setdefault(event.kind, []).append(event.payload)
    for kind, payloads in by_kind.items():
        topic = settings.topic_for(TENANT, kind)
        records = consume_all(kafka_bootstrap, topic, len(set(payloads)))
        assert Counter(r.value for r in records) == Counter(payloads)


def test_simulate_command_reports_a_summary(
    kafka_bootstrap: str,
    unique_name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MAXLAKE_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("MAXLAKE_TOPIC_PREFIX", unique_name)
    monkeypatch.setenv("MAXLAKE_SPOOL_DIR", str(tmp_path / "spool"))
    code = main(
        [
            "simulate",
            "--duration",
            "120",
            "--as-fast-as-possible",
            "--tenants",
            TENANT,
            "--bad-rate",
            "0.1",
            "--seed",
            "9",
            "--start",
            "2026-11-26T08:00:00Z",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "simulated 120s:" in out
    assert "bad:" in out
    assert "failed 0" in out
