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

    def __init__(self, start: int = 100, end: int = 500) -> None:
        self.start, self.end = start, end
        self.deleted: list[tuple[str, int, int]] = []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(streams_cmd, "require_broker", lambda settings: None)
        monkeypatch.setattr(
            streams_cmd, "partition_bounds", lambda settings, t, p: (self.start, self.end)
        )
        monkeypatch.setattr(streams_cmd, "delete_records", self._delete)

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


@pytest.mark.parametrize(("before", "code", "said"), [(600, 1, "past it"), (90, 0, "nothing")])
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
