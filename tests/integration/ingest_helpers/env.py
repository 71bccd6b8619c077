"""One test's isolated ingest world: :class:`IngestEnv` (topics, consumer group and lake of its
own on the real broker) and the event kinds every check covers."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lake import DeltaStore, LakeLocation
from lake.accounting import AccountingReport, check_accounting
from maxlake.settings import Settings
from schemas import EventKind
from streams.offsets import PartitionOffsets, group_offsets
from streams.topics import ensure_topics

__all__ = ["KINDS", "IngestEnv"]

KINDS: tuple[str, ...] = tuple(k.value for k in EventKind)


@dataclass(frozen=True)
class IngestEnv:
    """One test's isolated ingest world: topics, group and lake of its own on a real broker."""

    bootstrap: str
    name: str
    work: Path
    tenants: tuple[str, ...]
    batch_max_events: int = 2000
    batch_wait_s: float = 0.3
    partitions: int = 4
    session_timeout_s: float = 6.0
    engine: str = "stream"
    lake: LakeLocation | None = None
    kafka_env: tuple[tuple[str, str], ...] = ()
    """Extra ``MAXLAKE_*`` settings: Kafka security (protocol, SASL user, TLS files), retry
    bounds (``MAXLAKE_LAKE_RETRY_MAX_S``)."""
    registry_poll_s: float = 5.0
    worker_args: tuple[str, ...] = ()
    """Extra ``maxlake worker`` arguments (for example ``--registry FILE``)."""
    pin_tenants: bool = True
    """Start workers with ``--tenant`` for each of ``tenants``; else they follow the registry."""

    @property
    def lake_root(self) -> Path:
        """Where the workers write a local lake (when ``lake`` is None)."""
        return self.work / "lake"

    @property
    def location(self) -> LakeLocation:
        """Where the workers write the lake: ``lake``, or the local folder ``lake_root``."""
        return self.lake or LakeLocation(str(self.lake_root))

    @property
    def group_id(self) -> str:
        """The consumer group every worker of this test joins."""
        return f"{self.name}-ingest"

    def settings(self) -> Settings:
        """The settings the workers see (built from the same values as :meth:`environ`)."""
        return Settings(
            bootstrap_servers=self.bootstrap,
            topic_prefix=self.name,
            topic_partitions=self.partitions,
            group_id=self.group_id,
            lake_root=self.location.root,
            lake_storage_options=dict(self.location.storage_options),
            batch_max_events=self.batch_max_events,
            batch_wait_s=self.batch_wait_s,
            spool_dir=self.work / "spool",
            **self._kafka_fields(),
        )

    def _kafka_fields(self) -> dict[str, Any]:
        return {k.removeprefix("MAXLAKE_").lower(): v for k, v in self.kafka_env}

    def environ(self, worker: str) -> dict[str, str]:
        """Process environment of one worker: ``MAXLAKE_*`` plus its own Faust data dir."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAXLAKE_")}
        env.update(
            {
                "MAXLAKE_BOOTSTRAP_SERVERS": self.bootstrap,
                "MAXLAKE_TOPIC_PREFIX": self.name,
                "MAXLAKE_GROUP_ID": self.group_id,
                "MAXLAKE_LAKE_ROOT": self.location.root,
                "MAXLAKE_LAKE_STORAGE_OPTIONS": json.dumps(dict(self.location.storage_options)),
                "MAXLAKE_BATCH_MAX_EVENTS": str(self.batch_max_events),
                "MAXLAKE_BATCH_WAIT_S": str(self.batch_wait_s),
                "MAXLAKE_FAUST_DATADIR": str(self.work / f"faust-{worker}"),
                "MAXLAKE_BROKER_SESSION_TIMEOUT_S": str(self.session_timeout_s),
                "MAXLAKE_INGEST_ENGINE": self.engine,
                "MAXLAKE_REGISTRY_POLL_S": str(self.registry_poll_s),
                "GX_ANALYTICS_ENABLED": "false",
                "PYTHONUNBUFFERED": "1",
                **dict(self.kafka_env),
            }
        )
        return env

    def topics(self) -> list[str]:
        """Every ingest topic of the test's tenants."""
        settings = self.settings()
        return [settings.topic_for(t, k) for t in self.tenants for k in KINDS]

    def create_topics(self) -> None:
        """Create the tenants' topics (``partitions`` each)."""
        ensure_topics(self.settings(), self.tenants)

    def offsets(self) -> list[PartitionOffsets]:
        """Start, end and committed offset of every partition for the test's group."""
        return group_offsets(self.settings(), self.topics())

    def committed(self) -> dict[tuple[str, int], int]:
        """The group's committed offsets, as :func:`check_accounting` takes them."""
        return {
            (p.topic, p.partition): p.committed for p in self.offsets() if p.committed is not None
        }

    def store(self) -> DeltaStore:
        """The test's lake."""
        return DeltaStore(self.location)

    def accounting(self) -> AccountingReport:
        """The invariant, checked against the group's committed offsets."""
        return check_accounting(self.store(), committed=self.committed())
