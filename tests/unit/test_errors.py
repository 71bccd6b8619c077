"""Exception text names the class once, whatever the library put in the message."""

from __future__ import annotations

from kafka.errors import KafkaTimeoutError

from maxlake.errors import exception_text


def test_the_class_is_named_once() -> None:
    assert exception_text(KafkaTimeoutError()) == "KafkaTimeoutError"
    assert exception_text(KafkaTimeoutError("no broker")) == "KafkaTimeoutError: no broker"
    assert exception_text(ValueError("bad")) == "ValueError: bad"
    assert exception_text(ValueError()) == "ValueError"
