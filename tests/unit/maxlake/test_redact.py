"""The log redaction filter masks registered secrets in messages, arguments and tracebacks."""

from __future__ import annotations

import logging

import pytest
from pydantic import SecretStr

from maxlake.redact import MASK, SecretMask, register_secret
from maxlake.settings import Settings


def test_settings_secrets_are_masked_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(sasl_username="u", sasl_password=SecretStr("hunter2-very-secret"))
    caplog.handler.addFilter(SecretMask())
    with caplog.at_level(logging.DEBUG, logger="kafka.conn"):
        logging.getLogger("kafka.conn").debug("config %s", settings.kafka_security())
    assert "hunter2-very-secret" not in caplog.text
    assert MASK in caplog.text


def test_tracebacks_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    register_secret(b"\x01\x02\x03\x04")
    caplog.handler.addFilter(SecretMask())
    try:
        bytes.fromhex("01020304 rejected")
    except ValueError:
        logging.getLogger("x").exception("failed with key %s", "01020304")
    assert "01020304" not in caplog.text
