"""One settings object for the whole system, read from ``MAXLAKE_*`` environment variables.

Every component receives the values it needs from a :class:`Settings` instance built once by the
command line (or by the caller of the Python API); nothing else reads the environment. Defaults
are for a laptop: a local broker on 127.0.0.1:9092 and a lake under ``./.lake``.
"""

from __future__ import annotations

import os
import re
import ssl
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from maxlake.errors import ConfigError
from maxlake.locations import normalize_location
from maxlake.redact import register_secret


def _fspath(value: object) -> object:
    return os.fspath(value) if isinstance(value, os.PathLike) else value


def _location(value: str, info: ValidationInfo) -> str:
    return normalize_location(value, what=f"MAXLAKE_{(info.field_name or 'location').upper()}")


Location = Annotated[str, BeforeValidator(_fspath), AfterValidator(_location)]
"""A local path (a :class:`~pathlib.Path` is accepted) or an object-store URI, normalised by
:func:`maxlake.locations.normalize_location`; a bad value names its ``MAXLAKE_*`` variable."""

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
REFERENCE_PATTERN = rf"^{_NAME}(\.{_NAME})*:{_NAME}$"
"""Grammar of a plug-in reference ``package.module:name`` (``MAXLAKE_SINK``)."""

JEMALLOC_DECAY_MS_MAX = 86_400_000
"""The longest ``MAXLAKE_WORKER_JEMALLOC_DECAY_MS``: a day. jemalloc refuses a decay time it
cannot hold (from ~1.8e13 ms) with a bare ``<jemalloc>: Invalid conf value`` line on stderr and
keeps its own; longer than a day is never useful between two Delta writes."""
KEEP_FREE_MIB_MAX = 1 << 20
"""The largest ``MAXLAKE_MEMORY_KEEP_FREE_MIB``: 1 TiB (more than any worker's memory)."""
MMAP_THRESHOLD_KIB_MAX = 32 << 10
"""The largest ``MAXLAKE_MEMORY_MMAP_THRESHOLD_KIB``: 32 MiB, as high as glibc's own sliding
threshold goes on 64-bit (``DEFAULT_MMAP_THRESHOLD_MAX``); above it nearly every buffer of a
batch comes from the shared heaps, as with 0."""


def check_reference(value: str) -> str:
    """``value`` if it is a ``package.module:name`` reference.

    Raises:
        ValueError: naming the expected form.
    """
    if not re.fullmatch(REFERENCE_PATTERN, value):
        raise ValueError(f"{value!r} is not a reference; write package.module:factory")
    return value


