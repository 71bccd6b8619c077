"""A real single-node Apache Kafka broker (KRaft) for development and tests, without Docker.

The broker jars come from Maven Central (``infra/pom.xml``, fetched by :func:`fetch_jars`); the
broker runs as ``java -cp 'libs/*' kafka.Kafka server.properties`` in its own process group so that
the caller may exit while it keeps running. Everything it owns lives under one *home* directory:
``server.properties`` (rendered from ``server.properties.template``), ``data/``, ``broker.log``
and ``broker.pid``. What :class:`LocalBroker` guarantees:

* ``start`` formats the storage once, starts the JVM and returns only when the broker answers a
  metadata request; on failure it kills what it started and raises with the log's last lines.
* ``start`` on a live broker raises :class:`BrokerAlreadyRunning`; a pid file whose process is gone
  is removed and ignored.
* ``stop`` sends SIGTERM (Kafka's controlled shutdown), escalates to SIGKILL after a timeout and
  leaves no process behind; ``stop`` without a live broker raises :class:`BrokerNotRunning`.

With ``tls`` (a :class:`~infra.tls.TlsFiles`) the client listener speaks TLS: SSL with required
client certificates, or SASL_SSL with ``secure=True``.
With ``secure=True`` the client listener is SASL_PLAINTEXT with SCRAM-SHA-512 and the
StandardAuthorizer denies everything no ACL allows (see :mod:`infra.security`). The admin super
user is created when the storage is formatted; its password is generated once and kept in
``admin.password`` (mode 0600) in the home. A home is formatted for one mode for good: starting it
in the other mode raises :class:`~infra.security.BrokerSecurityError`.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import signal
import socket
import ssl
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.errors import (
    BrokerAlreadyRunning,
    BrokerJarsMissing,
    BrokerNotRunning,
    BrokerStartFailed,
)
from infra.security import (
    ADMIN_USER,
    SCRAM_MECHANISM,
    BrokerSecrets,
    BrokerSecurityError,
    secure_broker_properties,
    write_private_file,
)
from infra.tls import TlsFiles

__all__ = ["BrokerStatus", "LocalBroker", "default_libs_dir", "fetch_jars", "free_port"]

logger = logging.getLogger(__name__)

INFRA_DIR = Path(__file__).resolve().parent
_LOG_TAIL_LINES = 30
_SECURE_MARKER = "secure-mode"


def default_libs_dir() -> Path:
    """Where ``mvn`` copies the broker jars (``infra/.kafka/libs``, ignored by git)."""
    return INFRA_DIR / ".kafka" / "libs"


def fetch_jars(libs_dir: Path | None = None) -> Path:
    """Download the pinned Kafka broker jars with Maven unless they are already there."""
    libs = libs_dir or default_libs_dir()
    if any(libs.glob("kafka_2.13-*.jar")):
        return libs
    cmd = [
        "mvn",
        "-q",
        "-B",
        "-f",
        str(INFRA_DIR / "pom.xml"),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={libs}",
    ]
    logger.info("fetching Kafka broker jars with Maven into %s", libs)
    try:
        subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=900)
    except FileNotFoundError as exc:
        raise BrokerJarsMissing("`mvn` is not on PATH; install Maven 3.8+ to fetch Kafka") from exc
    except subprocess.CalledProcessError as exc:
        raise BrokerJarsMissing(
            f"mvn failed to fetch the Kafka jars:\n{exc.stdout}{exc.stderr}"
        ) from exc
    return libs


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on right now (for throwaway brokers in tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class BrokerStatus:
    """What ``maxlake broker status`` reports."""

    running: bool
    pid: int | None
    bootstrap: str
    answering: bool
    home: Path


class LocalBroker:
    """One local broker bound to a home directory and two ports (client and controller)."""

    def __init__(
        self,
        home: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 9092,
        controller_port: int = 9093,
        heap_mb: int = 512,
        libs_dir: Path | None = None,
        secure: bool = False,
        tls: TlsFiles | None = None,
    ) -> None:
        self.home = home.resolve()
        self.secure = secure
        self.tls = tls
        self.host = host
        self.port = port
        self.controller_port = controller_port
        self.heap_mb = heap_mb
        self.libs_dir = libs_dir or default_libs_dir()

    @property
    def bootstrap(self) -> str:
        """``host:port`` for clients."""
        return f"{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        """The broker's combined stdout/stderr log."""
        return self.home / "broker.log"

    @property
    def admin_password_path(self) -> Path:
        """The file (mode 0600) holding the admin super user's password in secure mode."""
        return self.home / "admin.password"

    def formatted(self) -> bool:
        """Whether this home's storage is formatted (the first ``start`` formats it)."""
        return (self._data_dir / "meta.properties").exists()

    def formatted_secure(self) -> bool:
        """Whether this home's storage was formatted in secure mode."""
        return (self.home / _SECURE_MARKER).exists()

    @property
    def client_protocol(self) -> str:
        """The client listener's security protocol (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL)."""
        if self.tls is None:
            return "SASL_PLAINTEXT" if self.secure else "PLAINTEXT"
        return "SASL_SSL" if self.secure else "SSL"

    def admin_client_config(self) -> dict[str, Any]:
        """kafka-python keyword arguments for the admin of this home; empty for PLAINTEXT."""
        config: dict[str, Any] = {}
        if self.secure or self.formatted_secure():
            config = BrokerSecrets.load_or_create(self.home).admin_client_config()
        if self.tls is not None:
            context = ssl.create_default_context(cafile=str(self.tls.ca))
            context.load_cert_chain(str(self.tls.client_cert), str(self.tls.client_key))
            config.update(security_protocol=self.client_protocol, ssl_context=context)
        return config

    @property
    def _pid_path(self) -> Path:
        return self.home / "broker.pid"

    @property
    def _data_dir(self) -> Path:
        return self.home / "data"

    def pid(self) -> int | None:
        """The pid of the live broker of this home, or None (a stale pid file is removed)."""
        try:
            pid = int(self._pid_path.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        if _alive(pid):
            return pid
        logger.info("removing stale pid file %s (process %d is gone)", self._pid_path, pid)
        self._pid_path.unlink(missing_ok=True)
        return None

    def status(self) -> BrokerStatus:
        """Whether the process lives and whether it answers a metadata request."""
        pid = self.pid()
        answering = pid is not None and _answers_metadata(
            self.bootstrap, 5.0, self.admin_client_config()
        )
        return BrokerStatus(pid is not None, pid, self.bootstrap, answering, self.home)

    def start(
        self, timeout_s: float = 60.0, *, waiting: Callable[[float], None] | None = None
    ) -> int:
        """Start the broker and wait until it answers; returns its pid.

        ``waiting`` is called about once a second with the seconds waited so far.
        """
        pid = self.pid()
        if pid is not None:
            raise BrokerAlreadyRunning(
                f"a broker is already running (pid {pid}) on {self.bootstrap}, home {self.home}"
            )
        if not any(self.libs_dir.glob("kafka_2.13-*.jar")):
            raise BrokerJarsMissing(
                f"no Kafka jars in {self.libs_dir}; run `make broker-jars` (needs Maven)"
            )
        for port in (self.port, self.controller_port):
            if _port_in_use(self.host, port):
                raise BrokerStartFailed(
                    f"port {port} on {self.host} is already in use by another process; "
                    "set MAXLAKE_BROKER_PORT / MAXLAKE_CONTROLLER_PORT to free ports"
                )
        self.home.mkdir(parents=True, exist_ok=True)
        formatted = self.formatted()
        if formatted and self.formatted_secure() != self.secure:
            raise BrokerSecurityError(
                f"the broker home {self.home} was formatted in "
                f"{'secure' if self.formatted_secure() else 'PLAINTEXT'} mode; start it "
                f"{'with' if self.formatted_secure() else 'without'} --secure "
                "(MAXLAKE_BROKER_SECURE), or use another MAXLAKE_BROKER_HOME"
            )
        config = self._write_config()
        if not formatted:
            self._format_storage(config)
        proc = self._launch(config)
        self._pid_path.write_text(f"{proc.pid}\n")
        try:
            self._wait_until_answering(proc, timeout_s, waiting)
        except BrokerStartFailed:
            self._kill(proc.pid)
            self._pid_path.unlink(missing_ok=True)
            raise
        logger.info("broker pid %d answers on %s", proc.pid, self.bootstrap)
        return proc.pid

    def stop(self, timeout_s: float = 30.0) -> int:
        """Stop the live broker (SIGTERM, then SIGKILL after ``timeout_s``); returns its pid."""
        pid = self.pid()
        if pid is None:
            raise BrokerNotRunning(f"no broker is running for home {self.home}")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            logger.warning("broker pid %d ignored SIGTERM for %.0f s; killing it", pid, timeout_s)
            self._kill(pid)
        self._pid_path.unlink(missing_ok=True)
        return pid

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The last lines of the broker log, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no broker log yet)"
        return "\n".join(text.splitlines()[-lines:])

    def _write_config(self) -> Path:
        template = (INFRA_DIR / "server.properties.template").read_text()
        protocol = self.client_protocol
        extra = ""
        if self.secure:
            extra = secure_broker_properties(BrokerSecrets.load_or_create(self.home), protocol)
        if self.tls is not None:
            extra += _tls_properties(self.tls, client_auth="none" if self.secure else "required")
        rendered = template.format(
            host=self.host,
            port=self.port,
            controller_port=self.controller_port,
            data_dir=self._data_dir,
            client_protocol=protocol,
            controller_protocol="SASL_PLAINTEXT" if self.secure else "PLAINTEXT",
            extra=extra,
        )
        path = self.home / "server.properties"
        if self.secure:
            write_private_file(path, rendered)
        else:
            path.write_text(rendered)
        return path

    def _java(self, main_class: str, *args: str) -> list[str]:
        return [
            "java",
            f"-Xmx{self.heap_mb}m",
            f"-Xms{min(self.heap_mb, 256)}m",
            f"-Dlog4j2.configurationFile={INFRA_DIR / 'log4j2.yaml'}",
            "-cp",
            f"{self.libs_dir}/*",
            main_class,
            *args,
        ]

    def _format_storage(self, config: Path) -> None:
        cluster_id = _kafka_uuid()
        cmd = self._java("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(config))
        if self.secure:
            password = BrokerSecrets.load_or_create(self.home).admin_password
            cmd += ["--add-scram", f"{SCRAM_MECHANISM}=[name={ADMIN_USER},password={password}]"]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0:
            raise BrokerStartFailed(
                f"formatting KRaft storage in {self._data_dir} failed:\n"
                f"{_without_bootstrap_records(result.stdout)}{result.stderr}"
            )
        if self.secure:
            (self.home / _SECURE_MARKER).write_text("SASL_PLAINTEXT SCRAM-SHA-512\n")

    def _launch(self, config: Path) -> subprocess.Popen[bytes]:
        log = self.log_path.open("ab")
        try:
            return subprocess.Popen(
                self._java("kafka.Kafka", str(config)),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=self.home,
            )
        finally:
            log.close()

    def _wait_until_answering(
        self,
        proc: subprocess.Popen[bytes],
        timeout_s: float,
        waiting: Callable[[float], None] | None,
    ) -> None:
        started = time.monotonic()
        deadline = started + timeout_s
        told = 0
        while time.monotonic() < deadline:
            if waiting is not None and (waited := time.monotonic() - started) >= told + 1:
                told = int(waited)
                waiting(waited)
            if proc.poll() is not None:
                raise BrokerStartFailed(
                    f"the broker exited with code {proc.returncode} during start-up; "
                    f"last lines of {self.log_path}:\n{self.log_tail()}"
                )
            if _port_in_use(self.host, self.port) and _answers_metadata(
                self.bootstrap, 3.0, self.admin_client_config()
            ):
                return
            time.sleep(0.25)
        raise BrokerStartFailed(
            f"the broker did not answer on {self.bootstrap} within {timeout_s:.0f} s (a "
            "loaded machine can need longer: `maxlake broker start --timeout SECONDS` or "
            f"MAXLAKE_BROKER_START_TIMEOUT_S); last lines of {self.log_path}:\n{self.log_tail()}"
        )

    @staticmethod
    def _kill(pid: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)


def _tls_properties(tls: TlsFiles, *, client_auth: str) -> str:
    """``server.properties`` lines of a TLS client listener with PEM key and CA files."""
    return "\n".join(
        [
            "ssl.keystore.type=PEM",
            f"ssl.keystore.location={tls.broker_pem}",
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={tls.ca}",
            f"ssl.client.auth={client_auth}",
            "",
        ]
    )


def _without_bootstrap_records(output: str) -> str:
    """StorageTool output minus the bootstrap records (they carry the admin's SCRAM keys)."""
    return "\n".join(
        line for line in output.splitlines() if not line.startswith("Bootstrap metadata:")
    )


def _kafka_uuid() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding.

    Like Kafka's own ``Uuid.randomUuid``, never one starting with ``-``: the storage tool's
    argument parser would read it as an option and refuse to format (1 start in 64 failed).
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _answers_metadata(
    bootstrap: str, timeout_s: float, security: dict[str, Any] | None = None
) -> bool:
    """True when the broker returns cluster metadata (a real Kafka request, not just TCP)."""
    from kafka.admin import KafkaAdminClient  # noqa: PLC0415 - lazy: kafka admin client import ~0.7 s
    from kafka.errors import KafkaError  # noqa: PLC0415 - lazy: kafka admin client import ~0.7 s

    admin = None
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap,
            request_timeout_ms=int(timeout_s * 1000),
            client_id="maxlake-broker-probe",
            **(security or {}),
        )
        cluster = admin.describe_cluster()
        return bool(cluster.get("brokers"))
    except (KafkaError, OSError, ValueError):
        return False
    finally:
        if admin is not None:
            admin.close()
