"""Every event example in README.md and docs/ lands in silver; events the registry does not know
are quarantined with a reason (``unknown_machine``, ``unknown_tag``, ``unknown_alarm_code``,
``unknown_defect_code``) and a detail naming the offending value and the field it came from."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pytest

from lake import DeltaStore
from tests.unit.lake.batches import messages, pipeline

ROOT = Path(__file__).resolve().parents[3]
_BLOCK = re.compile(r"```json\n(.*?)```", re.DOTALL)


def _doc_events() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for block in _BLOCK.findall(doc.read_text()):
            try:
                event = orjson.loads(block)
            except orjson.JSONDecodeError:
                continue
            if isinstance(event, dict) and {"kind", "event_id", "tenant"} <= set(event):
                found.append((f"{doc.name}:{event['event_id']}", event))
    return found


DOC_EVENTS = _doc_events()


def test_the_docs_hold_an_example_of_every_kind() -> None:
    assert {e["kind"] for _, e in DOC_EVENTS} == {"telemetry", "machine_event", "inspection"}


@pytest.mark.parametrize(("where", "event"), DOC_EVENTS, ids=[w for w, _ in DOC_EVENTS])
def test_every_documented_event_lands_in_silver(
    tmp_path: Path, where: str, event: dict[str, Any]
) -> None:
    topic = f"maxlake.{event['tenant']}.{event['kind']}"
    result = pipeline(tmp_path).process(event["kind"], messages([orjson.dumps(event)], topic=topic))
    if result.quarantined:
        detail = _quarantine(tmp_path, event["kind"]).row(0, named=True)
        pytest.fail(f"{where} was quarantined: {detail['reasons']} {detail['details']}")
    assert result.silver_events == 1


def _quarantine(root: Path, kind: str) -> pl.DataFrame:
    frame = DeltaStore(root).read_frame(f"quarantine/{kind}", columns=["reasons", "details"])
    assert frame is not None
    return frame


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _envelope(kind: str, tenant: str, plant: str, line: str, machine: str) -> dict[str, Any]:
    return {
        "event_id": f"{machine}-{kind}-1",
        "schema_version": 1,
        "kind": kind,
        "tenant": tenant,
        "plant": plant,
        "line": line,
        "machine": machine,
        "event_time": _now(),
    }


def _reading(
    machine: str,
    tag: str,
    tenant: str = "northwind-auto",
    plant: str = "stuttgart",
    line: str = "block-l1",
) -> dict[str, Any]:
    event = _envelope("telemetry", tenant, plant, line, machine)
    return {**event, "readings": [{"tag": tag, "value": 100.0, "unit": "rpm"}]}


def _alarm(code: str) -> dict[str, Any]:
    event = _envelope("machine_event", "ironbridge-steel", "duisburg", "hsm-1", "f2")
    return {**event, "event_type": "ALARM", "alarm": {"code": code, "severity": 800}}


def _inspection(machines: list[str], defects: list[str]) -> dict[str, Any]:
    event = _envelope("inspection", "circuitry-electronics", "penang", "smt-1", "reflow-1")
    return {
        **event,
        "part_serial": "PCB-1",
        "lot": "LOT-1",
        "machines": machines,
        "process_start": event["event_time"],
        "process_end": event["event_time"],
        "result": "FAIL",
        "defect_codes": defects,
    }


@pytest.mark.parametrize(
    ("event", "reason", "detail"),
    [
        (
            _reading("cnc-104", "spindle_speed"),
            "unknown_machine",
            "machine 'cnc-104' is not a machine of line northwind-auto/stuttgart/block-l1 in the "
            "asset registry (envelope: northwind-auto/stuttgart/block-l1/cnc-104)",
        ),
        (
            _reading("m1", "spindle_speed", tenant="acme", plant="p1", line="l1"),
            "unknown_machine",
            "tenant 'acme' is not in the asset registry (envelope: acme/p1/l1/m1)",
        ),
        (
            _reading("cnc-101", "spindle_speed", plant="paris"),
            "unknown_machine",
            "plant 'paris' is not a plant of tenant 'northwind-auto' in the asset registry "
            "(envelope: northwind-auto/paris/block-l1/cnc-101)",
        ),
        (
            _reading("cnc-101", "spindle_speed", line="block-l9"),
            "unknown_machine",
            "line 'block-l9' is not a line of plant northwind-auto/stuttgart in the asset "
            "registry (envelope: northwind-auto/stuttgart/block-l9/cnc-101)",
        ),
        (
            {
                **_envelope("machine_event", "acme", "p1", "l1", "m1"),
                "event_type": "STATE",
                "state": "RUNNING",
            },
            "unknown_machine",
            "tenant 'acme' is not in the asset registry (envelope: acme/p1/l1/m1)",
        ),
        (
            _reading("cnc-101", "spindle_torque"),
            "unknown_tag",
            "tag 'spindle_torque' (readings[].tag) is not a tag of machine type 'cnc_mill' "
            "(machine 'cnc-101')",
        ),
        (
            _alarm("RS-999"),
            "unknown_alarm_code",
            "alarm code 'RS-999' (alarm.code) is not an alarm of machine type 'rolling_stand' "
            "(machine 'f2')",
        ),
        (
            _inspection(["pnp-11", "reflow-1"], ["SOLDER_BRIDGE"]),
            "unknown_defect_code",
            "defect codes SOLDER_BRIDGE (field defect_codes) are not codes of any machine type "
            "of tenant 'circuitry-electronics'",
        ),
        (
            _inspection(["pnp-99", "reflow-1"], ["BRIDGING"]),
            "unknown_machine",
            "machines pnp-99 (field machines) are not machines of tenant "
            "'circuitry-electronics' in the asset registry",
        ),
    ],
    ids=[
        "machine",
        "tenant",
        "plant",
        "line",
        "machine_event_tenant",
        "tag",
        "alarm_code",
        "defect_code",
        "inspection_machine",
    ],
)
def test_unknown_registry_entries_are_named_in_the_quarantine(
    tmp_path: Path, event: dict[str, Any], reason: str, detail: str
) -> None:
    topic = f"maxlake.{event['tenant']}.{event['kind']}"
    result = pipeline(tmp_path).process(event["kind"], messages([orjson.dumps(event)], topic=topic))
    assert result.quarantined == 1
    row = _quarantine(tmp_path, event["kind"]).row(0, named=True)
    assert row["reasons"] == [reason]
    assert row["details"] == [detail]
