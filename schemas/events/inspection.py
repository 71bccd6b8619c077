"""Inspection v1: the quality verdict on one produced part, one silver row per part."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from schemas._batch import Batch
from schemas._columns import (
    POSITIONS,
    TIMESTAMP,
    explode,
    number_column,
    string_column,
    timestamp_column,
)
from schemas.event_schema import COMMON_FIELDS, ID_RE, MSG_FIELD, EventSchema
from schemas.kinds import ID_PATTERN, EventKind, RejectReason

__all__ = ["DIMENSION_TYPE", "MAX_LIST_ITEMS", "RESULTS", "InspectionSchema"]

RESULTS = frozenset({"PASS", "FAIL", "REWORK"})
MAX_LIST_ITEMS = 1000
DIMENSION_TYPE = pa.struct(
    [
        pa.field("name", pa.string(), nullable=False),
        pa.field("value", pa.float64(), nullable=False),
        pa.field("unit", pa.string()),
    ]
)


class InspectionSchema(EventSchema):
    """Result of inspecting one part (serial, lot, the machines that made it, measurements)."""

    kind = EventKind.INSPECTION
    row_schema = pa.schema(
        [
            *COMMON_FIELDS,
            pa.field("part_serial", pa.string(), nullable=False),
            pa.field("lot", pa.string(), nullable=False),
            pa.field("machines", pa.list_(pa.string()), nullable=False),
            pa.field("process_start", TIMESTAMP, nullable=False),
            pa.field("process_end", TIMESTAMP, nullable=False),
            pa.field("result", pa.string(), nullable=False),
            pa.field("defect_codes", pa.list_(pa.string()), nullable=False),
            pa.field("dimensions", pa.list_(DIMENSION_TYPE), nullable=False),
            MSG_FIELD,
        ]
    )
    identifier_columns = MappingProxyType({"part_serial": "s", "lot": "lot"})
    machine_list_column = "machines"

    def _body(self, b: Batch) -> tuple[dict[str, pa.Array], list[int] | None]:
        objs = b.objs

        def column(key: str) -> list[Any]:
            return [o.get(key) for o in objs]

        cols = {
            "part_serial": string_column(
                b, POSITIONS, column("part_serial"), "part_serial", max_len=256
            ),
            "lot": string_column(b, POSITIONS, column("lot"), "lot", max_len=256),
        }
        machines = explode(
            b, column("machines"), "machines", required=True, non_empty=True,
            max_items=MAX_LIST_ITEMS, objects=False,
        )  # fmt: skip
        ids = string_column(b, machines.scope, machines.items, "", pattern=ID_RE)
        cols["machines"] = machines.list_array(ids)
        start = timestamp_column(b, POSITIONS, column("process_start"), "process_start")
        end = timestamp_column(b, POSITIONS, column("process_end"), "process_end")
        backwards = pc.less(end, start)
        if pc.any(backwards).as_py():
            for pos in pc.indices_nonzero(pc.fill_null(backwards, False)).to_pylist():
                b.reject(
                    pos,
                    RejectReason.INVALID_VALUE,
                    "field 'process_end': earlier than 'process_start'",
                )
        cols["process_start"], cols["process_end"] = start, end
        cols["result"] = string_column(b, POSITIONS, column("result"), "result", enum=RESULTS)
        defects = explode(
            b, column("defect_codes"), "defect_codes", required=False, non_empty=False,
            max_items=MAX_LIST_ITEMS, objects=False,
        )  # fmt: skip
        codes = string_column(b, defects.scope, defects.items, "", max_len=128)
        cols["defect_codes"] = defects.list_array(codes)
        dims = explode(
            b, column("dimensions"), "dimensions", required=False, non_empty=False,
            max_items=MAX_LIST_ITEMS, objects=True,
        )  # fmt: skip
        scope, items = dims.scope, dims.items
        struct = pa.StructArray.from_arrays(
            [
                string_column(b, scope, [d.get("name") for d in items], "name", max_len=128),
                number_column(b, scope, [d.get("value") for d in items], "value"),
                string_column(b, scope, [d.get("unit") for d in items], "unit", required=False),
            ],
            fields=list(DIMENSION_TYPE),
        )
        cols["dimensions"] = dims.list_array(struct)
        return cols, None

    def _body_json_schema(self) -> tuple[dict[str, Any], list[str], list[dict[str, Any]]]:
        strings = {"type": "array", "items": {"type": "string"}, "maxItems": MAX_LIST_ITEMS}
        dimension = {
            "type": "object",
            "required": ["name", "value"],
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 128},
                "value": {"type": "number"},
                "unit": {"type": "string"},
            },
        }
        props: dict[str, Any] = {
            "part_serial": {"type": "string", "minLength": 1, "maxLength": 256},
            "lot": {"type": "string", "minLength": 1, "maxLength": 256},
            "machines": {
                "type": "array",
                "items": {"type": "string", "pattern": ID_PATTERN},
                "minItems": 1,
                "maxItems": MAX_LIST_ITEMS,
            },
            "process_start": {"type": "string", "format": "date-time"},
            "process_end": {"type": "string", "format": "date-time"},
            "result": {"enum": sorted(RESULTS)},
            "defect_codes": strings,
            "dimensions": {"type": "array", "items": dimension, "maxItems": MAX_LIST_ITEMS},
        }
        required = ["part_serial", "lot", "machines", "process_start", "process_end", "result"]
        return props, required, []
