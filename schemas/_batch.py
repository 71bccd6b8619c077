"""Parsing raw messages and keeping the first rejection of each one.

Positions: after parsing, the JSON objects of one batch are numbered 0..n-1 ("positions");
``msg_index[pos]`` maps a position back to the input index. Column checks report problems by
position; the first problem reported for a position wins, so the rejection a producer sees
follows the order the contract checks fields in (version, kind, envelope, body).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import orjson

from schemas.kinds import RejectReason
from schemas.results import Rejection

__all__ = ["Batch", "describe", "parse_messages"]

_NON_FINITE = re.compile(rb"(?<![A-Za-z0-9_\"])-?(?:NaN|Infinity)(?![A-Za-z0-9_\"])")
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


class Batch:
    """The parsed objects of one decode call plus the rejections found so far."""

    __slots__ = ("bad", "early", "msg_index", "objs")

    def __init__(self) -> None:
        self.objs: list[dict[str, Any]] = []
        self.msg_index: list[int] = []
        self.bad: dict[int, tuple[RejectReason, str]] = {}
        self.early: list[Rejection] = []

    def reject(self, pos: int, reason: RejectReason, detail: str) -> None:
        """Record a problem of the object at ``pos`` unless an earlier one is already known."""
        if pos not in self.bad:
            self.bad[pos] = (reason, detail)


def parse_messages(messages: Sequence[bytes], max_bytes: int) -> Batch:
    """Parse each message with orjson; non-objects become early rejections."""
    batch = Batch()
    objs, idx, early = batch.objs, batch.msg_index, batch.early
    loads, decode_error = orjson.loads, orjson.JSONDecodeError
    try:
        sized = max(map(len, messages), default=0) <= max_bytes
    except TypeError:
        sized = False
    for i, msg in enumerate(messages):
        try:
            if not sized and len(msg) > max_bytes:
                detail = f"message is {len(msg)} bytes, the limit is {max_bytes}"
                early.append(Rejection(i, RejectReason.OVERSIZED, detail, None))
                continue
            obj = loads(msg)
        except (decode_error, TypeError) as exc:
            early.append(_unparseable(i, msg, exc))
            continue
        if type(obj) is dict:
            objs.append(obj)
            idx.append(i)
        else:
            detail = f"message must be a JSON object, got {describe(obj)}"
            early.append(Rejection(i, RejectReason.NOT_AN_OBJECT, detail, None))
    return batch


def _unparseable(index: int, msg: Any, exc: Exception) -> Rejection:
    """Classify a message orjson refused: empty, not UTF-8, NaN/Infinity or plain malformed."""
    try:
        raw = bytes(msg)
    except TypeError:
        return Rejection(
            index, RejectReason.MALFORMED_JSON, f"not bytes: {type(msg).__name__}", None
        )
    if not raw.strip():
        return Rejection(index, RejectReason.EMPTY, "message is empty", None)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as err:
        return Rejection(
            index, RejectReason.NOT_UTF8, f"invalid UTF-8 at byte {err.start}: {err.reason}", None
        )
    if _NON_FINITE.search(_STRING.sub(b'""', raw)):
        return Rejection(
            index,
            RejectReason.NAN_OR_INFINITY,
            "NaN or Infinity is not valid JSON; send null or leave the reading out",
            None,
        )
    return Rejection(index, RejectReason.MALFORMED_JSON, f"malformed JSON: {exc}", None)


def describe(value: Any) -> str:
    """A short JSON-flavoured description of a value for rejection details."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"number {value!r}"
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return f"string {text!r}"
    if isinstance(value, list):
        return f"array of {len(value)} items"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__
