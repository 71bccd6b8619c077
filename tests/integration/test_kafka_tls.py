"""Kafka over TLS: a local broker with a TLS client listener and a throwaway CA made here.

SASL_SSL (SCRAM-SHA-512 over TLS): a plant producer sends, a worker process ingests into the lake
and the accounting holds; a client without the CA is refused. SSL with client certificates
(mutual TLS), started by `maxlake broker start --tls`: `broker status` and the admin clients
connect with the certificate it prints, and without it (or without TLS) fail.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from infra.broker import LocalBroker, free_port
from infra.security import AccessAdmin, generate_password, plant_acls
from infra.tls import TlsFiles, make_throwaway_tls
from maxlake.cli import main
from maxlake.settings import Settings
from streams.offsets import group_offsets
from streams.topics import ensure_topics
from tests.integration.ingest_helpers import (
    IngestEnv,
    assert_expected,
    assert_invariant,
    produce,
    simulate,
    wait_for_lag_zero,
    workers,
)

pytestmark = pytest.mark.integration

TENANT = "voltcell-batteries"
PLANT = "plant-volt-1"


def _broker(home: Path, tls: TlsFiles, *, secure: bool) -> Iterator[LocalBroker]:
    broker = LocalBroker(
        home, port=free_port(), controller_port=free_port(), heap_mb=384, secure=secure, tls=tls
    )
    broker.start(timeout_s=120)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_throwaway_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def sasl_ssl_broker(
    tmp_path_factory: pytest.TempPathFactory, tls_files: TlsFiles
) -> Iterator[LocalBroker]:
    yield from _broker(tmp_path_factory.mktemp("sasl-ssl-kafka"), tls_files, secure=True)


def test_ingest_over_sasl_ssl(
    sasl_ssl_broker: LocalBroker, tls_files: TlsFiles, unique_name: str, tmp_path: Path
) -> None:
    broker = sasl_ssl_broker
    assert broker.client_protocol == "SASL_SSL"
    admin_password = broker.admin_password_path.read_text().strip()
    admin_env = (
        ("MAXLAKE_KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
        ("MAXLAKE_SASL_USERNAME", "admin"),
        ("MAXLAKE_SASL_PASSWORD", admin_password),
        ("MAXLAKE_SSL_CAFILE", str(tls_files.ca)),
    )
    env = IngestEnv(
        broker.bootstrap, unique_name, tmp_path, (TENANT,), engine="batch", kafka_env=admin_env
    )
    env.create_topics()
    plant_password = generate_password()
    with AccessAdmin.connect(broker.bootstrap, broker.admin_client_config()) as admin:
        admin.set_password(PLANT, plant_password)
        admin.grant(plant_acls(PLANT, topic_prefix=unique_name, tenant=TENANT))
    plant = IngestEnv(
        broker.bootstrap,
        unique_name,
        tmp_path / "plant",
        (TENANT,),
        kafka_env=(
            ("MAXLAKE_KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
            ("MAXLAKE_SASL_USERNAME", PLANT),
            ("MAXLAKE_SASL_PASSWORD", plant_password),
            ("MAXLAKE_SSL_CAFILE", str(tls_files.ca)),
        ),
    )
    events = simulate((TENANT,), seed=5, duration_s=300, bad_rate=0.05)
    produced = produce(plant, events)

    with workers(env, "tls") as (worker,):
        wait_for_lag_zero(env, [worker], produced=produced, timeout_s=180)
        assert worker.terminate() == 0, worker.log_tail()
    assert_invariant(env)
    assert_expected(env, events)

    without_ca = Settings(
        bootstrap_servers=broker.bootstrap,
        kafka_security_protocol="SASL_SSL",
        sasl_username="admin",
        sasl_password=admin_password,
    )
    assert TENANT in str(_admin(env.settings()).list_topics())
    with pytest.raises(KafkaError):
        _admin(without_ca).list_topics()


REFUSAL_WAIT_MS = 10_000
"""How long a client may try to bootstrap (kafka-python's default is 30 s per client). The same
bound lets the clients with the right settings in, so a refusal within it is a refusal."""


def _admin(settings: Settings) -> KafkaAdminClient:
    return KafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers,
        request_timeout_ms=5000,
        bootstrap_timeout_ms=REFUSAL_WAIT_MS,
        **settings.kafka_security(),
    )


def test_broker_start_tls_serves_clients_with_the_certificate_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    for name, value in {
        "MAXLAKE_BROKER_HOME": str(tmp_path / "ssl-kafka"),
        "MAXLAKE_BROKER_PORT": str(port),
        "MAXLAKE_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}",
        "MAXLAKE_CONTROLLER_PORT": str(free_port()),
        "MAXLAKE_BROKER_HEAP_MB": "384",
    }.items():
        monkeypatch.setenv(name, value)
    assert main(["broker", "start", "--tls", "--timeout", "120"]) == 0
    try:
        started = capsys.readouterr().out
        shown = dict(w.split("=", 1) for w in started.split("clients:", 1)[1].split())
        assert shown["MAXLAKE_KAFKA_SECURITY_PROTOCOL"] == "SSL"
        for name, value in shown.items():
            monkeypatch.setenv(name, value)
        assert main(["broker", "status"]) == 0
        settings = Settings(topic_partitions=2)
        ensure_topics(settings, [TENANT], ["telemetry"])
        topic = settings.topic_for(TENANT, "telemetry")
        assert [p.partition for p in group_offsets(settings, [topic])] == [0, 1]
        assert TENANT in str(_admin(settings).list_topics())
        for refused in (
            Settings(ssl_certfile=None, ssl_keyfile=None),
            Settings(kafka_security_protocol="PLAINTEXT"),
        ):
            with pytest.raises(KafkaError):
                _admin(refused).list_topics()
    finally:
        assert main(["broker", "stop"]) == 0
