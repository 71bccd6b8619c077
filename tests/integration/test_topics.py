"""Topic admin against a real broker: creation with settings, idempotence, listing."""

from __future__ import annotations

import pytest

from maxlake.settings import Settings
from schemas.errors import UnknownKindError
from streams.topics import TopicAdminError, ensure_topics, list_topics, require_topic_ids

pytestmark = pytest.mark.integration


def test_ensure_topics_creates_missing_topics_once(kafka_bootstrap: str, unique_name: str) -> None:
    settings = Settings(
        bootstrap_servers=kafka_bootstrap, topic_prefix=unique_name, topic_partitions=3
    )
    created = ensure_topics(settings, ["t1", "t2"])
    assert created == sorted(
        settings.topic_for(t, k)
        for t in ("t1", "t2")
        for k in ("telemetry", "machine_event", "inspection")
    )
    assert ensure_topics(settings, ["t1", "t2"]) == []
    assert ensure_topics(settings, ["t1", "t3"], ["inspection"]) == [
        settings.topic_for("t3", "inspection")
    ]
    listed = {info.name: info.partitions for info in list_topics(settings)}
    assert listed == dict.fromkeys([*created, settings.topic_for("t3", "inspection")], 3)


def test_unknown_kind_is_refused(kafka_bootstrap: str, unique_name: str) -> None:
    settings = Settings(bootstrap_servers=kafka_bootstrap, topic_prefix=unique_name)
    with pytest.raises(UnknownKindError, match="unknown event kind 'bogus'; valid kinds: "):
        ensure_topics(settings, ["t1"], ["telemetry", "bogus"])


def test_topic_ids_are_required_before_a_partition_is_positioned_or_written(
    kafka_bootstrap: str, unique_name: str
) -> None:
    settings = Settings(bootstrap_servers=kafka_bootstrap, topic_prefix=unique_name)
    created = ensure_topics(settings, ["northwind-auto"], ["telemetry"])
    ids = require_topic_ids(settings, created, timeout_s=30)
    assert set(ids) == set(created)
    assert all(len(i) == 36 for i in ids.values())
    missing = f"{unique_name}.nobody.telemetry"
    with pytest.raises(TopicAdminError, match=f"no topic id for {missing} after 2 s"):
        require_topic_ids(settings, [*created, missing], timeout_s=2, retry_s=0.5)
