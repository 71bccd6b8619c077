"""Onboarding a company end to end on the secure broker: `maxlake tenants onboard` registers it,
creates its topics, a plant user with prefixed ACLs and a draft contract; its plant produces with
that user, a worker ingests the events into silver, and no other company's principal can read
them."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import TopicAuthorizationFailedError
from pydantic import SecretStr

from infra.broker import LocalBroker
from infra.security import (
    AccessAdmin,
    generate_password,
    plant_acls,
    sasl_client_config,
    worker_acls,
)
from lake.sharing.contract import parse_contract
from streams.producer import PlantProducer
from tests.integration.ingest_helpers import (
    IngestEnv,
    read_table,
    run_cli,
    wait_for_lag_zero,
    workers,
)
from tests.integration.test_secure_worker import SecureIngestEnv

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TENANT = "newco-motors"
FRAGMENT = f"""
[[tenants]]
id = "{TENANT}"
name = "NewCo Motors"
industry = "automotive"

[[tenants.plants]]
id = "gyor"
name = "Gyor e-motor plant"
timezone = "Europe/Budapest"

[[tenants.plants.lines]]
id = "rotor-1"
name = "Rotor machining line 1"
machines = [
  {{ id = "cnc-1", machine_type = "cnc_mill" }},
  {{ id = "cnc-2", machine_type = "cnc_mill" }},
]
"""


def _reading(i: int) -> bytes:
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return orjson.dumps(
        {
            "event_id": f"newco-{i}",
            "schema_version": 1,
            "kind": "telemetry",
            "tenant": TENANT,
            "plant": "gyor",
            "line": "rotor-1",
            "machine": f"cnc-{1 + i % 2}",
            "event_time": now,
            "readings": [{"tag": "spindle_speed", "value": 12000.0 + i, "unit": "rpm"}],
        }
    )


def _read_all(config: dict[str, Any], topic: str) -> list[bytes]:
    consumer = KafkaConsumer(**config, group_id=None, consumer_timeout_ms=3000)
    try:
        consumer.assign([TopicPartition(topic, 0)])
        consumer.seek_to_beginning()
        return [message.value for message in consumer]
    finally:
        consumer.close()


def test_a_new_company_is_onboarded_produces_and_stays_private(
    secure_broker: LocalBroker, unique_name: str, tmp_path: Path
) -> None:
    admin_password = secure_broker.admin_password_path.read_text().strip()
    worker_user, worker_password = f"w-{uuid.uuid4().hex[:8]}", generate_password()
    env = SecureIngestEnv(
        secure_broker.bootstrap,
        unique_name,
        tmp_path,
        (TENANT,),
        partitions=1,
        engine="batch",
        user=worker_user,
        password=worker_password,
    )
    fragment = tmp_path / "newco.toml"
    fragment.write_text(FRAGMENT)
    plant_user = f"p-{uuid.uuid4().hex[:8]}"
    admin_env = ("--plant-user", plant_user)

    dry = _cli_as_admin(env, admin_password, "tenants", "onboard", str(fragment), *admin_env)
    assert dry.returncode == 0, dry.stderr
    assert "+ tenant newco-motors" in dry.stdout
    assert "dry run" in dry.stderr
    done = _cli_as_admin(
        env,
        admin_password,
        "tenants",
        "onboard",
        str(fragment),
        *admin_env,
        "--yes",
        "--reason",
        "NewCo joins the alliance",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "stored registry version 1" in done.stdout
    assert "created 3 topic(s)" in done.stdout
    found = re.search(rf"user {plant_user}: password (\S+)", done.stdout)
    assert found, done.stdout
    plant_password = found.group(1)
    draft = parse_contract(
        (env.lake_root / "sharing" / "drafts" / f"{TENANT}.toml").read_bytes(), source="draft"
    )
    assert (draft.tenant, draft.tags, draft.release) == (TENANT, (), ())

    with AccessAdmin.connect(secure_broker.bootstrap, secure_broker.admin_client_config()) as a:
        a.set_password(worker_user, worker_password)
        a.grant(worker_acls(worker_user, topic_prefix=env.name, group_prefix=env.group_id))
        other_user, other_password = f"o-{uuid.uuid4().hex[:8]}", generate_password()
        a.set_password(other_user, other_password)
        a.grant(plant_acls(other_user, topic_prefix=env.name, tenant="northwind-auto"))

    topic = env.settings().topic_for(TENANT, "telemetry")
    plant_settings = env.settings().model_copy(
        update={"sasl_username": plant_user, "sasl_password": SecretStr(plant_password)}
    )
    with PlantProducer(plant_settings, spool_dir=tmp_path / "spool", client_id=plant_user) as p:
        for i in range(10):
            p.send_raw(topic, _reading(i), key=f"cnc-{1 + i % 2}".encode())
        p.flush()

    with workers(env, "newco") as (worker,):
        wait_for_lag_zero(env, [worker], produced=10, timeout_s=240)
        assert worker.terminate() == 0, worker.log_tail()
    silver = read_table(env, "silver/telemetry", ["tenant", "machine"])
    assert silver.height == 10
    assert set(silver["tenant"].to_list()) == {TENANT}
    assert read_table(env, "quarantine/telemetry", ["reasons"]).height == 0

    bootstrap = {"bootstrap_servers": secure_broker.bootstrap}
    for user, password in ((other_user, other_password), (plant_user, plant_password)):
        try:
            values = _read_all({**bootstrap, **sasl_client_config(user, password)}, topic)
        except TopicAuthorizationFailedError:
            values = []
        assert values == [], f"{user} read {len(values)} NewCo messages"
    admin = {**bootstrap, **sasl_client_config("admin", admin_password)}
    assert len(_read_all(admin, topic)) == 10


def _cli_as_admin(env: SecureIngestEnv, admin_password: str, *args: str) -> Any:
    environ = env.environ("cli")
    environ.update(
        {
            "MAXLAKE_SASL_USERNAME": "admin",
            "MAXLAKE_SASL_PASSWORD": admin_password,
            "MAXLAKE_TOPIC_PARTITIONS": "1",
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "maxlake.cli", *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_onboarding_checks_credentials_before_any_change_and_a_stopped_one_resumes(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    env = IngestEnv(kafka_bootstrap, unique_name, tmp_path, (TENANT,), partitions=1)
    fragment = tmp_path / "newco.toml"
    fragment.write_text(FRAGMENT)
    draft = env.lake_root / "sharing" / "drafts" / f"{TENANT}.toml"

    for yes in ((), ("--yes", "--reason", "NewCo joins")):
        refused = run_cli(env, "tenants", "onboard", str(fragment), *yes)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "no administrator credentials" in refused.stderr
        assert "--no-broker-security" in refused.stderr
        assert "Nothing was changed" in refused.stderr
    listed = run_cli(env, "tenants", "list")
    assert TENANT not in listed.stdout, listed.stdout
    assert not draft.exists()

    stopped = run_cli(env, "registry", "apply", str(fragment), "--yes", "--reason", "NewCo joins")
    assert stopped.returncode == 0, stopped.stderr
    for attempt in range(2):
        resumed = run_cli(
            env,
            "tenants",
            "onboard",
            str(fragment),
            "--yes",
            "--reason",
            "NewCo joins",
            "--no-broker-security",
            "--resume",
        )
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert "resuming an onboarding that stopped" in resumed.stdout
        assert "stored registry version" not in resumed.stdout
        assert f"created {3 if attempt == 0 else 0} topic(s)" in resumed.stdout
        assert ("wrote " if attempt == 0 else "kept ") in resumed.stdout
        closing = resumed.stdout.splitlines()[-1]
        assert "password" not in closing, "no plant user exists without broker security"
        assert "without --tenant read the new tenant's topics" in closing
    assert parse_contract(draft.read_bytes(), source="draft").tenant == TENANT

    again = run_cli(env, "tenants", "onboard", str(fragment), "--no-broker-security")
    assert again.returncode == 1
    assert "to finish an onboarding of it that stopped, add --resume" in again.stderr
    changed = tmp_path / "changed.toml"
    changed.write_text(FRAGMENT.replace('id = "cnc-2"', 'id = "cnc-3"'))
    refused = run_cli(env, "tenants", "onboard", str(changed), "--no-broker-security", "--resume")
    assert refused.returncode == 1
    assert "already in registry version 1" in refused.stderr
    assert "--resume" not in refused.stderr
