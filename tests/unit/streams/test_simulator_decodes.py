"""Simulated traffic meets the event schemas and the suites: good events pass, bad ones are caught.

Good events must decode (``schemas``) and pass every drop and warn expectation of the quality
suites; every bad class except ``duplicate_resend`` (which the writer dedupes by event_id) must
be rejected by the decoder or dropped by a suite.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from quality import ValidationGateway
from schemas.events import event_schema_for
from schemas.registry import load_registry
from streams.simulator import BAD_CLASSES, SimEvent, Simulator

START = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
DURATION_S = 1800


@pytest.fixture(scope="module")
def outcomes() -> dict[str, Counter[str]]:
    """Per bad class (``"good"`` for good events): how many were rejected, dropped or kept."""
    registry = load_registry()
    events = list(Simulator(registry, seed=21, start=START, bad_rate=0.15).events(DURATION_S))
    gateway = ValidationGateway(registry)
    groups: dict[tuple[str, str], list[SimEvent]] = defaultdict(list)
    for event in events:
        groups[(event.tenant, event.kind)].append(event)
    result: dict[str, Counter[str]] = defaultdict(Counter)
    for (tenant, kind), group in groups.items():
        decoded = event_schema_for(kind).decode(
            [e.payload for e in group], tenant=tenant, now=START + timedelta(seconds=DURATION_S)
        )
        for rejection in decoded.rejections:
            result[group[rejection.index].bad_class or "good"]["rejected"] += 1
        verdict = gateway.validate(kind, decoded.rows)
        dropped_msgs = set()
        for row, msg in enumerate(decoded.rows.column("_msg").to_pylist()):
            if verdict.drop[row]:
                dropped_msgs.add(msg)
        for msg in set(decoded.rows.column("_msg").to_pylist()):
            outcome = "dropped" if msg in dropped_msgs else "kept"
            result[group[msg].bad_class or "good"][outcome] += 1
        assert not any(verdict.warn_counts.values()), verdict.warn_counts
    return result


def test_good_events_pass_decoder_and_suites(outcomes: dict[str, Counter[str]]) -> None:
    assert outcomes["good"]["kept"] > 10_000
    assert outcomes["good"]["rejected"] == 0
    assert outcomes["good"]["dropped"] == 0


@pytest.mark.parametrize("bad_class", [c for c in BAD_CLASSES if c != "duplicate_resend"])
def test_each_bad_class_is_rejected_or_dropped(
    outcomes: dict[str, Counter[str]], bad_class: str
) -> None:
    assert outcomes[bad_class]["rejected"] + outcomes[bad_class]["dropped"] > 0
    assert outcomes[bad_class]["kept"] == 0


def test_duplicate_resends_decode_like_the_original(outcomes: dict[str, Counter[str]]) -> None:
    assert outcomes["duplicate_resend"]["kept"] > 0
    assert outcomes["duplicate_resend"]["rejected"] == 0
