"""``maxlake groups list|delete`` against a real broker: a stale group (committed offsets, no
members) is listed and deleted only with ``--yes``; a group with a live member, an unknown
group and the lake's own group (MAXLAKE_GROUP_ID) are refused and stay as they were."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

from infra.broker import LocalBroker
from maxlake.cli import main

pytestmark = pytest.mark.integration


def _groups(bootstrap: str) -> set[str]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        return {g["group_id"] for g in admin.list_groups()}
    finally:
        admin.close()


def _join(bootstrap: str, topic: str, group: str) -> KafkaConsumer:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    while not consumer.assignment():
        consumer.poll(timeout_ms=1000)
    consumer.commit()
    return consumer


@pytest.fixture
def groups(
    kafka_broker: LocalBroker, unique_name: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, str]]:
    """A stale group (committed 3 partitions, closed) and a live one (a member now)."""
    bootstrap = kafka_broker.bootstrap
    prefix = f"p{unique_name[-8:]}"
    topic = f"{prefix}.acme.telemetry"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, 3, 1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for i in range(30):
        producer.send(topic, b"{}", partition=i % 3)
    producer.flush()
    producer.close()
    stale, live = f"{unique_name}-old", f"{unique_name}-live"
    _join(bootstrap, topic, stale).close()
    # What a batch-engine worker leaves beside its group: the Faust app's group and leader topic.
    leader = f"{stale}-app-__assignor-__leader"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(leader, 1, 1)])
    admin.close()
    _join(bootstrap, leader, f"{stale}-app").close()
    member = _join(bootstrap, topic, live)
    monkeypatch.setenv("MAXLAKE_BOOTSTRAP_SERVERS", bootstrap)
    monkeypatch.setenv("MAXLAKE_TOPIC_PREFIX", prefix)
    monkeypatch.setenv("MAXLAKE_GROUP_ID", f"{unique_name}-now")
    try:
        yield stale, live
    finally:
        member.close()


def test_list_shows_state_members_committed_partitions_and_lag(
    groups: tuple[str, str], kafka_broker: LocalBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    stale, live = groups
    assert main(["groups", "list"]) == 0
    lines = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()}
    assert lines[stale][1:] == ["Empty", "0", "3", "0"]  # read everything, lag 0
    assert lines[live][1:] == ["Stable", "1", "3", "0"]
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap)
    for i in range(7):  # the stale group falls behind: its lag grows
        producer.send(
            f"{os.environ['MAXLAKE_TOPIC_PREFIX']}.acme.telemetry", b"{}", partition=i % 3
        )
    producer.flush()
    producer.close()
    assert main(["groups", "list", "--json"]) == 0
    listed = {g["group_id"]: g for g in json.loads(capsys.readouterr().out)}
    assert listed[stale] == {
        "group_id": stale,
        "state": "Empty",
        "members": 0,
        "lake_partitions": 3,
        "lag": 7,
        "lake_group": False,
    }


def test_a_stale_group_is_deleted_only_with_yes(
    groups: tuple[str, str], kafka_broker: LocalBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    stale, _ = groups
    assert main(["groups", "delete", stale]) == 1
    out, err = capsys.readouterr()
    assert f"would delete consumer group {stale!r} (Empty, 0 member(s)" in out
    assert "committed offsets for 3 partition(s)" in out
    assert f"with its Faust app's group consumer group '{stale}-app' (Empty" in out
    assert "add --yes" in err
    assert {stale, f"{stale}-app"} <= _groups(kafka_broker.bootstrap)
    assert main(["groups", "delete", stale, "--yes"]) == 0
    out = capsys.readouterr().out
    assert f"deleted consumer group {stale!r}" in out
    assert f"deleted consumer group '{stale}-app'" in out
    assert f"deleted topic '{stale}-app-__assignor-__leader'" in out
    assert not {stale, f"{stale}-app"} & _groups(kafka_broker.bootstrap)
    admin = KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
    try:
        assert f"{stale}-app-__assignor-__leader" not in admin.list_topics()
    finally:
        admin.close()


def test_a_group_with_members_an_unknown_one_and_the_lakes_own_are_refused(
    groups: tuple[str, str], kafka_broker: LocalBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    stale, live = groups
    assert main(["groups", "delete", live, "--yes"]) == 1
    assert "has live members: stop its workers first; nothing deleted" in capsys.readouterr().err
    assert main(["groups", "delete", f"{live}-nobody", "--yes"]) == 1
    assert f"no consumer group '{live}-nobody' on the broker (did you mean {live}?)" in (
        capsys.readouterr().err
    )
    for own in ("-now", "-now-app"):
        assert main(["groups", "delete", f"{stale[: -len('-old')]}{own}", "--yes"]) == 1
        assert "is this lake's consumer group (MAXLAKE_GROUP_ID)" in capsys.readouterr().err
    assert {stale, live} <= _groups(kafka_broker.bootstrap)
