"""Curated datasets from a lake on a real S3 server (moto on loopback), served by `maxlake serve`.

The silver tables and the audit trail live on S3; curated sets, contracts, principals and
pseudonym keys are local folders (``MAXLAKE_CURATED_DIR``, ``MAXLAKE_CONTRACTS_DIR``,
``MAXLAKE_ACCESS_DIR``, ``MAXLAKE_SHARING_SECRETS_FILE``), as DEPLOYMENT.md describes.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from deltalake import DeltaTable

from infra.broker import free_port
from lake import DeltaStore, LakeLocation
from lake.curation import build_dataset, curated_root
from lake.sharing import sharing_gate
from maxlake.settings import Settings
from tests.unit.lake.curation.test_build_helpers import (
    JOBS,
    T0,
    TENANT,
    readings,
    registry,
    spec,
    write_inspection,
    write_telemetry,
)

pytestmark = pytest.mark.integration

CONTRACT = (
    f'id = "nw-pm"\ntenant = "{TENANT}"\npurposes = ["pm-study"]\n'
    '[share]\nkinds = ["telemetry", "inspection"]\n'
    '[deidentify]\npseudonymise = ["tenant", "plant", "line", "machine", "part_serial", "lot"]\n'
)


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "maxlake.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, f"maxlake {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


def _get(port: int, path: str, token: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_a_curated_build_from_an_s3_lake_is_served(
    s3_lake: LakeLocation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = DeltaStore(s3_lake)
    write_telemetry(store, readings(0))
    write_telemetry(store, readings(1), first_offset=1000)
    write_inspection(store, "SN-1", ["cnc-101", "cnc-102"], T0)
    env = {
        **os.environ,
        "MAXLAKE_LAKE_ROOT": s3_lake.root,
        "MAXLAKE_LAKE_STORAGE_OPTIONS": json.dumps(dict(s3_lake.storage_options)),
        "MAXLAKE_CURATED_DIR": str(tmp_path / "curated"),
        "MAXLAKE_CONTRACTS_DIR": str(tmp_path / "contracts"),
        "MAXLAKE_ACCESS_DIR": str(tmp_path / "access"),
        "MAXLAKE_SHARING_SECRETS_FILE": str(tmp_path / "secrets" / "keys.json"),
        "MAXLAKE_SHARING_MIN_GROUP_SIZE": "1",
    }
    env.pop("MAXLAKE_TOKEN", None)
    (tmp_path / "nw-pm.toml").write_text(CONTRACT)
    _cli(env, "contracts", "add", str(tmp_path / "nw-pm.toml"))
    for key in (k for k in env if k.startswith("MAXLAKE_")):
        monkeypatch.setenv(key, env[key])
    settings = Settings()
    gate = sharing_gate(settings)
    source = DeltaStore.from_settings(settings)
    first, again = (
        build_dataset(
            source,
            spec("spindle", purpose="pm-study"),
            registry=registry(),
            jobs=JOBS,
            sharing=gate,
            out_root=curated_root(settings),
        )
        for _ in range(2)
    )
    silver = DeltaTable(
        s3_lake.uri("silver/telemetry"), storage_options=dict(s3_lake.storage_options)
    )
    assert first.source_versions["telemetry"] == silver.version() == 1
    assert (first.version, again.version) == (1, 2)
    assert first.content_hash == again.content_hash, "same spec, same versions, same bytes"
    listed = json.loads(_cli(env, "datasets", "list", "--json"))
    assert [d["name"] for d in listed] == ["spindle"]
    assert not Path("s3:").exists()

    token = _cli(env, "access", "principal", "add", "pm-team", "--kind", "model_team")
    token = token.strip().splitlines()[-1]
    _cli(env, "access", "grant", "pm-team", "spindle")
    port = free_port()
    with (tmp_path / "serve.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "maxlake.cli", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            status, body = 0, b""
            for _ in range(600):
                assert proc.poll() is None, (tmp_path / "serve.log").read_text()
                try:
                    status, body = _get(port, "/v1/datasets/spindle/versions/1/splits/train", token)
                    break
                except OSError:
                    time.sleep(0.1)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    assert status == 200, body[:300]
    shown = json.loads(_cli(env, "datasets", "show", "spindle@1", "--json"))
    assert shown["content_hash"] == first.content_hash
    _cli(env, "datasets", "pull", "spindle@1", "--token", token, "--out", str(tmp_path / "pulled"))
    assert any((tmp_path / "pulled").rglob("*.parquet"))
    assert pl.read_parquet(io.BytesIO(body)).height == first.splits["train"].rows > 0
    audit = [json.loads(line) for line in _cli(env, "audit", "--json").splitlines()]
    assert any(
        row["principal"] == "pm-team" and row["outcome"] == "allowed" and row["rows"]
        for row in audit
    )
    audit_table = DeltaTable(
        s3_lake.uri("ops/audit"), storage_options=dict(s3_lake.storage_options)
    )
    assert audit_table.version() >= 0, "the audit trail is on the S3 lake"
