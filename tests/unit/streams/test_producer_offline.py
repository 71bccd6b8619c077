"""PlantProducer without any broker: everything goes to the spool and survives a restart."""

from __future__ import annotations

import socket
from pathlib import Path

import orjson
import pytest

from maxlake.settings import Settings
from streams.producer import DeliveryError, PlantProducer
from streams.spool import Spool, SpoolLockedError


def _dead_bootstrap() -> str:
    """An address where nothing listens (a port bound and released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"127.0.0.1:{port}"


def _event(i: int) -> dict[str, object]:
    return {
        "event_id": f"e{i}",
        "schema_version": 1,
        "kind": "telemetry",
        "tenant": "acme",
        "machine": f"m{i % 2}",
        "event_time": "2026-11-26T10:00:00Z",
    }


def test_without_broker_events_are_spooled_in_order_and_kept(tmp_path: Path) -> None:
    settings = Settings(bootstrap_servers=_dead_bootstrap(), spool_dir=tmp_path / "spool")
    producer = PlantProducer(settings, connect_timeout_s=0.2)
    assert not producer.connected
    for i in range(2500):
        producer.send(_event(i))
    producer.close()
    assert producer.counters() == {
        "sent": 0,
        "spooled": 2500,
        "resent": 0,
        "failed": 0,
        "spool_pending": 2500,
    }
    with Spool(tmp_path / "spool") as spool:
        records, _ = spool.read(10_000)
    assert [r.key for r in records[:3]] == [b"m0", b"m1", b"m0"]
    assert [r.topic for r in records[:1]] == ["maxlake.acme.telemetry"]
    assert [orjson.loads(r.value)["event_id"] for r in records] == [f"e{i}" for i in range(2500)]


def test_a_restarted_producer_keeps_the_old_spool_first(tmp_path: Path) -> None:
    settings = Settings(bootstrap_servers=_dead_bootstrap(), spool_dir=tmp_path / "spool")
    with PlantProducer(settings, connect_timeout_s=0.2) as first:
        first.send(_event(0))
    with PlantProducer(settings, connect_timeout_s=0.2) as second:
        assert second.spool_pending == 1
        second.send(_event(1))
        with pytest.raises(SpoolLockedError):
            PlantProducer(settings, connect_timeout_s=0.2)
    with Spool(tmp_path / "spool") as spool:
        records, _ = spool.read(10)
    assert [orjson.loads(r.value)["event_id"] for r in records] == ["e0", "e1"]


def test_without_store_and_forward_an_outage_is_a_delivery_error(tmp_path: Path) -> None:
    settings = Settings(bootstrap_servers=_dead_bootstrap(), spool_dir=tmp_path / "spool")
    producer = PlantProducer(settings, store_and_forward=False, connect_timeout_s=0.2)
    with pytest.raises(DeliveryError, match=r"maxlake\.acme\.telemetry") as caught:
        producer.send(_event(0))
    assert caught.value.topic == "maxlake.acme.telemetry"
    producer.close()
    assert producer.failed == 1
    assert not (tmp_path / "spool").exists()
