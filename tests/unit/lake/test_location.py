"""One lake location: plain files and Delta tables behave the same on a local folder and on a
real S3 server (moto on loopback), and secrets refuse the object store with one error type."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from lake import DeltaStore, LakeLocation, LocationError, app_id
from lake.access import AccessStore, PrincipalError
from lake.access.decide import access_dir
from lake.curation.build import curated_root
from lake.maintenance import discover_tables
from lake.sharing import ContractError, ContractStore
from lake.sharing.paths import contracts_dir, keys_file
from maxlake.cli import main
from maxlake.settings import Settings
from tests.unit.lake.sharing.helpers import contract_toml


@pytest.fixture(params=["local", "s3"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> LakeLocation:
    if request.param == "local":
        return LakeLocation(str(tmp_path / "lake"))
    s3_lake: LakeLocation = request.getfixturevalue("s3_lake")
    return s3_lake


def test_files_write_read_list_delete(location: LakeLocation) -> None:
    files = location.files()
    assert not files.exists("registry/v1.toml")
    with pytest.raises(FileNotFoundError):
        files.read_bytes("registry/v1.toml")
    files.write_bytes("registry/v1.toml", b"one")
    files.write_bytes("registry/v2.toml", b"two")
    files.write_bytes("registry/v2.toml", b"two again")
    files.write_bytes("registry/old/v0.toml", b"zero")
    assert files.read_bytes("registry/v2.toml") == b"two again"
    assert files.list("registry") == (["old"], ["v1.toml", "v2.toml"])
    assert files.list("nothing-here") == ([], [])
    files.delete("registry/v1.toml")
    files.delete("registry/v1.toml")
    assert not files.exists("registry/v1.toml")


def test_create_mode_never_replaces(location: LakeLocation) -> None:
    files = location.files()
    files.write_bytes("curated/spindle/manifest.json", b"first", mode="create")
    with pytest.raises(FileExistsError):
        files.write_bytes("curated/spindle/manifest.json", b"second", mode="create")
    assert files.read_bytes("curated/spindle/manifest.json") == b"first"


def test_concurrent_updates_lose_nothing(location: LakeLocation) -> None:
    def bump(current: bytes | None) -> bytes:
        count = json.loads(current)["n"] if current else 0
        return json.dumps({"n": count + 1}).encode()

    def writer() -> None:
        files = location.files()
        for _ in range(8):
            files.update("access/principals.json", bump)

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert json.loads(location.files().read_bytes("access/principals.json")) == {"n": 32}


def _batch(first: int, n: int) -> pa.Table:
    return pa.table(
        {
            "tenant": ["t1"] * n,
            "kafka_partition": pa.array([first] * n, pa.int32()),
            "kafka_offset": pa.array(range(n), pa.int64()),
        }
    )


def test_concurrent_delta_appends_from_separate_stores(location: LakeLocation) -> None:
    """Four writers (each its own DeltaStore, as on four machines) append to one table at once:
    every commit lands once, with its app transaction (S3: conditional put, no lock)."""
    DeltaStore(location).append("silver/telemetry", _batch(99, 1), partition_by=["tenant"], txns={})

    def writer(partition: int) -> None:
        store = DeltaStore(location)
        for i in range(5):
            store.append(
                "silver/telemetry",
                _batch(partition, 10),
                partition_by=["tenant"],
                txns={app_id("topic", partition): i},
            )

    threads = [threading.Thread(target=writer, args=(p,)) for p in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store = DeltaStore(location)
    assert store.version("silver/telemetry") == 20
    rows = store.scan_at("silver/telemetry", 20).collect()
    assert rows.height == 1 + 4 * 5 * 10
    assert store.txn_versions("silver/telemetry", [app_id("topic", p) for p in range(4)]) == {
        app_id("topic", p): 4 for p in range(4)
    }
    assert discover_tables(store) == ["silver/telemetry"]


def test_unsupported_scheme_is_one_clear_error() -> None:
    with pytest.raises(LocationError, match="scheme 'ftp' is not supported"):
        LakeLocation("ftp://host/lake")


def test_storage_options_come_from_json_and_secrets_are_masked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    options = {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
        "AWS_SECRET_ACCESS_KEY": "very-s3cret-key",
    }
    monkeypatch.setenv("MAXLAKE_LAKE_ROOT", "s3://bucket/lake")
    monkeypatch.setenv("MAXLAKE_LAKE_STORAGE_OPTIONS", json.dumps(options))
    settings = Settings()
    assert LakeLocation.from_settings(settings).storage_options == options
    shown = settings.as_dict()["lake_storage_options"]
    assert shown["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9000"
    assert shown["AWS_SECRET_ACCESS_KEY"] == "**********"
    assert "very-s3cret-key" not in repr(settings)
    assert "very-s3cret-key" not in str(LakeLocation.from_settings(settings))


def test_pseudonym_keys_refuse_an_object_store_root_and_the_rest_follows_it() -> None:
    settings = Settings(lake_root="s3://bucket/lake")
    with pytest.raises(LocationError, match="MAXLAKE_SHARING_SECRETS_FILE"):
        keys_file(settings)
    assert contracts_dir(settings).root == "s3://bucket/lake/sharing/contracts"
    assert access_dir(settings).root == "s3://bucket/lake/access"
    assert access_dir(Settings(lake_root="s3://b/l", access_dir=Path("/a"))).root == "/a"
    assert curated_root(settings).root == "s3://bucket/lake/curated"
    assert curated_root(Settings(lake_root="s3://b/l", curated_dir="/c")).root == "/c"
    assert keys_file(Settings(lake_root="s3://b/l", sharing_secrets_file=Path("/k.json"))) == Path(
        "/k.json"
    )


def test_principal_add_on_an_object_store_root_writes_to_the_store_only(
    s3_lake: LakeLocation,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _use_lake(monkeypatch, tmp_path, s3_lake.root, s3_lake)
    code = main(["access", "principal", "add", "team-a", "--kind", "model_team"])
    assert code == 0, capsys.readouterr().err
    token = capsys.readouterr().out.split()[-1]
    assert list(tmp_path.iterdir()) == []
    stored = json.loads(s3_lake.files().read_bytes("access/principals.json"))
    assert list(stored["principals"]) == ["team-a"]
    assert token not in json.dumps(stored)
    assert AccessStore(s3_lake.child("access")).authenticate(token) is not None


def test_principals_grants_and_profile_tokens_on_a_location(location: LakeLocation) -> None:
    store = AccessStore(location.child("access"))
    principal, token = store.add("team-a", "model_team")
    store.add("team-b", "model_team")
    store.grant("team-a", "spindle")
    _, profile, _ = store.issue_profile_token("team-a", datetime.now(UTC) + timedelta(days=1))
    again = AccessStore(location.child("access"))
    assert [p.name for p in again.list()] == ["team-a", "team-b"]
    assert again.get("team-a").grants == ("spindle",)
    assert again.authenticate(token) == replace(principal, grants=("spindle",))
    assert again.authenticate(profile) is not None
    again.remove("team-a")
    assert store.authenticate(profile) is None
    assert store.tokens.of("team-a") == []
    with pytest.raises(PrincipalError, match="team-a"):
        store.grant("team-a", "spindle")


def test_contracts_and_revocations_on_a_location(location: LakeLocation) -> None:
    store = ContractStore(location.child("sharing", "contracts"))
    contract = (
        b'id = "nw-pm"\ntenant = "northwind-auto"\npurposes = ["pm"]\n'
        b'[share]\nkinds = ["telemetry"]\n'
    )
    first, second = store.add(contract), store.add(contract)
    assert (first.version, second.version) == (1, 2)
    assert store.raw(second) == contract
    with pytest.raises(ContractError, match="belongs to tenant"):
        store.add(contract.replace(b"northwind-auto", b"ironbridge-steel"))
    store.revoke("nw-pm", 2, reason="one")
    store.revoke("nw-pm", reason="all")
    again = ContractStore(location.child("sharing", "contracts"))
    assert [r.reason for r in again.revocations()] == ["one", "all"]
    assert again.in_force("northwind-auto", "pm") is None
    assert [(c.id, c.version) for c in again.contracts()] == [("nw-pm", 1), ("nw-pm", 2)]


def test_contracts_and_access_dirs_may_be_uris_beside_a_local_lake(
    s3_lake: LakeLocation,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _use_lake(monkeypatch, tmp_path, str(tmp_path / "lake"), s3_lake)
    monkeypatch.setenv("MAXLAKE_CONTRACTS_DIR", s3_lake.uri("shared/contracts/"))
    monkeypatch.setenv("MAXLAKE_ACCESS_DIR", s3_lake.uri("shared/access"))
    (tmp_path / "nw-pm.toml").write_bytes(contract_toml())
    assert main(["contracts", "add", str(tmp_path / "nw-pm.toml")]) == 0, capsys.readouterr().err
    assert main(["access", "principal", "add", "team-a", "--kind", "model_team"]) == 0
    assert not (tmp_path / "lake" / "sharing" / "contracts").exists()
    assert not (tmp_path / "lake" / "access").exists()
    assert not (tmp_path / "s3:").exists()
    assert ContractStore(s3_lake.child("shared", "contracts")).get("nw-pm").version == 1
    assert AccessStore(s3_lake.child("shared", "access")).list()[0].name == "team-a"


def _use_lake(monkeypatch: pytest.MonkeyPatch, cwd: Path, root: str, store: LakeLocation) -> None:
    """Run commands in ``cwd`` on lake ``root`` with the storage options of ``store``."""
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("MAXLAKE_LAKE_ROOT", root)
    monkeypatch.setenv("MAXLAKE_LAKE_STORAGE_OPTIONS", json.dumps(dict(store.storage_options)))
