"""The event schema base class: envelope checks, batch assembly and the safety net.

A concrete event schema (one module of :mod:`schemas.events` per kind: telemetry, machine
event, inspection) declares its ``kind``, its ``row_schema`` and implements
:meth:`EventSchema._body` (typed per-item columns) and :meth:`EventSchema._body_json_schema`.
Everything common lives here: parsing, the envelope fields, the time window, the ``date``
partition column, rejection bookkeeping and the guarantee that every input message ends in rows
or in exactly one rejection.
"""

from __future__ import annotations

import gc
import logging
import re
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from schemas._batch import Batch, describe, parse_messages
from schemas._columns import (
    POSITIONS,
    TIMESTAMP,
    extract,
    get_all,
    id_columns,
    string_column,
    timestamp_column,
)
from schemas.json_schema import event_json_schema
from schemas.kinds import ID_PATTERN, SUPPORTED_VERSIONS, EventKind, RejectReason
from schemas.results import DecodeLimits, DecodeResult, Rejection

__all__ = ["COMMON_FIELDS", "ID_RE", "MSG_FIELD", "EventSchema"]

logger = logging.getLogger(__name__)

ID_RE = re.compile(ID_PATTERN)
_ID_FIELDS = ("tenant", "plant", "line", "machine")
_ENVELOPE_KEYS = ("schema_version", "kind", "event_id", *_ID_FIELDS, "event_time")
_US = 1_000_000

COMMON_FIELDS = (
    pa.field("event_id", pa.string(), nullable=False),
    pa.field("schema_version", pa.int16(), nullable=False),
    pa.field("tenant", pa.string(), nullable=False),
    pa.field("plant", pa.string(), nullable=False),
    pa.field("line", pa.string(), nullable=False),
    pa.field("machine", pa.string(), nullable=False),
    pa.field("event_time", TIMESTAMP, nullable=False),
    pa.field("sent_time", TIMESTAMP),
    pa.field("date", pa.date32(), nullable=False),
)
"""Envelope columns, first in every silver table."""

MSG_FIELD = pa.field("_msg", pa.int32(), nullable=False)
"""Index of the source message in the decoded batch; last column of ``row_schema``."""


