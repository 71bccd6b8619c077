"""No secret in any log line: ``maxlake -v`` commands against a real secure broker.

kafka-python logs its whole client configuration (``sasl_plain_password`` included) at DEBUG;
the CLI's redaction filter must mask it, and every other registered secret, at every level.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from infra.broker import LocalBroker, free_port
from infra.security import AccessAdmin, generate_password
from maxlake.redact import MASK

pytestmark = pytest.mark.integration

PLANT = "plant-acme-logs"


@dataclass(frozen=True)
class SecureLake:
    broker: LocalBroker
    admin_password: str
    controller_password: str
    plant_password: str
    env: dict[str, str]

    @property
    def secrets(self) -> list[str]:
        return [self.admin_password, self.controller_password, self.plant_password]


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureLake]:
    home = tmp_path_factory.mktemp("secret-logs-kafka")
    port, controller = free_port(), free_port()
    broker = LocalBroker(home, port=port, controller_port=controller, heap_mb=384, secure=True)
    broker.start(timeout_s=90)
    try:
        plant_password = generate_password()
        with AccessAdmin.connect(broker.bootstrap, broker.admin_client_config()) as admin:
            admin.set_password(PLANT, plant_password)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAXLAKE_")}
        env.update(
            {
                "MAXLAKE_BROKER_HOME": str(home),
                "MAXLAKE_BROKER_PORT": str(port),
                "MAXLAKE_CONTROLLER_PORT": str(controller),
                "MAXLAKE_BROKER_SECURE": "true",
                "MAXLAKE_BOOTSTRAP_SERVERS": broker.bootstrap,
                "MAXLAKE_LAKE_ROOT": str(tmp_path_factory.mktemp("secret-logs-lake")),
                "GX_ANALYTICS_ENABLED": "false",
            }
        )
        yield SecureLake(
            broker,
            (home / "admin.password").read_text().strip(),
            (home / "controller.password").read_text().strip(),
            plant_password,
            env,
        )
    finally:
        broker.stop()


def _run(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "maxlake.cli", "-v", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    return done.stdout + done.stderr


def _assert_masked(output: str, secrets: list[str]) -> None:
    leaked = [i for i, s in enumerate(secrets) if s in output]
    assert not leaked, f"secret(s) #{leaked} in the -v output"
    assert "sasl_plain_password" in output, "kafka-python's config dump was not logged"
    assert MASK in output


def test_broker_users_list_logs_no_admin_password(secure: SecureLake) -> None:
    output = _run(secure.env, "broker", "users", "list")
    assert PLANT in output
    _assert_masked(output, secure.secrets)


def test_topics_list_logs_no_sasl_password(secure: SecureLake) -> None:
    env = {
        **secure.env,
        "MAXLAKE_SASL_USERNAME": "admin",
        "MAXLAKE_SASL_PASSWORD": secure.admin_password,
    }
    _assert_masked(_run(env, "topics", "list"), secure.secrets)


def test_status_logs_no_sasl_password(secure: SecureLake) -> None:
    env = {
        **secure.env,
        "MAXLAKE_SASL_USERNAME": PLANT,
        "MAXLAKE_SASL_PASSWORD": secure.plant_password,
    }
    _assert_masked(_run(env, "status"), secure.secrets)
