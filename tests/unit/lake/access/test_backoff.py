"""Failed-authentication backoff: blocks the attacked key id and address, nobody else."""

from __future__ import annotations

from lake.access.backoff import Backoff


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_repeated_failures_block_the_key_and_the_address_only() -> None:
    clock = _Clock()
    backoff = Backoff(free_failures=3, first_block_s=2.0, clock=clock)
    for _ in range(3):
        backoff.failed("aaaa", "10.0.0.9")
    assert backoff.retry_after("aaaa", "10.0.0.9") == 0.0
    backoff.failed("aaaa", "10.0.0.9")
    assert backoff.retry_after("aaaa", "127.0.0.2") == 2.0
    assert backoff.retry_after("bbbb", "10.0.0.9") == 2.0
    assert backoff.retry_after("bbbb", "127.0.0.2") == 0.0
    backoff.failed("aaaa", "10.0.0.9")
    assert backoff.retry_after("aaaa", None) == 4.0
    clock.now += 4.0
    assert backoff.retry_after("aaaa", "10.0.0.9") == 0.0


def test_a_success_clears_the_record_and_blocks_are_capped() -> None:
    clock = _Clock()
    backoff = Backoff(free_failures=1, first_block_s=1.0, max_block_s=8.0, clock=clock)
    for _ in range(20):
        backoff.failed("aaaa", None)
    assert backoff.retry_after("aaaa", None) == 8.0
    backoff.succeeded("aaaa", None)
    assert backoff.retry_after("aaaa", None) == 0.0
