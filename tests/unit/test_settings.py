"""Settings come from MAXLAKE_* variables and never show secrets."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

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
