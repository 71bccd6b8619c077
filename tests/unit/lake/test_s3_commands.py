"""The lake commands that need no broker run against a lake on a real S3 server (moto on
loopback) and write nothing to the local disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lake import BatchWriter, DeltaStore, LakeLocation
from lake.sharing import ContractStore
from maxlake.cli import main
from maxlake.settings import Settings
from schemas import EventKind
from streams.ingest import IngestPipeline
from tests.unit.lake.batches import gateway, messages, telemetry, with_bad_input
from tests.unit.lake.sharing.helpers import contract_toml


def test_lake_and_quarantine_commands_and_backfill_on_an_s3_lake(
    s3_lake: LakeLocation,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = Settings(lake_root=s3_lake.root, lake_storage_options=s3_lake.storage_options)
    store = DeltaStore(s3_lake)
    pipeline = IngestPipeline(settings, gateway(), BatchWriter(store), worker="test")
    events = with_bad_input(400)
    for start in (0, 200):
        batch = [e.payload for e in events[start : start + 200]]
        pipeline.process(EventKind.TELEMETRY, messages(batch, first_offset=start))
    history = tmp_path / "history.jsonl"
    history.write_bytes(b"\n".join(e.payload for e in telemetry(50, seed=9)) + b"\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MAXLAKE_LAKE_ROOT", s3_lake.root)
    monkeypatch.setenv("MAXLAKE_LAKE_STORAGE_OPTIONS", json.dumps(dict(s3_lake.storage_options)))
    silver_before = store.version("silver/telemetry")
    for command in (
        ["lake", "status", "--json"],
        ["lake", "compact"],
        ["lake", "checkpoint"],
        ["lake", "vacuum"],
        ["quarantine", "list", "--json"],
        ["quarantine", "show", "--kind", "telemetry", "--limit", "3"],
        ["quarantine", "replay", "--kind", "telemetry", "--json"],
        ["backfill", str(history), "--kind", "telemetry"],
        ["status", "--no-kafka", "--json"],
    ):
        code = main(command)
        out = capsys.readouterr()
        assert code == 0, f"{command}: {out.out}{out.err}"
    assert (DeltaStore(s3_lake).version("silver/telemetry") or 0) > (silver_before or 0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.jsonl"]


def test_a_contracts_add_refused_for_its_secrets_file_stores_no_contract(
    s3_lake: LakeLocation,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """On an object-store lake without MAXLAKE_SHARING_SECRETS_FILE, `contracts add` exits 1
    naming the variable; the refused contract must not be stored (and so not be in force)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MAXLAKE_LAKE_ROOT", s3_lake.root)
    monkeypatch.setenv("MAXLAKE_LAKE_STORAGE_OPTIONS", json.dumps(dict(s3_lake.storage_options)))
    monkeypatch.delenv("MAXLAKE_SHARING_SECRETS_FILE", raising=False)
    (tmp_path / "nw-pm.toml").write_bytes(contract_toml())
    assert main(["contracts", "add", str(tmp_path / "nw-pm.toml")]) == 1
    assert "MAXLAKE_SHARING_SECRETS_FILE" in capsys.readouterr().err
    assert ContractStore(s3_lake.child("sharing", "contracts")).contracts() == []


def test_a_missing_bucket_is_one_line_naming_it_and_the_next_step(
    s3_lake: LakeLocation,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MAXLAKE_LAKE_ROOT", "s3://no-such-bucket-here/lake")
    monkeypatch.setenv("MAXLAKE_LAKE_STORAGE_OPTIONS", json.dumps(dict(s3_lake.storage_options)))
    assert main(["datasets", "list"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        "maxlake: error: the object store refused the request: NoSuchBucket (The specified "
        "bucket does not exist); create the bucket or fix the bucket in MAXLAKE_LAKE_ROOT"
    )
