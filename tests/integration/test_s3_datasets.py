"""Curated datasets that live on a real S3 server (moto on loopback), built, listed, pulled and
served from there by `maxlake serve` (its own API and the Delta Sharing protocol).

Everything but the pseudonym keys is on S3 under the lake root: the silver tables, the
registry (the packaged seed), the contracts, the principals, the curated sets and the audit
trail. The processes run in an empty folder, which must stay empty but for the local files
the test names (keys, split cache, spec, profile, pulled files).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import delta_sharing
import polars as pl
import pytest
from deltalake import DeltaTable

from lake import DeltaStore, LakeLocation
from lake.curation import CuratedArea, build_dataset, load_spec
from maxlake.settings import Settings
from tests.integration.serve_helpers import (
    add_contracts,
    add_principal,
    cli_run,
    lake_env,
    running_serve,
)
from tests.unit.lake.curation.test_build_helpers import (
    T0,
    TENANT,
    readings,
    registry,
    write_inspection,
    write_telemetry,
)

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SPEC = f"""name = "spindle"
purpose = "pm-study"
job = "tests.unit.lake.curation.test_build_helpers:tag_means"
[filters]
tenants = ["{TENANT}"]
"""


def test_curated_sets_on_s3_are_built_listed_pulled_and_served(
    s3_lake: LakeLocation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = DeltaStore(s3_lake)
    write_telemetry(store, readings(0))
    write_telemetry(store, readings(1), first_offset=1000)
    write_inspection(store, "SN-1", ["cnc-101", "cnc-102"], T0)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    env = {
        **lake_env(tmp_path, Path("unused")),
        "MAXLAKE_LAKE_ROOT": s3_lake.root,
        "MAXLAKE_LAKE_STORAGE_OPTIONS": json.dumps(dict(s3_lake.storage_options)),
        "MAXLAKE_CURATED_CACHE_DIR": str(tmp_path / "cache"),
        "PYTHONPATH": str(REPO),
    }
    gate = add_contracts(env, tmp_path, [("nw-pm", "pm-study")])
    (tmp_path / "spindle.toml").write_text(SPEC)

    built = json.loads(cli_run(env, "datasets", "build", str(tmp_path / "spindle.toml")))
    for key in (k for k in env if k.startswith("MAXLAKE_")):
        monkeypatch.setenv(key, env[key])
    settings = Settings()
    again = build_dataset(
        DeltaStore.from_settings(settings),
        load_spec(tmp_path / "spindle.toml"),
        registry=registry(),
        sharing=gate,
        out_root=CuratedArea.of(settings),
    )
    assert (built["version"], again.version) == (1, 2)
    assert built["content_hash"] == again.content_hash, "same spec, same versions, same bytes"
    silver = DeltaTable(
        s3_lake.uri("silver/telemetry"), storage_options=dict(s3_lake.storage_options)
    )
    assert built["sources"]["telemetry"] == silver.version() == 1
    assert s3_lake.files().list("curated/spindle") == (["v1", "v2"], [])
    assert s3_lake.files().exists("sharing/contracts/northwind-auto/nw-pm/v1.toml")
    listed = json.loads(cli_run(env, "datasets", "list", "--json"))
    assert [(d["name"], d["versions"]) for d in listed] == [("spindle", [1, 2])]

    token = add_principal(env, "pm-team", "spindle")
    assert s3_lake.files().exists("access/principals.json")
    with running_serve(env, tmp_path, {"pm-team": token}, tmp_path) as svc:
        status, headers, body = svc.get("/v1/datasets/spindle/versions/1/splits/train", token)
        assert status == 200, body[:300]
        assert headers["X-Maxlake-Content-Hash"] == built["content_hash"]
        status, _, card = svc.get("/v1/datasets/spindle/versions/1/files/README.md", token)
        assert status == 200
        assert b"spindle" in card
        profile = tmp_path / "pm-team.share"
        endpoint = f"http://127.0.0.1:{svc.port}/delta-sharing"
        args = ("--expires", "1d", "--out", str(profile), "--endpoint", endpoint)
        cli_run(env, "access", "profile", "pm-team", *args)
        shared = delta_sharing.load_as_pandas(f"{profile}#curated.spindle.train", version=1)
        audit = svc.audit("pm-team")
    train = pl.read_parquet(io.BytesIO(body))
    assert train.height == len(shared) == again.splits["train"].rows > 0
    assert sorted(train.columns) == sorted(shared.columns)

    token_args = ("--token", token, "--out", str(tmp_path / "pulled"))
    pulled = Path(cli_run(env, "datasets", "pull", "spindle@1", *token_args).strip())
    assert pl.read_parquet(pulled).equals(train)
    assert {"download", "sharing.query", "sharing.file"} <= {row["action"] for row in audit}
    audit_table = DeltaTable(
        s3_lake.uri("ops/audit"), storage_options=dict(s3_lake.storage_options)
    )
    assert audit_table.version() >= 0, "the audit trail is on the S3 lake"
    assert list(work.iterdir()) == [], "nothing of the lake is written to the working folder"
    assert not (tmp_path / "curated").exists()
