"""Parsing raw messages and keeping the first rejection of each one.

Positions: after parsing, the JSON objects of one batch are numbered 0..n-1 ("positions");
``msg_index[pos]`` maps a position back to the input index. Column checks report problems by
position; the first problem reported for a position wins, so the rejection a producer sees
follows the order the event schema checks fields in (version, kind, envelope, body).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import orjson

from schemas.kinds import RejectReason
from schemas.results import Rejection

__all__ = ["Batch", "describe", "parse_messages", "positions"]

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
    """Parse each message with orjson; everything that is not a JSON object becomes an early
    rejection. Parsing is ``list.extend(map(orjson.loads, ...))``, no Python loop: a message
    orjson refuses stops the run (``extend`` keeps what it appended), is marked and the run
    resumes after it. Failures are classified afterwards, found at C speed by their type."""
    batch = Batch()
    try:
        sized = max(map(len, messages), default=0) <= max_bytes
    except TypeError:
        sized = False
    parsed: list[Any] = []
    append, loads, decode_error = parsed.append, orjson.loads, orjson.JSONDecodeError
    if sized:
        rest = iter(messages)
        while True:
            try:
                parsed.extend(map(loads, rest))
                break
            except (decode_error, TypeError) as exc:
                append(_Failure(str(exc)))
    else:
        for msg in messages:
            try:
                append(_Oversized() if len(msg) > max_bytes else loads(msg))
            except (decode_error, TypeError) as exc:
                append(_Failure(str(exc)))
    types = set(map(type, parsed))
    if types.issubset((dict,)):
        batch.objs = parsed
        batch.msg_index = list(range(len(parsed)))
        return batch
    type_list = list(map(type, parsed))
    bad = sorted(i for t in types if t is not dict for i in positions(type_list, t))
    for i in bad:
        batch.early.append(_early(i, messages[i], parsed[i], max_bytes))
    index = list(range(len(parsed)))
    for i in reversed(bad):
        del parsed[i], index[i]
    batch.objs, batch.msg_index = parsed, index
    return batch


class _Failure:
    """Marks a message orjson refused. Keeps the error text, not the exception: its
    traceback would tie the parse frame into a reference cycle per bad message."""

    __slots__ = ("error",)

    def __init__(self, error: str) -> None:
        self.error = error


class _Oversized:
    """Marks a message over the size limit (never parsed)."""

    __slots__ = ()


def positions(seq: list[Any], target: Any) -> list[int]:
    """Every index of ``target`` in ``seq``, scanning at C speed with ``list.index``."""
    out: list[int] = []
    i = -1
    while True:
        try:
            i = seq.index(target, i + 1)
        except ValueError:
            return out
        out.append(i)


def _early(index: int, msg: Any, parsed: Any, max_bytes: int) -> Rejection:
    if isinstance(parsed, _Oversized):
        detail = f"message is {len(msg)} bytes, the limit is {max_bytes}"
        return Rejection(index, RejectReason.OVERSIZED, detail, None)
    if isinstance(parsed, _Failure):
        return _unparseable(index, msg, parsed.error)
    detail = f"message must be a JSON object, got {describe(parsed)}"
    return Rejection(index, RejectReason.NOT_AN_OBJECT, detail, None)


def _unparseable(index: int, msg: Any, error: str) -> Rejection:
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
    return Rejection(index, RejectReason.MALFORMED_JSON, f"malformed JSON: {error}", None)


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
