"""A real ``maxlake worker`` of each engine on the secure broker (SASL/SCRAM and ACLs enforced),
with nothing but what ``maxlake broker acls grant-worker`` grants, ingests events into silver."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr

from infra.broker import LocalBroker
from infra.security import AccessAdmin, generate_password, worker_acls
from maxlake.settings import Settings
from streams.producer import PlantProducer
from streams.topics import ensure_topics
from tests.integration.ingest_helpers import (
    IngestEnv,
    assert_expected,
    assert_invariant,
    simulate,
    wait_for_lag_zero,
    workers,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TENANTS = ("circuitry-electronics",)


@dataclass(frozen=True)
class SecureIngestEnv(IngestEnv):
    """An :class:`IngestEnv` whose workers log in as ``user``."""

    user: str = ""
    password: str = ""

    def settings(self) -> Settings:
        update = {"sasl_username": self.user, "sasl_password": SecretStr(self.password)}
        return super().settings().model_copy(update=update)

    def environ(self, worker: str) -> dict[str, str]:
        env = super().environ(worker)
        env.update({"MAXLAKE_SASL_USERNAME": self.user, "MAXLAKE_SASL_PASSWORD": self.password})
        return env


def _admin_settings(broker: LocalBroker, env: IngestEnv) -> Settings:
    return env.settings().model_copy(
        update={
            "sasl_username": "admin",
            "sasl_password": SecretStr(broker.admin_password_path.read_text().strip()),
        }
    )


@pytest.mark.parametrize("engine", ["batch", "stream"])
def test_a_worker_granted_by_grant_worker_ingests_into_silver(
    secure_broker: LocalBroker, unique_name: str, tmp_path: Path, engine: str
) -> None:
    user, password = f"worker-{engine}", generate_password()
    env = SecureIngestEnv(
        secure_broker.bootstrap,
        unique_name,
        tmp_path,
        TENANTS,
        partitions=2,
        engine=engine,
        user=user,
        password=password,
    )
    admin = _admin_settings(secure_broker, env)
    ensure_topics(admin, TENANTS)
    with AccessAdmin.connect(secure_broker.bootstrap, secure_broker.admin_client_config()) as a:
        a.set_password(user, password)
        a.grant(worker_acls(user, topic_prefix=env.name, group_prefix=env.group_id))
    events = simulate(TENANTS, seed=11, duration_s=300, bad_rate=0.05)
    with PlantProducer(admin, spool_dir=tmp_path / "spool", client_id=env.name) as producer:
        for event in events:
            producer.send_raw(event.topic(admin), event.payload, key=event.key)
        producer.flush()

    with workers(env, "secure") as (worker,):
        wait_for_lag_zero(env, [worker], produced=len(events), timeout_s=600)
        assert "AuthorizationFailed" not in worker.log_text(), worker.log_tail()
        assert worker.terminate() == 0, worker.log_tail()

    assert_invariant(env)
    assert_expected(env, events)
