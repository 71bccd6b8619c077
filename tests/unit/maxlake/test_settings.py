"""Settings come from MAXLAKE_* variables and never show secrets."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from pydantic import ValidationError

from infra.tls import make_throwaway_tls
from maxlake.cli.failures import settings_problems
from maxlake.errors import ConfigError
from maxlake.settings import Settings


def test_environment_overrides_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAXLAKE_BOOTSTRAP_SERVERS", "kafka-1:9092,kafka-2:9092")
    monkeypatch.setenv("MAXLAKE_BATCH_MAX_EVENTS", "20000")
    settings = Settings()
    assert settings.bootstrap_servers == "kafka-1:9092,kafka-2:9092"
    assert settings.batch_max_events == 20000
    assert settings.topic_for("northwind-auto", "telemetry") == "maxlake.northwind-auto.telemetry"


def test_secrets_are_masked() -> None:
    settings = Settings(sasl_username="plant-1", sasl_password="s3cret")
    assert "s3cret" not in str(settings.as_dict())
    assert "s3cret" not in repr(settings)
    assert settings.kafka_security()["sasl_plain_password"] == "s3cret"


def test_invalid_value_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAXLAKE_TOPIC_PARTITIONS", "0")
    with pytest.raises(ValidationError, match="topic_partitions"):
        Settings()


def test_kafka_security_speaks_tls_with_and_without_sasl(tmp_path: Path) -> None:
    tls = make_throwaway_tls(tmp_path)
    sasl_ssl = Settings(
        kafka_security_protocol="SASL_SSL",
        sasl_username="ingest",
        sasl_password="pw-s3cret",
        sasl_mechanism="PLAIN",
        ssl_cafile=tls.ca,
    ).kafka_security()
    assert sasl_ssl["security_protocol"] == "SASL_SSL"
    assert sasl_ssl["sasl_mechanism"] == "PLAIN"
    assert isinstance(sasl_ssl["ssl_context"], ssl.SSLContext)
    mutual = Settings(
        kafka_security_protocol="SSL",
        ssl_cafile=tls.ca,
        ssl_certfile=tls.client_cert,
        ssl_keyfile=tls.client_key,
    ).kafka_security()
    assert set(mutual) == {"security_protocol", "ssl_context"}
    assert Settings().kafka_security() == {}
    assert Settings(sasl_username="u").kafka_security()["security_protocol"] == "SASL_PLAINTEXT"


def test_kafka_security_errors_name_the_settings(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="MAXLAKE_SASL_USERNAME"):
        Settings(kafka_security_protocol="SASL_SSL").kafka_security()
    with pytest.raises(ConfigError, match="MAXLAKE_SSL_CAFILE"):
        Settings(kafka_security_protocol="SSL", ssl_cafile=tmp_path / "nope.pem").kafka_security()


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("s3://bucket/lake/contracts/", "s3://bucket/lake/contracts"),
        ("gs://bucket/c", "gs://bucket/c"),
        ("relative/contracts", "relative/contracts"),
    ],
)
def test_contracts_and_access_dirs_are_a_path_or_a_uri(value: str, stored: str) -> None:
    settings = Settings(contracts_dir=value, access_dir=value)
    assert (settings.contracts_dir, settings.access_dir) == (stored, stored)
    assert Settings(access_dir=Path("/srv/access")).access_dir == "/srv/access"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("ftp://host/contracts", "scheme 'ftp' is not supported"),
        ("s3:/bucket/contracts", "is not a URI (write s3://bucket/prefix)"),
        ("s3://", "names no bucket"),
        ("", "is empty"),
    ],
)
@pytest.mark.parametrize("variable", ["MAXLAKE_CONTRACTS_DIR", "MAXLAKE_ACCESS_DIR"])
def test_a_bad_location_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, problem: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as info:
        Settings()
    assert f"{variable} " in str(info.value)
    assert problem in str(info.value)


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"MAXLAKE_CORRUPT_FETCH_ATTEMPTS": "0"}, "MAXLAKE_CORRUPT_FETCH_ATTEMPTS: "),
        ({"MAXLAKE_CORRUPT_FETCH_RECHECK_S": "inf"}, "MAXLAKE_CORRUPT_FETCH_RECHECK_S: "),
        ({"MAXLAKE_CORRUPT_FETCH_FIRST_WAIT_S": "-1"}, "MAXLAKE_CORRUPT_FETCH_FIRST_WAIT_S: "),
        (
            {"MAXLAKE_CORRUPT_FETCH_FIRST_WAIT_S": "5", "MAXLAKE_CORRUPT_FETCH_MAX_WAIT_S": "2"},
            "MAXLAKE_CORRUPT_FETCH_MAX_WAIT_S: must be at least "
            "MAXLAKE_CORRUPT_FETCH_FIRST_WAIT_S (5 s), the first wait; got 2 s",
        ),
    ],
)
def test_bad_corrupt_fetch_limits_name_the_setting(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], problem: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as info:
        Settings()
    assert problem in settings_problems(info.value)


def test_corrupt_fetch_limits_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MAXLAKE_CORRUPT_FETCH_ATTEMPTS", "3")
    monkeypatch.setenv("MAXLAKE_CORRUPT_FETCH_RECHECK_S", "15")
    settings = Settings()
    assert (settings.corrupt_fetch_attempts, settings.corrupt_fetch_recheck_s) == (3, 15.0)
    assert (settings.corrupt_fetch_first_wait_s, settings.corrupt_fetch_max_wait_s) == (1.0, 30.0)