class Settings(BaseSettings):
    """All maxlake settings. Environment variable = ``MAXLAKE_`` + field name in upper case."""

    model_config = SettingsConfigDict(env_prefix="MAXLAKE_", frozen=True, extra="ignore")

    # Kafka
    bootstrap_servers: str = Field(
        "127.0.0.1:9092", description="Kafka bootstrap servers, comma-separated host:port"
    )
    topic_prefix: str = Field("maxlake", description="first segment of every topic name")
    topic_partitions: int = Field(4, ge=1, description="partitions per topic at creation")
    topic_retention_hours: int = Field(168, ge=1, description="topic retention in hours")
    sasl_username: str | None = Field(None, description="SASL user; None = no SASL")
    sasl_password: SecretStr | None = Field(None, description="SASL password")
    sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = Field(
        "SCRAM-SHA-512", description="SASL mechanism (PLAIN only over TLS in production)"
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] | None = (
        Field(
            None,
            description="Kafka security protocol; None = SASL_PLAINTEXT with a SASL user, "
            "else PLAINTEXT",
        )
    )
    ssl_cafile: Path | None = Field(
        None, description="PEM CA bundle that signed the brokers' certificates; None = system CAs"
    )
    ssl_certfile: Path | None = Field(None, description="client certificate (PEM) for mutual TLS")
    ssl_keyfile: Path | None = Field(None, description="client private key (PEM) for mutual TLS")
    ssl_key_password: SecretStr | None = Field(None, description="password of ssl_keyfile")
    ssl_check_hostname: bool = Field(
        True, description="check that the broker certificate names the host connected to"
    )

    # Local broker managed by `maxlake broker`
    broker_host: str = Field("127.0.0.1", description="address the local broker listens on")
    broker_port: int = Field(9092, ge=1, le=65535, description="client port of the local broker")
    controller_port: int = Field(9093, ge=1, le=65535, description="KRaft controller port")
    broker_home: Path = Field(Path(".maxlake/broker"), description="data, log and pid directory")
    broker_heap_mb: int = Field(512, ge=128, description="broker JVM heap in MiB")
    broker_start_timeout_s: float = Field(60.0, gt=0, description="seconds to wait for start")
    broker_secure: bool = Field(False, description="local broker: SASL/SCRAM and ACLs on")

    # Lake
    lake_root: Location = Field(
        ".lake", description="lake root: a local path or an object-store URI"
    )
    lake_storage_options: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="object-store options of the lake root as JSON, delta-rs keys "
        '(e.g. {"AWS_ENDPOINT_URL": "...", "AWS_REGION": "...", "AWS_ACCESS_KEY_ID": "..."}); '
        "values whose key names a secret are masked in logs and `maxlake config`",
    )
    registry_file: Path | None = Field(
        None,
        description="a fixed asset registry TOML file; None = the live registry under "
        "<lake_root>/registry (changed with `maxlake registry`)",
    )
    registry_poll_s: float = Field(
        5.0,
        gt=0,
        description="seconds between a worker's checks for a new registry version (the bound "
        "on how long a registry change takes to reach validation, plus one batch)",
    )

    # Ingest worker
    group_id: str = Field("maxlake-ingest", description="consumer group of the ingest workers")
    ingest_engine: Literal["stream", "batch"] = Field(
        "batch",
        description="batch = aiokafka getmany in a Faust task (the default, several times faster); "
        "stream = Faust agents (noack_take)",
    )
    sink: Annotated[str, AfterValidator(check_reference)] | None = Field(
        None,
        description="where the ingest workers write: 'package.module:factory', a callable "
        "taking the Settings and returning a lake.sink.Sink (docs/EXTENDING.md, 'Add a sink'); "
        "unset = the Delta lake under lake_root",
    )
    broker_wait_s: float = Field(
        0.0,
        ge=0,
        description="seconds a starting worker waits for an unreachable broker (one log line "
        "per attempt) before it exits with an error; 0 = wait until it answers",
    )
    worker_stop_timeout_s: float = Field(
        20.0,
        gt=0,
        description="seconds a worker may take to stop after SIGTERM/SIGINT before it exits "
        "anyway (its uncommitted batch is read again on the next start)",
    )
    broker_session_timeout_s: float = Field(
        30.0,
        ge=1,
        description="consumer session timeout: how long a dead worker keeps its partitions",
    )
    broker_rebalance_timeout_s: float = Field(
        300.0,
        ge=1,
        description="how long the group waits in a rebalance for a live worker to finish and "
        "commit the batches it holds (its lake writes) before dropping it; also the longest a "
        "batch engine worker may go without fetching (Kafka's max.poll.interval)",
    )
    batch_max_events: int = Field(
        50_000, ge=1, description="events per micro-batch at most (tuned by bench_ingest.py)"
    )
    batch_wait_s: float = Field(1.0, gt=0, description="seconds to wait to fill a micro-batch")
    arrow_memory_pool: Literal["system", "mimalloc", "jemalloc"] = Field(
        "system",
        description="Arrow's memory pool in a batch worker ('system': glibc malloc, trimmed "
        "after each batch; pyarrow's own default is mimalloc)",
    )
    worker_jemalloc_decay_ms: int = Field(
        1000,
        ge=0,
        le=JEMALLOC_DECAY_MS_MAX,
        json_schema_extra={"unit": "milliseconds"},
        description="milliseconds deltalake's jemalloc keeps memory a Delta write freed for the "
        "next write in a worker (its dirty_decay_ms; muzzy pages are not kept); 0 = handed back "
        "at once (twice the page faults, no lower peak measured). Decay times named in "
        "_RJEM_MALLOC_CONF win; at most 86,400,000 (a day: jemalloc ignores values it cannot "
        "hold, silently for this setting)",
    )
    memory_keep_free_mib: int = Field(
        0,
        ge=0,
        le=KEEP_FREE_MIB_MAX,
        json_schema_extra={"unit": "MiB"},
        description="a batch worker hands freed memory back to the system (malloc_trim, Arrow's "
        "release_unused) after a written batch only once its resident memory has grown more "
        "than this many MiB since it last did; up to that much stays mapped for the next batch "
        "(fewer page faults); 0 = after every batch; more than the machine's memory = never "
        "(resident memory only grows); at most 1,048,576 (1 TiB)",
    )
    memory_mmap_threshold_kib: int = Field(
        256,
        ge=0,
        le=MMAP_THRESHOLD_KIB_MAX,
        json_schema_extra={"unit": "KiB"},
        description="a batch worker's glibc allocations of at least this many KiB get pages of "
        "their own, handed back to the system the moment they are freed (glibc's "
        "M_MMAP_THRESHOLD); smaller ones come from the shared heaps. 0 = glibc's own sliding "
        "threshold (it rises up to 32 MiB, so a batch's large buffers stay in the heaps until "
        "trimmed: ~90 MiB higher peak, fewer page faults), or the one glibc's environment "
        "sets (MALLOC_MMAP_THRESHOLD_ or glibc.malloc.mmap_threshold in GLIBC_TUNABLES, in "
        "bytes), which a value above 0 replaces; at most 32,768 (32 MiB)",
    )
    dedupe_horizon_days: int = Field(
        7, ge=0, description="days back the writer looks for resent event_ids in silver"
    )
    max_message_bytes: int = Field(256 * 1024, ge=1024, description="larger payloads are rejected")
    max_event_age_days: int = Field(400, ge=1, description="older event times are rejected")
    max_future_skew_s: int = Field(300, ge=0, description="event times further ahead are rejected")
    compact_interval_s: float = Field(
        0.0,
        ge=0,
        description="seconds between the worker's compactions of closed partitions; 0 = off",
    )
    metrics_port: int = Field(0, ge=0, le=65535, description="Prometheus port; 0 = disabled")
    lake_retry_initial_s: float = Field(
        1.0, gt=0, description="first wait before retrying a batch the lake refused, seconds"
    )
    lake_retry_max_s: float = Field(
        30.0, gt=0, description="longest wait between retries of a batch the lake refused"
    )
    corrupt_fetch_attempts: int = Field(
        5,
        ge=1,
        le=1000,
        description="batch engine: fetches of the same corrupt record batch before the broker's "
        "copy is taken for damaged and the partition held (docs/OPERATIONS.md, 'A corrupt "
        "record batch')",
    )
    corrupt_fetch_first_wait_s: float = Field(
        1.0,
        gt=0,
        allow_inf_nan=False,
        description="batch engine: wait before fetching a corrupt batch again, seconds; "
        "doubled per attempt",
    )
    corrupt_fetch_max_wait_s: float = Field(
        30.0,
        gt=0,
        allow_inf_nan=False,
        description="batch engine: longest wait between two fetches of a corrupt batch, seconds",
    )
    corrupt_fetch_recheck_s: float = Field(
        60.0,
        gt=0,
        allow_inf_nan=False,
        description="batch engine: once a corrupt batch is held, seconds between two fetches "
        "of it (the partition resumes by itself once it is intact or deleted)",
    )
    faust_datadir: Path = Field(
        Path(".maxlake/faust"),
        description="the worker's Faust state directory (created with its parents at start)",
    )
    metrics_host: str = Field(
        "127.0.0.1", description="address the Prometheus endpoint binds; 0.0.0.0 = every interface"
    )

    # Plant producer
    spool_dir: Path = Field(Path(".maxlake/spool"), description="store-and-forward spool directory")

    # Sharing between companies, access control and the dataset service
    contracts_dir: Location | None = Field(
        None,
        description="sharing contracts folder: a local path or an object-store URI (reached "
        "with the lake's storage options); None = <lake_root>/sharing/contracts",
    )
    sharing_secrets_file: Path | None = Field(
        None,
        description="JSON file of per-contract pseudonym keys (mode 0600, outside the repository); "
        "None = <lake_root>/sharing/secrets.json",
    )
    sharing_min_group_size: int = Field(
        2,
        ge=1,
        description="a machine type contributed by fewer tenants than this is suppressed "
        "(contracts with suppress_rare); 1 = off",
    )
    curated_dir: Location | None = Field(
        None,
        description="curated datasets folder: a local path or an object-store URI (reached "
        "with the lake's storage options); None = <lake_root>/curated",
    )
    curated_cache_dir: Path = Field(
        Path(".maxlake/curated-cache"),
        description="local copies of split files read from an object-store curated area "
        "(named by sha256, checked before use; safe to delete)",
    )
    access_dir: Location | None = Field(
        None,
        description="principals, grants and profile tokens folder: a local path or an "
        "object-store URI (reached with the lake's storage options); None = <lake_root>/access",
    )
    data_docs_dir: Path = Field(
        Path(".maxlake/data_docs"),
        description="Great Expectations Data Docs site (local; relative paths from the working "
        "directory): `maxlake quality docs` writes it, `maxlake serve` serves it read-only to "
        "data engineers",
    )
    token: SecretStr | None = Field(None, description="principal token for `datasets pull`")
    server_host: str = Field("127.0.0.1", description="address `maxlake serve` listens on")
    auth_backoff_failures: int = Field(
        5, ge=1, description="failed tokens of one key id or address before it is refused (429)"
    )
    auth_backoff_window_s: float = Field(
        60.0, gt=0, description="seconds over which failed tokens are counted"
    )
    server_port: int = Field(8470, ge=0, le=65535, description="port of `maxlake serve`")
    share_name: str = Field(
        "curated",
        pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$",
        description="Delta Sharing: the one share each principal sees (its granted datasets)",
    )
    share_endpoint: str | None = Field(
        None,
        description="Delta Sharing endpoint as recipients reach it (profiles, file URLs); "
        "None = http://<server_host>:<server_port>/delta-sharing",
    )
    share_url_ttl_s: int = Field(
        900, ge=10, le=7 * 86400, description="lifetime of a signed file URL, in seconds"
    )
    share_url_key: SecretStr | None = Field(
        None,
        description="HMAC key signing file URLs (share it between replicas); "
        "None = a random key per `maxlake serve` process",
    )

    def model_post_init(self, context: Any, /) -> None:
        """Register every secret setting with the log redaction (:mod:`maxlake.redact`)."""
        del context
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                register_secret(value.get_secret_value())
        for key, option in self.lake_storage_options.items():
            if _is_secret_option(key):
                register_secret(option.get_secret_value())

    def topic_for(self, tenant: str, kind: str) -> str:
        """The topic of one tenant's events of one kind: ``<prefix>.<tenant>.<kind>``."""
        return f"{self.topic_prefix}.{tenant}.{kind}"

    def security_protocol(self) -> str:
        """``MAXLAKE_KAFKA_SECURITY_PROTOCOL``, or SASL_PLAINTEXT/PLAINTEXT by the SASL user.

        Raises:
            ConfigError: a SASL protocol without ``MAXLAKE_SASL_USERNAME``.
        """
        protocol = self.kafka_security_protocol or (
            "PLAINTEXT" if self.sasl_username is None else "SASL_PLAINTEXT"
        )
        if protocol.startswith("SASL_") and self.sasl_username is None:
            raise ConfigError(
                f"MAXLAKE_KAFKA_SECURITY_PROTOCOL is {protocol}: set MAXLAKE_SASL_USERNAME "
                "and MAXLAKE_SASL_PASSWORD"
            )
        return protocol

    def kafka_ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of SSL and SASL_SSL connections; None without TLS.

        Raises:
            ConfigError: a CA, certificate or key file is missing or unreadable.
        """
        if not self.security_protocol().endswith("SSL"):
            return None
        try:
            context = ssl.create_default_context(
                cafile=str(self.ssl_cafile) if self.ssl_cafile else None
            )
            if self.ssl_certfile is not None:
                context.load_cert_chain(
                    str(self.ssl_certfile),
                    str(self.ssl_keyfile) if self.ssl_keyfile else None,
                    self.ssl_key_password.get_secret_value() if self.ssl_key_password else None,
                )
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"Kafka TLS files (MAXLAKE_SSL_CAFILE {self.ssl_cafile}, MAXLAKE_SSL_CERTFILE "
                f"{self.ssl_certfile}, MAXLAKE_SSL_KEYFILE {self.ssl_keyfile}): {exc}"
            ) from exc
        context.check_hostname = self.ssl_check_hostname
        return context

    @field_validator("corrupt_fetch_max_wait_s")
    @classmethod
    def _max_wait_not_below_first(cls, value: float, info: ValidationInfo) -> float:
        first = info.data.get("corrupt_fetch_first_wait_s")
        if first is not None and value < first:
            raise ValueError(
                f"must be at least MAXLAKE_CORRUPT_FETCH_FIRST_WAIT_S ({first:g} s), the first "
                f"wait; got {value:g} s"
            )
        return value

    def kafka_security(self) -> dict[str, Any]:
        """Security keyword arguments shared by kafka-python and aiokafka clients.

        Empty for PLAINTEXT; ``security_protocol``, ``ssl_context`` (TLS) and ``sasl_*`` (SASL)
        otherwise.

        Raises:
            ConfigError: see :meth:`security_protocol` and :meth:`kafka_ssl_context`.
        """
        protocol = self.security_protocol()
        if protocol == "PLAINTEXT":
            return {}
        out: dict[str, Any] = {"security_protocol": protocol}
        if protocol.endswith("SSL"):
            out["ssl_context"] = self.kafka_ssl_context()
        if protocol.startswith("SASL_"):
            password = self.sasl_password.get_secret_value() if self.sasl_password else ""
            out.update(
                sasl_mechanism=self.sasl_mechanism,
                sasl_plain_username=self.sasl_username,
                sasl_plain_password=password,
            )
        return out

    def as_dict(self) -> dict[str, Any]:
        """Every setting with secrets masked, for logs and ``maxlake config``."""
        values = self.model_dump(mode="json")
        for secret in ("sasl_password", "token", "ssl_key_password"):
            if getattr(self, secret) is not None:
                values[secret] = "**********"
        values["lake_storage_options"] = {
            key: "**********" if _is_secret_option(key) else option.get_secret_value()
            for key, option in self.lake_storage_options.items()
        }
        return values


_PUBLIC_OPTION_WORDS = ("endpoint", "region", "allow_http", "conditional_put", "virtual_hosted")


def _is_secret_option(key: str) -> bool:
    """Whether a storage option may hold a credential (all but endpoints, regions and flags)."""
    return not any(word in key.lower() for word in _PUBLIC_OPTION_WORDS)
