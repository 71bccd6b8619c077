"""``maxlake status --tenant``: unknown tenants are refused with the known ones, the quality block
counts only the tenant's messages, and the table's columns never run into each other."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from lake.access import AccessStore, access_dir
from maxlake.cli import main
from maxlake.cli.ops_cmd import render_status
from maxlake.server.app import build_app
from maxlake.settings import Settings
from schemas import load_registry
from streams.simulator import Simulator
from streams.status import collect_status
from tests.unit.lake.batches import TENANT, messages, pipeline, settings, telemetry

OTHER = "northwind-auto"


def _other_tenant(n: int) -> list[bytes]:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=600)
    sim = Simulator(load_registry(), seed=5, start=start, tenants=[OTHER], bad_rate=0.25)
    events = [e.payload for e in sim.events(600) if e.kind == "telemetry"]
    assert len(events) >= n
    return events[:n]


@pytest.fixture
def lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """One batch mixing 30 clean messages of TENANT and 40 of OTHER, a quarter of them bad."""
    root = tmp_path / "lake"
    mine = messages([e.payload for e in telemetry(30)])
    theirs = messages(_other_tenant(40), topic=f"maxlake.{OTHER}.telemetry")
    result = pipeline(root).process("telemetry", [*mine, *theirs])
    assert result.quarantined > 0
    monkeypatch.setenv("MAXLAKE_LAKE_ROOT", str(root))
    return root


def test_the_quality_block_counts_only_the_tenants_messages(lake: Path) -> None:
    every = collect_status(settings(lake), timedelta(hours=1), kafka=False)["quality"]
    mine = collect_status(settings(lake), timedelta(hours=1), tenants=[TENANT], kafka=False)
    theirs = collect_status(settings(lake), timedelta(hours=1), tenants=[OTHER], kafka=False)
    assert every["tenants"] is None
    assert mine["quality"]["tenants"] == [TENANT]
    t_all, t_mine = every["kinds"]["telemetry"], mine["quality"]["kinds"]["telemetry"]
    t_theirs = theirs["quality"]["kinds"]["telemetry"]
    assert (t_mine["consumed"], t_mine["quarantined"], t_mine["duplicates"]) == (30, 0, 0)
    assert t_mine["quarantined_by_reason"] == {}
    assert t_theirs["consumed"] == 40
    assert t_theirs["quarantined"] == t_all["quarantined"] > 0
    assert t_theirs["duplicates"] == t_all["duplicates"]
    assert t_theirs["quarantined_by_reason"] == t_all["quarantined_by_reason"]
    assert t_mine["silver_events"] + t_theirs["silver_events"] == t_all["silver_events"]
    assert t_mine["batches"] == t_theirs["batches"] == 1
    assert mine["quality"]["recent_s"] == 300
    assert t_mine["recent_events_per_s"] == 30 / 300
    assert t_all["recent_events_per_s"] == 70 / 300
    text = render_status(mine)
    assert f"last 1 h, tenant {TENANT}:" in text
    assert "offsets read from these tenants' topics" in text
    assert "last 1 h, all tenants:" in render_status(
        collect_status(settings(lake), timedelta(hours=1), kafka=False)
    )


def test_an_unknown_tenant_is_refused_with_a_close_match(
    lake: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in (
        ["status", "--no-kafka", "--tenant", "northwind"],
        ["quarantine", "list", "--tenant", "northwind"],
        ["quarantine", "show", "--tenant", "northwind"],
        ["quarantine", "replay", "--kind", "telemetry", "--tenant", "northwind", "--dry-run"],
    ):
        assert main(command) == 1, command
        err = capsys.readouterr().err
        assert "--tenant 'northwind' is not a tenant of the registry" in err, command
        assert f"(did you mean {OTHER}?); known: " in err
        assert TENANT in err
    assert main(["status", "--no-kafka", "--tenant", TENANT]) == 0
    assert main(["quarantine", "list", "--tenant", TENANT]) == 0
    assert capsys.readouterr().out.endswith("no quarantined message matches\n")


def test_columns_are_as_wide_as_their_widest_value() -> None:
    kinds = {
        "telemetry": {
            "batches": 12,
            "consumed": 95_947,
            "events_per_s": 26.7,
            "quarantined": 823,
            "quarantine_rate": 0.0086,
            "duplicates": 19_066,
            "quarantined_by_reason": {},
            "failed_batch_checks": {},
        }
    }
    status = {
        "generated_at": "2026-12-01T15:00:00+00:00",
        "lake_root": "/lake",
        "kafka": {"reachable": False, "error": "skipped"},
        "tables": [],
        "window_s": 3600.0,
        "quality": {"tenants": None, "kinds": kinds},
        "alerts": [],
    }
    lines = render_status(status).splitlines()
    header = next(line for line in lines if "quarantined" in line and "dups" in line)
    row = next(line for line in lines if line.strip().startswith("telemetry"))
    assert row.split() == ["telemetry", "12", "95,947", "26.7", "0.0", "823", "0.9%", "19,066"]
    assert len(header) == len(row)
    assert header.split()[:4] == ["kind", "batches", "consumed", "avg"]
    assert "last 1 h, all tenants: (avg ev/s = consumed / 1 h, over the whole window)" in lines
    assert header.endswith("  dups".rjust(len("19,066") + 2))


def test_the_status_api_refuses_an_unknown_tenant(lake: Path, tmp_path: Path) -> None:
    config = Settings(lake_root=str(lake), data_docs_dir=tmp_path / "docs")
    token = AccessStore(access_dir(config)).add("eng", "data_engineer")[1]
    answers: dict[str, tuple[int, dict[str, Any]]] = {}

    async def run() -> None:
        async with TestClient(TestServer(build_app(config))) as client:
            for tenant in ("northwind", OTHER):
                response = await client.get(
                    f"/api/status?kafka=0&tenant={tenant}",
                    headers={"Authorization": f"Bearer {token}"},
                )
                answers[tenant] = (response.status, await response.json())

    asyncio.run(run())
    status, body = answers["northwind"]
    assert status == 400
    assert "tenant 'northwind' is not a tenant of the registry" in body["error"]["detail"]
    status, body = answers[OTHER]
    assert status == 200
    assert body["quality"]["tenants"] == [OTHER]
