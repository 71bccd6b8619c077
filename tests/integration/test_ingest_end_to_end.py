"""End to end: simulator (with bad input) -> Kafka -> one worker -> lake, every offset accounted.

The expectations come from the simulator's ``bad_class`` labels: good events once in silver with
all their rows, every bad class in quarantine with its reason, every resend in ``ops/duplicates``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streams.simulator import SimEvent
from tests.integration.ingest_helpers import (
    KINDS,
    QUARANTINE_REASONS,
    IngestEnv,
    assert_expected,
    assert_invariant,
    event_id_of,
    expected_outcome,
    produce,
    read_table,
    run_cli,
    simulate,
    wait_for_lag_zero,
    workers,
)

pytestmark = pytest.mark.integration

TENANTS = ("voltcell-batteries", "ironbridge-steel")


def test_one_worker_drains_everything_into_the_right_tables(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    env = IngestEnv(kafka_bootstrap, unique_name, tmp_path, TENANTS)
    env.create_topics()
    events = simulate(TENANTS, seed=11, duration_s=1200, bad_rate=0.05)
    produced = produce(env, events)
    expected = expected_outcome(events)

    with workers(env, "solo") as (worker,):
        wait_for_lag_zero(env, [worker], produced=produced, timeout_s=150)
        code = worker.terminate()
    assert code == 0, worker.log_tail()

    assert_invariant(env)
    assert_expected(env, events)
    _assert_every_bad_class_has_its_reason(env, events)

    verify = run_cli(env, "lake", "verify", "--json")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    summary = json.loads(verify.stdout)
    assert summary["ok"] is True
    assert summary["runs_consumed"] == {k: expected[k].consumed for k in KINDS}


def _assert_every_bad_class_has_its_reason(env: IngestEnv, events: list[SimEvent]) -> None:
    by_payload: dict[tuple[str, str, bytes], list[str]] = {}
    for event in events:
        if event.bad_class is not None and event.bad_class != "duplicate_resend":
            by_payload.setdefault((event.tenant, event.kind, event.payload), []).append(
                event.bad_class
            )
    seen_classes: set[str] = set()
    for kind in KINDS:
        quarantine = read_table(env, f"quarantine/{kind}", ["tenant", "raw", "reasons"])
        assert quarantine.height == sum(
            len(v) for (_, k, _), v in by_payload.items() if k == kind
        ), kind
        for tenant, raw, reasons in quarantine.iter_rows():
            classes = by_payload.get((tenant, kind, raw))
            assert classes, (
                f"{kind}: quarantined a message the simulator sent as good: {raw[:80]!r}"
            )
            bad_class = classes[0]
            seen_classes.add(bad_class)
            assert set(reasons) & QUARANTINE_REASONS[bad_class], (
                f"{kind}: {bad_class} quarantined with reasons {reasons}"
            )
    assert seen_classes == set(QUARANTINE_REASONS), (
        f"bad classes never produced: {set(QUARANTINE_REASONS) - seen_classes}"
    )
    resent = [e for e in events if e.bad_class == "duplicate_resend"]
    assert resent, "the simulator sent no duplicate_resend"
    assert all(event_id_of(e.payload) for e in resent)
