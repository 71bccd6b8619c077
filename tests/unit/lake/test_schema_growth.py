"""A lake written by an older maxlake takes the columns a newer one appends."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable

from lake import DeltaStore


def test_append_adds_new_columns_and_keeps_old_rows(tmp_path: Path) -> None:
    store = DeltaStore(tmp_path / "lake")
    old = pa.table({"value": [1.0], "date": [date(2026, 11, 1)]})
    store.append("silver/telemetry", old, partition_by=["date"], txns={"t/0": 0})
    new = pa.table(
        {"value": [30.0], "date": [date(2026, 11, 2)], "value_sent": [86.0], "unit_sent": ["degF"]}
    )
    store.append("silver/telemetry", new, partition_by=["date"], txns={"t/0": 1})

    table = DeltaTable(str(tmp_path / "lake" / "silver" / "telemetry"))
    rows = sorted(table.to_pyarrow_table().to_pylist(), key=lambda r: r["date"])
    assert rows == [
        {"value": 1.0, "date": date(2026, 11, 1), "value_sent": None, "unit_sent": None},
        {"value": 30.0, "date": date(2026, 11, 2), "value_sent": 86.0, "unit_sent": "degF"},
    ]
    assert table.transaction_version("t/0") == 1
