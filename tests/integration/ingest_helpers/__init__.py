"""Shared machinery of the ingest integration tests: real worker processes, real topics, the lake.

A test builds an :class:`IngestEnv` (its own topic prefix, consumer group and lake under
``tmp_path``), produces simulator events with :func:`produce`, runs ``python -m maxlake.cli
worker`` subprocesses through :class:`WorkerProcess` (each in its own process group, so kill -9
takes Faust's children too) and waits for the group's lag to reach zero with
:func:`wait_for_lag_zero`. Expectations come from the simulator's own ``bad_class`` labels
(:func:`expected_outcome`), never from the lake itself.

The machinery is split by concept: :mod:`.env` (the test's topics, group and lake),
:mod:`.processes` (worker processes and waits on their commits), :mod:`.inputs` (simulated events
and paced streams of them) and :mod:`.accounting` (what the lake must hold, checked against
Kafka and Delta).
"""

from tests.integration.ingest_helpers.accounting import (
    QUARANTINE_REASONS,
    Expected,
    assert_each_offset_once,
    assert_expected,
    assert_invariant,
    event_id_of,
    expected_outcome,
    read_table,
    rows_of,
    silver_event_ids,
    workers_in_runs,
)
from tests.integration.ingest_helpers.env import KINDS, IngestEnv
from tests.integration.ingest_helpers.inputs import Stream, keyed_like_original, produce, simulate
from tests.integration.ingest_helpers.processes import (
    WorkerProcess,
    committed_total,
    lag_summary,
    run_cli,
    wait_for_lag_zero,
    wait_for_new_commits,
    workers,
)

__all__ = [
    "KINDS",
    "QUARANTINE_REASONS",
    "Expected",
    "IngestEnv",
    "Stream",
    "WorkerProcess",
    "assert_each_offset_once",
    "assert_expected",
    "assert_invariant",
    "committed_total",
    "event_id_of",
    "expected_outcome",
    "keyed_like_original",
    "lag_summary",
    "produce",
    "read_table",
    "rows_of",
    "run_cli",
    "silver_event_ids",
    "simulate",
    "wait_for_lag_zero",
    "wait_for_new_commits",
    "workers",
    "workers_in_runs",
]
