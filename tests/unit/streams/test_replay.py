"""Replay after a suite fix: quarantined messages move to silver exactly once, keep their Kafka
coordinates, and the accounting invariant holds before and after."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import polars as pl
import pytest

import streams.replay as replay_module
from lake import BatchWriter, DeltaStore
from lake.accounting import check_accounting
from lake.replays import REPLAYS
from maxlake.cli import main
from streams.ingest import IngestPipeline
from streams.replay import quarantine_summary, replay_quarantine
from tests.unit.lake.batches import TOPIC, gateway, messages, pipeline, settings, telemetry
from tests.unit.streams.suites import NARROWED, strict_gateway


def _max_value(payload: bytes) -> float:
    event = orjson.loads(payload)
    readings = event.get("readings") or [event["reading"]]
    return max(float(r["value"]) for r in readings)


def _strict_pipeline(root: Path, tmp: Path, limit: float) -> IngestPipeline:
    strict = strict_gateway(tmp / "strict-suites", limit)
    return IngestPipeline(settings(root), strict, BatchWriter(DeltaStore(root)), worker="strict")


def _silver(root: Path) -> pl.DataFrame:
    frame = DeltaStore(root).read_frame(
        "silver/telemetry", columns=["event_id", "kafka_topic", "kafka_partition", "kafka_offset"]
    )
    assert frame is not None
    return frame


@pytest.fixture
def quarantined_lake(tmp_path: Path) -> tuple[Path, list[bytes], int]:
    """40 messages ingested with a too-strict maximum: some land in quarantine."""
    payloads = [e.payload for e in telemetry(40)]
    limit = sorted(_max_value(p) for p in payloads)[25]
    root = tmp_path / "lake"
    result = _strict_pipeline(root, tmp_path, limit).process("telemetry", messages(payloads))
    assert 5 <= result.quarantined < 40
    return root, payloads, result.quarantined


def test_replay_after_a_suite_fix_moves_each_message_to_silver_exactly_once(
    quarantined_lake: tuple[Path, list[bytes], int],
) -> None:
    root, payloads, quarantined = quarantined_lake
    committed = {(TOPIC, 0): len(payloads)}

    dry = replay_quarantine(settings(root), "telemetry", dry_run=True, gateway=gateway())
    assert (dry.selected, dry.replayed, dry.still_invalid) == (quarantined, quarantined, 0)
    assert not DeltaStore(root).exists(REPLAYS)
    assert _silver(root)["kafka_offset"].n_unique() == len(payloads) - quarantined

    first = replay_quarantine(settings(root), "telemetry", reason=NARROWED, gateway=gateway())
    assert (first.replayed, first.duplicates, first.still_invalid) == (quarantined, 0, 0)

    silver = _silver(root)
    expected_ids = {orjson.loads(p)["event_id"] for p in payloads}
    assert set(silver["event_id"].to_list()) == expected_ids
    coords = silver.select(["event_id", "kafka_offset"]).unique()
    assert coords.height == len(payloads), "every event once, at its original offset"
    assert sorted(coords["kafka_offset"].to_list()) == list(range(len(payloads)))

    report = check_accounting(DeltaStore(root), committed=committed)
    assert report.ok, [str(v) for v in report.violations]
    assert report.replayed["telemetry"] == quarantined
    assert report.quarantined["telemetry"] == 0
    assert report.silver_events["telemetry"] == len(payloads)

    second = replay_quarantine(settings(root), "telemetry", gateway=gateway())
    assert (second.replayed, second.skipped_already_replayed) == (0, quarantined)
    assert _silver(root).height == silver.height

    summary = quarantine_summary(settings(root))
    assert summary == [
        {
            "kind": "telemetry",
            "reason": NARROWED,
            "stage": "validate",
            "messages": quarantined,
            "replayed": quarantined,
            "first": summary[0]["first"],
            "last": summary[0]["last"],
        }
    ]


def test_replay_under_the_same_strict_suite_moves_nothing_and_records_why(
    quarantined_lake: tuple[Path, list[bytes], int], tmp_path: Path
) -> None:
    root, payloads, quarantined = quarantined_lake
    limit = sorted(_max_value(p) for p in payloads)[25]
    strict = strict_gateway(tmp_path / "strict-suites", limit)
    report = replay_quarantine(settings(root), "telemetry", gateway=strict)
    assert (report.replayed, report.still_invalid) == (0, quarantined)
    assert report.still_invalid_by_reason == {NARROWED: quarantined}
    again = replay_quarantine(settings(root), "telemetry", gateway=gateway())
    assert again.replayed == quarantined, "still_invalid is not final: a later fix replays it"
    assert check_accounting(DeltaStore(root), committed={(TOPIC, 0): len(payloads)}).ok


def test_a_quarantined_event_whose_resend_reached_silver_stays_a_duplicate(
    tmp_path: Path,
) -> None:
    payload = telemetry(1)[0].payload
    root = tmp_path / "lake"
    strict = _strict_pipeline(root, tmp_path, _max_value(payload) - 1)
    assert strict.process("telemetry", messages([payload])).quarantined == 1
    resent = pipeline(root).process("telemetry", messages([payload], first_offset=1))
    assert resent.silver_events == 1

    report = replay_quarantine(settings(root), "telemetry", gateway=gateway())
    assert (report.replayed, report.duplicates) == (0, 1)
    assert _silver(root)["kafka_offset"].unique().to_list() == [1]
    accounting = check_accounting(DeltaStore(root), committed={(TOPIC, 0): 2})
    assert accounting.ok, [str(v) for v in accounting.violations]
    assert accounting.quarantined["telemetry"] == 1
    assert replay_quarantine(settings(root), "telemetry", gateway=gateway()).duplicates == 0


_TOPIC_ID = "7046eff4-f5f9-448a-8b41-61c995a695c3"


def _lineage_lake(tmp_path: Path) -> tuple[Path, list[bytes], int]:
    """40 messages of a topic with a Kafka topic id, some quarantined by a too-strict suite."""
    payloads = [e.payload for e in telemetry(40)]
    limit = sorted(_max_value(p) for p in payloads)[25]
    root = tmp_path / "lake"
    batch = [m._replace(topic_id=_TOPIC_ID) for m in messages(payloads)]
    result = _strict_pipeline(root, tmp_path, limit).process("telemetry", batch)
    assert 5 <= result.quarantined < 40
    return root, payloads, result.quarantined


def test_replayed_rows_carry_the_topic_id_and_verify_holds_for_the_current_lineage(
    tmp_path: Path,
) -> None:
    root, payloads, quarantined = _lineage_lake(tmp_path)
    report = replay_quarantine(settings(root), "telemetry", gateway=gateway())
    assert report.replayed == quarantined

    silver = DeltaStore(root).read_frame("silver/telemetry", columns=["kafka_topic_id"])
    assert silver is not None
    assert silver["kafka_topic_id"].to_list() == [_TOPIC_ID] * silver.height
    accounting = check_accounting(
        DeltaStore(root), committed={(TOPIC, 0): len(payloads)}, topic_ids={TOPIC: _TOPIC_ID}
    )
    assert accounting.ok, [str(v) for v in accounting.violations]
    assert accounting.replayed["telemetry"] == quarantined


def test_a_lake_replayed_without_topic_ids_by_an_older_release_verifies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replays before the fix wrote silver rows with a null ``kafka_topic_id``: verify
    attributes them to their quarantine record's lineage, not to the pre-lineage rows."""
    root, payloads, quarantined = _lineage_lake(tmp_path)
    fixed = replay_module._messages
    monkeypatch.setattr(
        replay_module,
        "_messages",
        lambda rows: [m._replace(topic_id=None) for m in fixed(rows)],
    )
    old = replay_quarantine(settings(root), "telemetry", gateway=gateway())
    assert old.replayed == quarantined
    monkeypatch.undo()
    silver = DeltaStore(root).read_frame("silver/telemetry", columns=["kafka_topic_id"])
    assert silver is not None
    assert silver["kafka_topic_id"].null_count() == old.silver_rows, "the old replay's rows"

    accounting = check_accounting(
        DeltaStore(root), committed={(TOPIC, 0): len(payloads)}, topic_ids={TOPIC: _TOPIC_ID}
    )
    assert accounting.ok, [str(v) for v in accounting.violations]
    assert accounting.silver_events["telemetry"] == len(payloads)


def test_lake_verify_says_how_it_counts_replayed_offsets(
    quarantined_lake: tuple[Path, list[bytes], int],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """RELIABILITY.md: a replayed offset counts once, as silver; its quarantine row stays."""
    root, payloads, quarantined = quarantined_lake
    replay_quarantine(settings(root), "telemetry", gateway=gateway())
    monkeypatch.setenv("MAXLAKE_LAKE_ROOT", str(root))
    assert main(["lake", "verify", "--no-kafka", "--kind", "telemetry"]) == 0
    out = capsys.readouterr().out
    assert f"silver events {len(payloads):>9,}" in out
    assert f"quarantined {0:>7,}" in out
    assert (
        f"telemetry: {quarantined:,} quarantined offset(s) replayed to silver (ops/replays) "
        "count as silver events above, not as quarantined; their quarantine rows stay as the "
        "record of the first rejection"
    ) in out
    assert out.rstrip().endswith("accounting invariant holds")
    assert main(["lake", "verify", "--no-kafka", "--kind", "telemetry", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["replayed"] == {"telemetry": quarantined}
    assert report["quarantined"] == {"telemetry": 0}
    assert DeltaStore(root).count("quarantine/telemetry") == quarantined
