"""Machine event v1: a state change or an alarm of one machine, one silver row per event."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from schemas._batch import Batch, describe
from schemas._columns import POSITIONS, Scope, int_column, string_column
from schemas.event_schema import COMMON_FIELDS, MSG_FIELD, EventSchema
from schemas.kinds import EventKind, RejectReason

__all__ = ["EVENT_TYPES", "STATES", "MachineEventSchema"]

EVENT_TYPES = frozenset({"STATE", "ALARM"})
STATES = frozenset({"RUNNING", "IDLE", "SETUP", "DOWN", "MAINTENANCE"})
_ALARM = Scope(None, lambda _: "alarm")


class MachineEventSchema(EventSchema):
    """``STATE`` events carry ``state``; ``ALARM`` events carry an ``alarm`` object."""

    kind = EventKind.MACHINE_EVENT
    row_schema = pa.schema(
        [
            *COMMON_FIELDS,
            pa.field("event_type", pa.string(), nullable=False),
            pa.field("state", pa.string()),
            pa.field("alarm_code", pa.string()),
            pa.field("alarm_severity", pa.int16()),
            pa.field("alarm_text", pa.string()),
            MSG_FIELD,
        ]
    )
    free_text_columns = ("alarm_text",)

    def _body(self, b: Batch) -> tuple[dict[str, pa.Array], list[int] | None]:
        objs = b.objs
        types = [o.get("event_type") for o in objs]
        event_type = string_column(b, POSITIONS, types, "event_type", enum=EVENT_TYPES)
        states = [o.get("state") for o in objs]
        state = string_column(b, POSITIONS, states, "state", required=False, enum=STATES)
        alarms: list[dict[str, Any]] = []
        for pos, (etype, st, alarm) in enumerate(
            zip(types, states, (o.get("alarm") for o in objs), strict=True)
        ):
            if etype == "STATE" and st is None and pos not in b.bad:
                b.reject(
                    pos,
                    RejectReason.MISSING_FIELD,
                    "field 'state' is required when event_type is STATE",
                )
            if type(alarm) is dict:
                alarms.append(alarm)
                continue
            if etype == "ALARM" and alarm is None:
                b.reject(
                    pos,
                    RejectReason.MISSING_FIELD,
                    "field 'alarm' is required when event_type is ALARM",
                )
            elif alarm is not None:
                b.reject(
                    pos,
                    RejectReason.WRONG_TYPE,
                    f"field 'alarm': expected an object, got {describe(alarm)}",
                )
            alarms.append({})
        codes = [a.get("code") for a in alarms]
        severities = [a.get("severity") for a in alarms]
        code = string_column(b, _ALARM, codes, "code", required=False, max_len=128)
        severity = int_column(
            b, _ALARM, severities, "severity", lo=1, hi=1000, arrow_type=pa.int16(), required=False
        )
        texts = [a.get("text") for a in alarms]
        text = string_column(b, _ALARM, texts, "text", required=False, max_len=1000)
        for pos, etype in enumerate(types):
            if codes[pos] == "":
                b.reject(pos, RejectReason.INVALID_VALUE, "field 'alarm.code': must not be empty")
            if etype == "ALARM" and alarms[pos]:
                for key, vals in (("code", codes), ("severity", severities)):
                    if vals[pos] is None:
                        b.reject(
                            pos,
                            RejectReason.MISSING_FIELD,
                            f"field 'alarm.{key}' is required but missing or null",
                        )
        return {
            "event_type": event_type,
            "state": state,
            "alarm_code": code,
            "alarm_severity": severity,
            "alarm_text": text,
        }, None

    def _body_json_schema(self) -> tuple[dict[str, Any], list[str], list[dict[str, Any]]]:
        alarm = {
            "type": "object",
            "required": ["code", "severity"],
            "properties": {
                "code": {"type": "string", "minLength": 1, "maxLength": 128},
                "severity": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 1000,
                    "description": "OPC UA severity 1..1000",
                },
                "text": {"type": "string", "maxLength": 1000},
            },
        }
        props = {
            "event_type": {"enum": sorted(EVENT_TYPES)},
            "state": {"enum": sorted(STATES)},
            "alarm": alarm,
        }
        rules = [
            {
                "if": {"properties": {"event_type": {"const": "STATE"}}},
                "then": {"required": ["state"]},
            },
            {
                "if": {"properties": {"event_type": {"const": "ALARM"}}},
                "then": {"required": ["alarm"]},
            },
        ]
        return props, ["event_type"], rules
