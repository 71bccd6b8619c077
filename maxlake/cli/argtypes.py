"""argparse types for numbers that must be positive (a zero rate or a negative retention is
refused as a usage error, exit 2, instead of failing later inside the command)."""

from __future__ import annotations

import argparse

__all__ = ["non_negative_int", "positive_float", "positive_int"]


def positive_float(text: str) -> float:
    """A number > 0, e.g. ``--rate 500`` (events per second)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number greater than 0, got {text}")
    return value


def non_negative_int(text: str) -> int:
    """A whole number >= 0, e.g. ``--retention-hours 168``."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def positive_int(text: str) -> int:
    """A whole number >= 1, e.g. ``--scale 2``."""
    value = non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be 1 or more, got 0")
    return value
