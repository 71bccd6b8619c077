"""Operations against a live worker: ``maxlake status`` and the Prometheus endpoint.

One worker subprocess (metrics on a free port) drains simulated traffic with bad input; then
the status snapshot and the scraped metrics must agree with what was produced.
"""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from infra.broker import free_port
from streams.status import collect_status, status_history
from tests.integration.ingest_helpers import (
    IngestEnv,
    expected_outcome,
    produce,
    run_cli,
    simulate,
    wait_for_lag_zero,
    workers,
)

pytestmark = pytest.mark.integration

TENANTS = ("ironbridge-steel",)


@dataclass(frozen=True)
class MetricsEnv(IngestEnv):
    """An ingest env whose workers serve Prometheus metrics on ``metrics_port``."""

    metrics_port: int = 0

    def environ(self, worker: str) -> dict[str, str]:
        env = super().environ(worker)
        env["MAXLAKE_METRICS_PORT"] = str(self.metrics_port)
        return env


def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _sum(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str) -> float:
    return sum(v for (n, _), v in samples.items() if n == name)


def _lag_gauges(port: int, partitions: int) -> dict[tuple[str, str], float]:
    """The lag gauge once the poller has seen every partition (it polls every 10 s)."""
    deadline = time.monotonic() + 60
    while True:
        samples = _scrape(port)
        lags = {
            (dict(labels)["topic"], dict(labels)["partition"]): v
            for (name, labels), v in samples.items()
            if name == "maxlake_consumer_lag"
        }
        if len(lags) == partitions and not any(lags.values()):
            return lags
        if time.monotonic() > deadline:
            return lags
        time.sleep(1)


def test_status_and_metrics_of_a_live_worker(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    env = MetricsEnv(
        kafka_bootstrap, unique_name, tmp_path, TENANTS, partitions=2, metrics_port=free_port()
    )
    env.create_topics()
    events = simulate(TENANTS, seed=21, duration_s=180, bad_rate=0.05)
    produced = produce(env, events)
    expected = expected_outcome(events)

    with workers(env, "ops") as (worker,):
        wait_for_lag_zero(env, [worker], produced=produced, timeout_s=120)

        status = collect_status(env.settings(), timedelta(hours=1), tenants=TENANTS)
        kafka = status["kafka"]
        assert kafka["reachable"], kafka
        assert kafka["total_lag"] == 0
        assert len(kafka["partitions"]) == 3 * 2
        assert all(p["lag"] == 0 for p in kafka["partitions"])
        assert len(kafka["members"]) == 1, kafka["members"]
        assert len(kafka["members"][0]["partitions"]) == 6, kafka["members"]
        quality = status["quality"]["kinds"]
        for kind, exp in expected.items():
            assert quality[kind]["consumed"] == exp.consumed, kind
            assert quality[kind]["quarantined"] == exp.quarantined.total(), kind
        assert sum(q["quarantined"] for q in quality.values()) > 0
        tables = {t["table"]: t for t in status["tables"]}
        assert {"silver/telemetry", "ops/validation_runs"} <= set(tables)
        assert tables["silver/telemetry"]["last_commit_age_s"] is not None
        json.dumps(status)

        history = status_history(env.settings(), timedelta(minutes=30), timedelta(minutes=1))
        assert sum(b["consumed"] for b in history["buckets"]) == produced

        samples = _scrape(env.metrics_port)
        assert _sum(samples, "maxlake_events_consumed_total") == produced
        assert _sum(samples, "maxlake_quarantined_messages_total") == sum(
            e.quarantined.total() for e in expected.values()
        )
        assert _sum(samples, "maxlake_batch_duration_seconds_count") >= 1
        lags = _lag_gauges(env.metrics_port, 6)
        assert len(lags) == 6, lags
        assert not any(lags.values()), lags

        cli = run_cli(env, "status", "--json", "--tenant", TENANTS[0])
        assert cli.returncode == 0, cli.stderr
        assert json.loads(cli.stdout)["kafka"]["total_lag"] == 0
        text = run_cli(env, "status", "--tenant", TENANTS[0])
        assert text.returncode == 0, text.stderr
        assert "1 live worker(s), total lag 0" in text.stdout
        assert worker.terminate() == 0, worker.log_tail()
