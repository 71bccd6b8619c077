"""How a broker's answer to the topic-id question is read (the request itself is exercised
against the real broker in tests/integration/test_topic_recreation*.py)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import KafkaError, UnsupportedVersionError

from maxlake.settings import Settings
from streams.batch_lineage import LineageCheck
from streams.kafka_topic_ids import UnsupportedBrokerError, current_topic_ids

ID = uuid.UUID("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")


class _Client:
    def __init__(self, topics: list[tuple[Any, ...]] | None = None, fail: Exception | None = None):
        self.topics = topics or []
        self.fail = fail

    def get_random_node(self) -> int:
        return 1

    async def send(self, node: int, request: Any) -> Any:
        if self.fail is not None:
            raise self.fail
        return SimpleNamespace(topics=self.topics)


def _ask(client: _Client, topics: list[str]) -> dict[str, str]:
    return asyncio.run(current_topic_ids(client, topics))


OLD = uuid.UUID("11111111-2222-3333-4444-555555555555")


class _Cluster:
    """Three brokers; node 1 has not applied the topic's recreation yet (stale metadata)."""

    def __init__(self, leaders: dict[tuple[str, int], int]) -> None:
        self.leaders = leaders
        self.answers = {1: OLD, 2: ID, 3: ID}
        self.asked: list[int] = []

    def leader_for_partition(self, tp: Any) -> int | None:
        return self.leaders.get((tp.topic, tp.partition))


class _ThreeBrokers(_Client):
    def __init__(self, leaders: dict[tuple[str, int], int]) -> None:
        super().__init__()
        self.cluster = _Cluster(leaders)

    def get_random_node(self) -> int:
        return 1

    async def send(self, node: int, request: Any) -> Any:
        self.cluster.asked.append(node)
        return SimpleNamespace(topics=[(0, "a", self.cluster.answers[node], False, [])])


def test_the_leaders_the_records_came_from_are_asked_not_a_stale_random_broker() -> None:
    client = _ThreeBrokers({("a", 0): 2, ("a", 1): 3, ("a", 2): 2})
    ids = asyncio.run(
        current_topic_ids(
            client, ["a"], leaders_of=[("a", 0), ("a", 1), ("a", 2)], held={"a": str(OLD)}
        )
    )
    assert ids == {"a": str(ID)}
    assert sorted(client.cluster.asked) == [2, 3]


@pytest.mark.parametrize("order", [[1, 2], [2, 1]])
def test_a_new_id_from_any_leader_wins_over_a_stale_leader_holding_the_old_one(
    order: list[int],
) -> None:
    client = _ThreeBrokers({("a", 0): order[0], ("a", 1): order[1]})
    ids = asyncio.run(
        current_topic_ids(client, ["a"], leaders_of=[("a", 0), ("a", 1)], held={"a": str(OLD)})
    )
    assert ids == {"a": str(ID)}


@pytest.mark.parametrize("order", [[1, 2], [2, 1]])
def test_holding_no_id_two_leaders_answering_two_ids_is_not_an_answer(order: list[int]) -> None:
    """Which of two ids is the new one is not known without one held (a worker positioning a
    partition for the first time): the question is asked again, never answered with the old."""
    client = _ThreeBrokers({("a", 0): order[0], ("a", 1): order[1]})
    with pytest.raises(KafkaError, match="different ids"):
        asyncio.run(current_topic_ids(client, ["a"], leaders_of=[("a", 0), ("a", 1)]))


def test_with_no_leader_known_a_random_broker_is_asked() -> None:
    client = _ThreeBrokers({})
    ids = asyncio.run(current_topic_ids(client, ["a"], leaders_of=[("a", 0)]))
    assert client.cluster.asked == [1]
    assert ids == {"a": str(OLD)}


def test_an_existing_topic_gives_its_id_and_an_unknown_one_is_left_out() -> None:
    client = _Client([(0, "a", ID, False, []), (3, "gone", uuid.UUID(int=0), False, [])])
    assert _ask(client, ["a", "gone"]) == {"a": str(ID)}


@pytest.mark.parametrize("code", [29, 5])  # TOPIC_AUTHORIZATION_FAILED, LEADER_NOT_AVAILABLE
def test_a_topic_answered_with_another_error_is_not_taken_for_the_old_one(code: int) -> None:
    client = _Client([(0, "a", ID, False, []), (code, "b", uuid.UUID(int=0), False, [])])
    with pytest.raises(KafkaError, match=f"'b' with error code {code}"):
        _ask(client, ["a", "b"])


@pytest.mark.parametrize("fail", [NotImplementedError(), UnsupportedVersionError()])
def test_a_broker_older_than_2_8_is_named(fail: Exception) -> None:
    with pytest.raises(UnsupportedBrokerError, match=r"Kafka 2\.8 or later"):
        _ask(_Client(fail=fail), ["a"])


class _Engine(LineageCheck):
    def __init__(self) -> None:
        self.settings = Settings()
        self._topic_ids: dict[str, str] = {}
        self._init_lineage_check()


def test_an_old_broker_turns_the_check_off_with_one_warning_instead_of_stalling(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    engine = _Engine()
    consumer = SimpleNamespace(_client=_Client(fail=NotImplementedError()))
    with caplog.at_level(logging.WARNING, logger="streams.batch_engine"):
        first = asyncio.run(engine._ask_topic_ids(consumer, ["a"]))
        second = asyncio.run(engine._ask_topic_ids(consumer, ["a"]))
    assert first == second == {}
    warnings = [r.getMessage() for r in caplog.records if "2.8" in r.getMessage()]
    assert len(warnings) == 1
    assert "does not check topic ids" in warnings[0]