class EventSchema:
    """Version 1 event schema of one event kind: decoding, row schema, JSON Schema and the roles
    of its columns.

    A kind is declared by its subclass, alone in its module of :mod:`schemas.events`, and
    nowhere else: the silver table, the curated jobs' inputs, the
    machine-type filter of a dataset build and the sharing contracts read these attributes
    (docs/EXTENDING.md, "Add an event kind"). Every column a role names is a body column of
    ``row_schema`` (``tests/unit/test_event_kinds.py`` checks it).

    Attributes:
        kind: the event kind this event schema accepts (a new kind:
            ``kind = EventKind.declare("<kind>")``).
        version: the ``schema_version`` it implements.
        row_schema: columns of ``DecodeResult.rows``: the envelope, the kind's body columns
            and ``_msg`` last.
        silver_extra_fields: columns the ingest adds to the kind's silver table after
            decoding (telemetry: the reading as sent, before unit conversion); nullable.
        identifier_columns: body columns naming something of a company besides its machines,
            each with the prefix of its pseudonyms (inspection: ``part_serial`` -> ``s``,
            ``lot`` -> ``lot``); sharing pseudonymises them within the tenant unless a sharing
            contract releases them. A prefix is part of every published pseudonym: never
            change it once released.
        machine_list_column: a list column of machine ids of the row's line besides the
            envelope's ``machine`` (inspection: the machines that made the part); a build's
            machine-type filter keeps the row when any of them is of a selected type.
        tag_column: the column naming a registry tag (telemetry); a sharing contract's
            ``tags`` and ``confidential_tags`` select rows on it.
        free_text_columns: free-text columns, emptied in every shared row whatever the
            sharing contract says (machine event: the alarm text).
    """

    kind: ClassVar[EventKind]
    version: ClassVar[int] = 1
    row_schema: ClassVar[pa.Schema]
    silver_extra_fields: ClassVar[tuple[pa.Field, ...]] = ()
    identifier_columns: ClassVar[Mapping[str, str]] = MappingProxyType({})
    machine_list_column: ClassVar[str | None] = None
    tag_column: ClassVar[str | None] = None
    free_text_columns: ClassVar[tuple[str, ...]] = ()

    def role_columns(self) -> tuple[str, ...]:
        """Every column a role names (for the check that each is a body column)."""
        optional = (self.machine_list_column, self.tag_column)
        return (
            *self.identifier_columns,
            *(c for c in optional if c is not None),
            *self.free_text_columns,
        )

    def decode(
        self,
        messages: Sequence[bytes],
        *,
        tenant: str | None = None,
        now: datetime | None = None,
        limits: DecodeLimits = DecodeLimits(),  # noqa: B008 - frozen value object
    ) -> DecodeResult:
        """Decode one micro-batch of raw Kafka message values into typed silver rows.

        Args:
            messages: raw message values, in consumption order.
            tenant: the tenant of the topic the batch came from; events naming another
                tenant are rejected with ``tenant_mismatch``. None skips the check.
            now: reference time of the event-time window (default: the current time; a naive
                datetime is taken as UTC).
            limits: size and time-window bounds.

        Returns:
            Rows for the valid messages and one rejection for each other message. Never
            raises for any message content.

        The cyclic garbage collector is paused while a batch decodes (and restored after):
        parsing allocates tens of thousands of acyclic containers that would otherwise
        trigger collections costing 15-30% of the decode time. Decoding creates no cycles.
        """
        ref = datetime.now(UTC) if now is None else now
        if ref.tzinfo is None:
            ref = ref.replace(tzinfo=UTC)
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return self._decode_batch(messages, tenant, ref, limits)
        except Exception:
            logger.exception(
                "%s decoder failed on a batch of %d; decoding one by one", self.kind, len(messages)
            )
        finally:
            if was_enabled:
                gc.enable()
        return self._decode_one_by_one(messages, tenant, ref, limits)

    def json_schema(self) -> dict[str, Any]:
        """JSON Schema (2020-12) of this event schema, for plant integrators and compat checks."""
        return event_json_schema(self.kind, self.version, self._body_json_schema())

    def _body(self, b: Batch) -> tuple[dict[str, pa.Array], list[int] | None]:
        """Typed body columns per item, and each item's position (None: one item per message)."""
        raise NotImplementedError

    def _body_json_schema(self) -> tuple[dict[str, Any], list[str], list[dict[str, Any]]]:
        """Body ``properties``, extra ``required`` names and ``allOf`` clauses (JSON Schema)."""
        raise NotImplementedError

    def _decode_batch(
        self, messages: Sequence[bytes], tenant: str | None, now: datetime, limits: DecodeLimits
    ) -> DecodeResult:
        b = parse_messages(messages, limits.max_message_bytes)
        raw = dict(zip(_ENVELOPE_KEYS, extract(b.objs, _ENVELOPE_KEYS), strict=True))
        ids = raw["event_id"]
        columns = self._envelope(b, raw, tenant, now, limits)
        body, owners = self._body(b)
        columns.update(body)
        columns["_msg"] = pa.array(b.msg_index, pa.int32())
        owner_of_row = pa.array(np.arange(len(b.objs), dtype=np.int32))
        if owners is not None:
            owner_of_row = pa.array(owners, pa.int32())
            for name in (f.name for f in COMMON_FIELDS):
                columns[name] = columns[name].take(owner_of_row)
            columns["_msg"] = columns["_msg"].take(owner_of_row)
        table = pa.Table.from_arrays(
            [columns[f.name] for f in self.row_schema], schema=self.row_schema
        )
        bad = b.bad
        if bad:
            rejected = pa.array(list(bad), pa.int32())
            table = table.filter(pc.invert(pc.is_in(owner_of_row, value_set=rejected)))
        event_ids: list[str | None] = list(ids)
        for early in b.early:
            event_ids.insert(early.index, None)
        rejections = b.early + [
            Rejection(b.msg_index[pos], reason, detail, ids[pos])
            for pos, (reason, detail) in bad.items()
        ]
        rejections.sort(key=lambda r: r.index)
        return DecodeResult(table, rejections, event_ids)

    def _envelope(
        self,
        b: Batch,
        raw: dict[str, list[Any]],
        tenant: str | None,
        now: datetime,
        limits: DecodeLimits,
    ) -> dict[str, pa.Array]:
        cols: dict[str, pa.Array] = {
            "schema_version": self._check_version(b, raw["schema_version"])
        }
        self._check_kind(b, raw["kind"])
        cols["event_id"] = string_column(b, POSITIONS, raw["event_id"], "event_id", max_len=128)
        cols.update(id_columns(b, raw, _ID_FIELDS, ID_RE))
        if tenant is not None:
            self._check_tenant(b, raw["tenant"], tenant)
        event_time = timestamp_column(b, POSITIONS, raw["event_time"], "event_time")
        self._check_window(b, event_time, now, limits)
        cols["event_time"] = event_time
        sent = get_all(b.objs, "sent_time")
        cols["sent_time"] = (
            pa.nulls(len(sent), TIMESTAMP)
            if sent.count(None) == len(sent)
            else timestamp_column(b, POSITIONS, sent, "sent_time", required=False)
        )
        cols["date"] = pc.cast(event_time, pa.date32())
        return cols

    def _check_version(self, b: Batch, vals: list[Any]) -> pa.Array:
        if vals.count(self.version) == len(vals) and set(map(type, vals)) == {int}:
            return pa.repeat(pa.scalar(self.version, pa.int16()), len(vals))
        supported = ", ".join(map(str, sorted(SUPPORTED_VERSIONS)))
        _check_exact(
            b,
            vals,
            "schema_version",
            accepted=SUPPORTED_VERSIONS,
            expected=(int, "an integer"),
            reason=RejectReason.UNKNOWN_SCHEMA_VERSION,
            why=f"is not supported (supported: {supported})",
        )
        return pa.array(vals, pa.int16())

    def _check_kind(self, b: Batch, vals: list[Any]) -> None:
        if vals.count(self.kind.value) != len(vals):
            _check_exact(
                b,
                vals,
                "kind",
                accepted={self.kind.value},
                expected=(str, "a string"),
                reason=RejectReason.KIND_MISMATCH,
                why=f"was sent to a {self.kind.value!r} topic",
            )

    @staticmethod
    def _check_tenant(b: Batch, vals: list[Any], tenant: str) -> None:
        others = set(vals) - {tenant, None}
        if not others:
            return
        for pos, v in enumerate(vals):
            if v in others:
                b.reject(
                    pos,
                    RejectReason.TENANT_MISMATCH,
                    f"field 'tenant': {v!r} differs from the topic's tenant {tenant!r}",
                )

    @staticmethod
    def _check_window(b: Batch, event_time: pa.Array, now: datetime, limits: DecodeLimits) -> None:
        micros = event_time.cast(pa.int64())
        bounds = pc.min_max(micros).as_py()
        if bounds["min"] is None:
            return
        now_us = int(now.timestamp() * _US)
        hi = now_us + int(limits.max_future_skew.total_seconds() * _US)
        lo = now_us - int(limits.max_event_age.total_seconds() * _US)
        if lo <= bounds["min"] and bounds["max"] <= hi:
            return
        skew_s = limits.max_future_skew.total_seconds()
        age_days = limits.max_event_age.total_seconds() / 86400
        for pos, us in enumerate(micros.to_pylist()):
            if us is None or lo <= us <= hi:
                continue
            when = datetime.fromtimestamp(us / _US, UTC).isoformat()
            if us > hi:
                b.reject(
                    pos,
                    RejectReason.EVENT_TIME_IN_FUTURE,
                    f"field 'event_time': {when} is {(us - now_us) / _US:.0f} s in the future "
                    f"(at most {skew_s:.0f} s allowed)",
                )
            else:
                b.reject(
                    pos,
                    RejectReason.EVENT_TIME_TOO_OLD,
                    f"field 'event_time': {when} is {(now_us - us) / _US / 86400:.1f} days old "
                    f"(at most {age_days:.0f} days allowed)",
                )

    def _decode_one_by_one(
        self, messages: Sequence[bytes], tenant: str | None, now: datetime, limits: DecodeLimits
    ) -> DecodeResult:
        tables: list[pa.Table] = []
        rejections: list[Rejection] = []
        event_ids: list[str | None] = []
        failed = 0
        for i, msg in enumerate(messages):
            try:
                one = self._decode_batch([msg], tenant, now, limits)
            except Exception as exc:
                if not failed:
                    logger.exception("%s decoder failed on message %d", self.kind, i)
                failed += 1
                rejections.append(
                    Rejection(i, RejectReason.INVALID_VALUE, f"decoder error: {exc!r}", None)
                )
                event_ids.append(None)
                continue
            msg_col = pa.array([i] * one.rows.num_rows, pa.int32())
            tables.append(one.rows.set_column(len(self.row_schema) - 1, MSG_FIELD, msg_col))
            rejections.extend(Rejection(i, r.reason, r.detail, r.event_id) for r in one.rejections)
            event_ids.extend(one.event_ids)
        if failed:
            logger.error("%s decoder failed on %d of %d messages", self.kind, failed, len(messages))
        rows = pa.concat_tables(tables) if tables else self.row_schema.empty_table()
        return DecodeResult(rows, rejections, event_ids)


def _check_exact(
    b: Batch,
    vals: list[Any],
    key: str,
    *,
    accepted: Collection[Any],
    expected: tuple[type, str],
    reason: RejectReason,
    why: str,
) -> None:
    """Reject every value that is not one of ``accepted`` (of type ``expected[0]``)."""
    for pos, v in enumerate(vals):
        if type(v) is expected[0] and v in accepted:
            continue
        if v is None:
            b.reject(pos, RejectReason.MISSING_FIELD, f"field '{key}' is required")
        elif type(v) is not expected[0]:
            b.reject(
                pos,
                RejectReason.WRONG_TYPE,
                f"field '{key}': expected {expected[1]}, got {describe(v)}",
            )
        else:
            b.reject(pos, reason, f"field '{key}': {describe(v)} {why}")
        vals[pos] = None
