"""``maxlake topics delete-records``: the remedy for a lost corrupt batch without Kafka's shell
tools. It refuses without an explicit offset, only shows what it would delete without
``--yes``, says what it deleted, and talks to the broker with the settings' security."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from kafka import TopicPartition

from maxlake.cli import main, streams_cmd
from maxlake.settings import Settings
from streams import topics

TOPIC = "maxlake.acme.telemetry"


class _Broker:
    """The partition's log start and end, and the deletions asked for."""

    def __init__(self, start: int = 100, end: int = 500, committed: int | None = 130) -> None:
        self.start, self.end, self.committed = start, end, committed
        self.deleted: list[tuple[str, int, int]] = []
        self.groups: list[str | None] = []
        self.known = {"lake-a", "lake-b", "maxlake-ingest"}

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(streams_cmd, "require_broker", lambda settings: None)
        monkeypatch.setattr(
            streams_cmd, "partition_bounds", lambda settings, t, p: (self.start, self.end)
        )
        monkeypatch.setattr(streams_cmd, "delete_records", self._delete)
        monkeypatch.setattr(streams_cmd, "committed_offset", self._committed)
        monkeypatch.setattr(streams_cmd, "group_ids", lambda settings: sorted(self.known))

    def _committed(
        self, settings: Settings, topic: str, partition: int, *, group_id: str | None = None
    ) -> int | None:
        self.groups.append(group_id)
        return self.committed

    def _delete(self, settings: Settings, topic: str, partition: int, before: int) -> int:
        self.deleted.append((topic, partition, before))
        self.start = before
        return before


def test_without_an_offset_it_refuses_as_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    broker = _Broker()
    broker.install(monkeypatch)
    with pytest.raises(SystemExit) as exit_:
        main(["topics", "delete-records", TOPIC, "1", "--yes"])
    assert exit_.value.code == 2
    assert "--before" in capsys.readouterr().err
    assert broker.deleted == []


def test_without_yes_it_shows_what_it_would_delete_and_deletes_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    broker = _Broker()
    broker.install(monkeypatch)
    assert main(["topics", "delete-records", TOPIC, "1", "--before", "155"]) == 1
    out, err = capsys.readouterr()
    assert f"would delete {TOPIC}[1] offsets 100..154 (55 offsets)" in out
    assert "nothing deleted: add --yes" in err
    assert broker.deleted == []


def test_with_yes_it_deletes_and_says_what(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    broker = _Broker()
    broker.install(monkeypatch)
    assert main(["topics", "delete-records", TOPIC, "1", "--before", "155", "--yes"]) == 0
    out = capsys.readouterr().out
    assert broker.deleted == [(TOPIC, 1, 155)]
    assert f"deleted {TOPIC}[1] offsets 100..154 (55 offsets); its first offset is now 155" in out


@pytest.mark.parametrize(
    ("before", "code", "said"),
    [
        (600, 1, "last offset is 499 (the next to be written 500): --before is at most 500"),
        (90, 0, "nothing"),
    ],
)
def test_an_offset_outside_the_partition_deletes_nothing(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    before: int,
    code: int,
    said: str,
) -> None:
    broker = _Broker()
    broker.install(monkeypatch)
    argv = ["topics", "delete-records", TOPIC, "1", "--before", str(before), "--yes"]
    assert main(argv) == code
    assert said in "".join(capsys.readouterr())
    assert broker.deleted == []


class _Admin:
    made: ClassVar[list[dict[str, Any]]] = []
    asked: ClassVar[list[dict[TopicPartition, int]]] = []

    def __init__(self, **config: Any) -> None:
        _Admin.made.append(config)

    def delete_records(self, records: dict[TopicPartition, int], **_: Any) -> dict[Any, Any]:
        _Admin.asked.append(records)
        return {tp: {"low_watermark": offset} for tp, offset in records.items()}

    def close(self) -> None:
        pass


def test_the_deletion_uses_the_settings_security(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(topics, "KafkaAdminClient", _Admin)
    settings = Settings(
        bootstrap_servers="broker:9093",
        sasl_username="ops",
        sasl_password="s3cret",
        kafka_security_protocol="SASL_PLAINTEXT",
    )
    assert topics.delete_records(settings, TOPIC, 1, 155) == 155
    assert _Admin.asked == [{TopicPartition(TOPIC, 1): 155}]
    (config,) = _Admin.made
    assert config["bootstrap_servers"] == ["broker:9093"]
    assert config["security_protocol"] == "SASL_PLAINTEXT"
    assert config["sasl_plain_username"] == "ops"
    assert config["sasl_plain_password"] == "s3cret"


@pytest.mark.parametrize(
    ("committed", "said"),
    [
        (130, "offsets 130..154 (25 offsets) are not ingested; deleted, they never reach the lake"),
        (60, "offsets 100..154 (55 offsets) are not ingested"),
        (155, "committed offset 155 (it has read the offsets below it): every offset to delete"),
        (None, "has committed no offset for this partition"),
    ],
)
def test_the_preview_says_what_the_group_has_not_ingested(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    committed: int | None,
    said: str,
) -> None:
    broker = _Broker(committed=committed)
    broker.install(monkeypatch)
    monkeypatch.setenv("MAXLAKE_GROUP_ID", "lake-a")
    assert main(["topics", "delete-records", TOPIC, "1", "--before", "155"]) == 1
    out = capsys.readouterr().out
    assert "consumer group 'lake-a'" in out
    assert said in out
    assert broker.groups == ["lake-a"]
    assert broker.deleted == []


def test_a_group_the_broker_does_not_know_is_named_as_such(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    broker = _Broker(committed=None)
    broker.install(monkeypatch)
    argv = ["topics", "delete-records", TOPIC, "1", "--before", "155", "--group", "lake-aa"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert (
        "no consumer group 'lake-aa' on the broker (did you mean lake-a?) (`maxlake groups "
        "list`)" in out
    )
    assert broker.deleted == []


def test_group_names_the_group_asked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    broker = _Broker()
    broker.install(monkeypatch)
    argv = ["topics", "delete-records", TOPIC, "1", "--before", "155", "--group", "lake-b"]
    assert main(argv) == 1
    assert "consumer group 'lake-b'" in capsys.readouterr().out
    assert broker.groups == ["lake-b"]


@pytest.mark.parametrize(
    "topic",
    [
        "__consumer_offsets",
        "other.acme.telemetry",
        "maxlake.acme.telemetry.extra",
        "maxlake.acme.nonsense",
        "maxlake..telemetry",
        "maxlake.telemetry",
    ],
)
def test_a_topic_that_is_not_an_ingest_topic_is_refused_before_the_broker_is_asked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], topic: str
) -> None:
    broker = _Broker()
    broker.install(monkeypatch)
    monkeypatch.setattr(streams_cmd, "partition_bounds", _never)
    argv = ["topics", "delete-records", topic, "0", "--before", "155", "--yes"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"{topic!r} is not a maxlake ingest topic" in err
    assert "nothing deleted" in err
    assert broker.deleted == []


def test_a_dotted_topic_prefix_is_understood(monkeypatch: pytest.MonkeyPatch) -> None:
    broker = _Broker()
    broker.install(monkeypatch)
    monkeypatch.setenv("MAXLAKE_TOPIC_PREFIX", "plant.lake")
    argv = ["topics", "delete-records", "plant.lake.acme.telemetry", "2", "--before", "155"]
    assert main([*argv, "--yes"]) == 0
    assert broker.deleted == [("plant.lake.acme.telemetry", 2, 155)]


def _never(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("the broker must not be asked")
