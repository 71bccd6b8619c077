"""Each quarantined message says what replay did to it (``quarantine show``, ``/api/quarantine``),
so a plant engineer sees which ones still need attention."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from lake import BatchWriter, DeltaStore
from lake.access import AccessStore, access_dir
from maxlake.cli import main
from maxlake.cli.ops_cmd import replay_line
from maxlake.server.app import build_app
from maxlake.settings import Settings
from streams.ingest import IngestPipeline
from streams.replay import quarantine_page, replay_quarantine
from tests.unit.lake.batches import messages, settings, telemetry
from tests.unit.streams.suites import NARROWED, strict_gateway


def _max_value(payload: bytes) -> float:
    event = orjson.loads(payload)
    readings = event.get("readings") or [event["reading"]]
    return max(float(r["value"]) for r in readings)


def test_each_message_is_marked_replayed_still_invalid_or_not_replayed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    payloads = [e.payload for e in telemetry(60)]
    first, later = payloads[:40], payloads[40:]
    values = sorted(_max_value(p) for p in first)
    strict, looser = values[20], values[30]
    root = tmp_path / "lake"

    def ingest(batch: list[bytes], first_offset: int) -> None:
        gw = strict_gateway(tmp_path / "strict", strict)
        pipe = IngestPipeline(settings(root), gw, BatchWriter(DeltaStore(root)), worker="strict")
        pipe.process("telemetry", messages(batch, first_offset=first_offset))

    ingest(first, 0)
    report = replay_quarantine(
        settings(root), "telemetry", gateway=strict_gateway(tmp_path / "looser", looser)
    )
    assert report.replayed > 0
    assert report.still_invalid > 0
    ingest(later, 40)

    total, page = quarantine_page(settings(root), limit=200)
    assert total == len(page)
    by_offset = {m["kafka_offset"]: m["replay"] for m in page}
    replayed = {o for o, mark in by_offset.items() if mark and mark["outcome"] == "replayed"}
    failed = {o for o, mark in by_offset.items() if mark and mark["outcome"] == "still_invalid"}
    never = {o for o, mark in by_offset.items() if mark is None}
    assert len(replayed) == report.replayed
    assert len(failed) == report.still_invalid
    assert never
    assert all(o >= 40 for o in never)
    assert all(o < 40 for o in replayed | failed)
    mark = by_offset[min(replayed)]
    assert mark is not None
    assert mark["silver_rows"] >= 1
    assert mark["attempts"] == 1
    assert by_offset[min(failed)]["reasons"] == [NARROWED]

    monkeypatch.setenv("MAXLAKE_LAKE_ROOT", str(root))
    assert main(["quarantine", "show", "--limit", "200"]) == 0
    out = capsys.readouterr().out
    assert out.count("  replayed ") == len(replayed)
    assert out.count(" failed again: still invalid (") == len(failed)
    assert out.count("  replay: not replayed (still needs attention)") == len(never)

    api = _api_quarantine(root, tmp_path)
    assert {m["kafka_offset"]: m["replay"] for m in api["page"]["messages"]} == by_offset
    schemas = api["openapi"]["components"]["schemas"]
    answer = api["openapi"]["paths"]["/api/quarantine"]["get"]["responses"]["200"]
    assert answer["content"]["application/json"]["schema"]["$ref"].endswith("/QuarantinePage")
    item = schemas["QuarantinePage"]["properties"]["messages"]["items"]["properties"]
    assert "replay" in item
    assert "outcome" in schemas["ReplayMark"]["properties"]
    refs = set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', json.dumps(api["openapi"])))
    assert {"QuarantinePage", "ReplayMark"} <= refs <= set(schemas)

    again = replay_quarantine(
        settings(root), "telemetry", gateway=strict_gateway(tmp_path / "all", values[-1] * 10)
    )
    assert again.replayed >= len(failed)
    marks = {m["kafka_offset"]: m["replay"] for m in quarantine_page(settings(root), limit=200)[1]}
    for offset in failed:
        assert marks[offset]["outcome"] == "replayed"
        assert marks[offset]["attempts"] == 2
    assert marks[min(replayed)] == mark, "a replayed message is not selected again"


def _api_quarantine(root: Path, tmp_path: Path) -> dict[str, Any]:
    """``GET /api/quarantine?limit=200`` with a data engineer's token, and ``/openapi.json``."""
    config = Settings(lake_root=str(root), data_docs_dir=tmp_path / "docs")
    token = AccessStore(access_dir(config)).add("eng", "data_engineer")[1]
    out: dict[str, Any] = {}

    async def main() -> None:
        async with TestClient(TestServer(build_app(config))) as client:
            auth = {"Authorization": f"Bearer {token}"}
            response = await client.get("/api/quarantine?limit=200", headers=auth)
            assert response.status == 200
            out["page"] = await response.json()
            out["openapi"] = await (await client.get("/openapi.json")).json()

    asyncio.run(main())
    return out


def test_the_replay_line_names_the_outcome_its_time_and_the_run() -> None:
    mark = {
        "outcome": "duplicate",
        "replayed_at": "2026-12-01T15:02:11.123+00:00",
        "replay_id": "r1",
        "silver_rows": 0,
        "reasons": [],
        "suite_version": "1.1.0",
        "attempts": 2,
    }
    line = replay_line(mark)
    assert (
        line
        == "replayed 2026-12-01T15:02:11Z: a duplicate, its event was already in silver (replay r1)"
    )
    still = replay_line({**mark, "outcome": "still_invalid", "reasons": ["unknown_machine"]})
    assert "2 attempts: still invalid (unknown_machine; replay r1)" in still
