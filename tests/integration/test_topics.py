"""Topic admin against a real broker: creation with settings, idempotence, listing."""

from __future__ import annotations

import pytest

from maxlake.settings import Settings
from streams.topics import ensure_topics, list_topics

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
    with pytest.raises(ValueError, match="unknown event kinds"):
        ensure_topics(settings, ["t1"], ["telemetry", "bogus"])
