"""The lake on a real S3 server (moto on loopback, conditional writes on): ingest end to end
with the operator's commands on the result, and the live registry on S3 (kill -9 and several
workers on S3 are in test_s3_scale.py). The final check reads the Kafka end offsets with
kafka-python and the Delta tables with deltalake directly, not through the code under test:
every produced offset is in exactly one table, once."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from lake import LakeLocation
from lake.registry_store import registry_source
from lake.sharing import ContractStore, contracts_dir
from maxlake.cli import main
from maxlake.settings import Settings
from streams.topics import list_topics
from tests.integration.ingest_helpers import (
    KINDS,
    IngestEnv,
    assert_each_offset_once,
    assert_expected,
    assert_invariant,
    expected_outcome,
    produce,
    run_cli,
    simulate,
    wait_for_lag_zero,
    workers,
)
from tests.integration.test_onboarding import FRAGMENT as NEW_COMPANY
from tests.integration.test_onboarding import TENANT as NEW_TENANT

pytestmark = pytest.mark.integration

TENANTS = ("voltcell-batteries", "ironbridge-steel")


def _in_process(env: IngestEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    """Give this process the ``MAXLAKE_*`` settings of the test's workers, for :func:`main`."""
    for key in [k for k in os.environ if k.startswith("MAXLAKE_")]:
        monkeypatch.delenv(key)
    for key, value in env.environ("cli").items():
        if key.startswith("MAXLAKE_"):
            monkeypatch.setenv(key, value)


@pytest.mark.parametrize("engine", ["batch", "stream"])
def test_one_worker_ingests_into_an_s3_lake_and_verify_reads_it(
    kafka_bootstrap: str,
    unique_name: str,
    tmp_path: Path,
    s3_lake: LakeLocation,
    engine: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Either engine writes an S3 lake; the operator's commands then work on it, and the lake
    still holds every offset once after compaction, vacuum and a checkpoint.

    ``lake verify`` runs as a process of its own, as an operator runs it; the other commands
    run in this process (:func:`main`, same settings from the environment), which spares a
    Python start-up and the imports of polars, deltalake and GX per command.
    """
    env = IngestEnv(kafka_bootstrap, unique_name, tmp_path, TENANTS, engine=engine, lake=s3_lake)
    env.create_topics()
    events = simulate(TENANTS, seed=13, duration_s=600, bad_rate=0.05)
    produced = produce(env, events)

    with workers(env, "solo") as (worker,):
        wait_for_lag_zero(env, [worker], produced=produced, timeout_s=180)
        assert worker.terminate() == 0, worker.log_tail()

    assert not (tmp_path / "lake").exists(), "nothing may be written to a local lake folder"
    assert_invariant(env)
    assert_expected(env, events)
    assert_each_offset_once(env)
    verify = run_cli(env, "lake", "verify", "--json")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    summary = json.loads(verify.stdout)
    assert summary["ok"] is True
    expected = expected_outcome(events)
    assert summary["runs_consumed"] == {k: expected[k].consumed for k in KINDS}
    _in_process(env, monkeypatch)
    for command in (
        ["status", "--json"],
        ["lake", "status"],
        ["lake", "compact"],
        ["lake", "vacuum", "--retention-hours", "0", "--apply"],
        ["lake", "checkpoint"],
        ["quarantine", "list"],
        ["quarantine", "replay", "--kind", "telemetry", "--dry-run", "--json"],
        ["audit"],
    ):
        capsys.readouterr()
        code = main(command)
        out, err = capsys.readouterr()
        assert code == 0, f"{command}: {out}{err}"
    assert not (tmp_path / "lake").exists(), "nothing may be written to a local lake folder"
    assert_invariant(env)
    assert_each_offset_once(env)


def test_the_live_registry_on_s3_follows_cli_changes_and_onboarding(
    kafka_bootstrap: str,
    unique_name: str,
    tmp_path: Path,
    s3_lake: LakeLocation,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for key, value in {
        "MAXLAKE_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "MAXLAKE_TOPIC_PREFIX": unique_name,
        "MAXLAKE_TOPIC_PARTITIONS": "1",
        "MAXLAKE_LAKE_ROOT": s3_lake.root,
        "MAXLAKE_LAKE_STORAGE_OPTIONS": json.dumps(dict(s3_lake.storage_options)),
        "MAXLAKE_SHARING_SECRETS_FILE": str(tmp_path / "keys.json"),
        "MAXLAKE_REGISTRY_POLL_S": "0.05",
    }.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    worker_side = registry_source(settings)
    assert worker_side.snapshot()[0] == 0

    add = ["registry", "add-machine", "northwind-auto", "stuttgart", "block-l1", "cnc-104"]
    assert main([*add, "--type", "cnc_mill", "--yes", "--reason", "commissioned"]) == 0
    (tmp_path / "newco.toml").write_text(NEW_COMPANY)
    onboard = ["tenants", "onboard", str(tmp_path / "newco.toml"), "--no-broker-security"]
    assert main([*onboard, "--yes", "--reason", "joins"]) == 0, capsys.readouterr().err
    draft = s3_lake.uri("sharing", "drafts", f"{NEW_TENANT}.toml")
    assert f"wrote {draft}" in capsys.readouterr().out
    assert main(["contracts", "add", draft]) == 0, capsys.readouterr().err

    time.sleep(0.1)  # one poll interval of the worker-side reader
    version, registry = worker_side.snapshot()
    assert version == 2
    assert registry.machine_type_of("northwind-auto", "stuttgart", "block-l1", "cnc-104")
    assert registry.machine_type_of(NEW_TENANT, "gyor", "rotor-1", "cnc-1") == "cnc_mill"
    assert s3_lake.files().list("registry")[1] == ["v000001.json", "v000002.json"]
    assert ContractStore(contracts_dir(settings)).get(f"{NEW_TENANT}-draft").tenant == NEW_TENANT
    assert settings.topic_for(NEW_TENANT, "telemetry") in [t.name for t in list_topics(settings)]
    assert main(["registry", "history"]) == 0
    assert "joins" in capsys.readouterr().out
    assert list(work.iterdir()) == [], "nothing of an object-store lake is written locally"
