"""docs/EXTENDING.md, "Add an event kind", done as written.

A copy of the source packages gets an ``energy`` kind by the walkthrough's three steps only:
one new module ``schemas/events/energy.py``, one new suite file ``quality/suites/energy.json``
and ``maxlake schemas export --out schemas/published``. A fresh interpreter on the copy then
ingests energy events into a Delta lake (a bad one quarantined by the new suite), builds a
curated set from them with a plug-in job, accepts a sharing contract naming the kind and
de-identifies its rows under it (the meter, an identifier column, pseudonymised with the prefix
the module declares). No existing file is edited; without any one of the steps the test fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("maxlake", "schemas", "streams", "quality", "lake", "infra")

ENERGY_SCHEMA = '''"""Energy v1: the energy one machine drew since its previous reading."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pyarrow as pa

from schemas._batch import Batch
from schemas._columns import POSITIONS, number_column, string_column
from schemas.event_schema import COMMON_FIELDS, MSG_FIELD, EventSchema
from schemas.kinds import EventKind


class EnergySchema(EventSchema):
    """One meter reading: the meter's name and the energy in kWh."""

    kind = EventKind.declare("energy")
    row_schema = pa.schema(
        [
            *COMMON_FIELDS,
            pa.field("meter", pa.string(), nullable=False),
            pa.field("kwh", pa.float64(), nullable=False),
            pa.field("note", pa.string()),
            MSG_FIELD,
        ]
    )
    identifier_columns = MappingProxyType({"meter": "mt"})
    free_text_columns = ("note",)

    def _body(self, b: Batch) -> tuple[dict[str, pa.Array], list[int] | None]:
        objs = b.objs
        return {
            "meter": string_column(b, POSITIONS, [o.get("meter") for o in objs], "meter"),
            "kwh": number_column(b, POSITIONS, [o.get("kwh") for o in objs], "kwh"),
            "note": string_column(
                b, POSITIONS, [o.get("note") for o in objs], "note", required=False
            ),
        }, None

    def _body_json_schema(self) -> tuple[dict[str, Any], list[str], list[dict[str, Any]]]:
        props = {
            "meter": {"type": "string", "minLength": 1},
            "kwh": {"type": "number"},
            "note": {"type": "string"},
        }
        return props, ["meter", "kwh"], []
'''

ENERGY_SUITE = {
    "suite_version": "1.0.0",
    "description": "Energy readings: one row per meter reading.",
    "expectations": [
        {
            "name": "machine_known",
            "level": "drop",
            "reason": "unknown_machine",
            "expectation": "ExpectColumnValuesToBeInSet",
            "kwargs": {"column": "machine_key", "value_set": "$registry.machine_keys"},
            "description": "The tenant/plant/line/machine is in the asset registry.",
        },
        {
            "name": "kwh_not_negative",
            "level": "drop",
            "reason": "negative_energy",
            "expectation": "ExpectColumnValuesToBeBetween",
            "kwargs": {"column": "kwh", "min_value": 0},
            "description": "A meter counts up.",
            "detail": "kwh {kwh} is negative",
        },
    ],
}

SCRIPT = """
import json, sys, tomllib
from datetime import UTC, datetime
from pathlib import Path

import orjson
import polars as pl

from lake import BatchWriter, DeltaStore
from lake.curation import FeatureInfo, JobInputs, JobOutput, build_dataset, parse_spec
from lake.sharing.contract import parse_contract
from lake.sharing.deid import Pseudonymiser, deidentify
from maxlake.settings import Settings
from quality import ValidationGateway
from schemas import load_registry, published_dir, silver_schema
from streams.ingest import IngestPipeline, RawMessage

root = Path(sys.argv[1])
registry = load_registry()
m = registry.machines().slice(0, 1).to_pylist()[0]
now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
topic = f"maxlake.{m['tenant']}.energy"


def event(i, kwh):
    body = {"schema_version": 1, "kind": "energy", "event_id": f"e-{i}", "tenant": m["tenant"],
            "plant": m["plant"], "line": m["line"], "machine": m["machine"],
            "event_time": now, "meter": "main", "kwh": kwh, "note": "shift A"}
    return RawMessage(topic, 0, i, None, b"k", orjson.dumps(body))


store = DeltaStore(root)
pipeline = IngestPipeline(Settings(lake_root=str(root)), ValidationGateway(registry),
                          BatchWriter(store))
result = pipeline.process("energy", [event(0, 1.5), event(1, 2.5), event(2, -4.0)])
quarantine = store.read_frame("quarantine/energy")


def energy_per_machine(inputs: JobInputs) -> JobOutput:
    keys = ["tenant", "plant", "line", "machine"]
    rows = (inputs.source("energy").group_by(keys).agg(pl.col("kwh").sum())
            .with_columns((pl.col("kwh") > 1).cast(pl.Int8).alias("busy")).sort(keys).collect())
    return JobOutput(splits={"train": rows}, features=[FeatureInfo("kwh", "kWh", "energy")],
                     label_columns=["busy"], key_columns=keys)


spec = parse_spec(tomllib.loads(
    'name = "energy"\\npurpose = "research"\\njob = "energy"\\n[sources]\\nenergy = 0\\n'
), source="energy.toml")
manifest = build_dataset(store, spec, registry=registry, out_root=root / "curated",
                         jobs={"energy": energy_per_machine})
contract = parse_contract(
    f'id = "energy-share"\\ntenant = "{m["tenant"]}"\\npurposes = ["research"]\\n'
    '[share]\\nkinds = ["energy"]\\nconfidential_columns = ["energy.kwh"]\\n'.encode(),
    source="energy-share.toml",
)
shared = deidentify(
    store.read_frame("silver/energy").lazy(), "energy", contract,
    Pseudonymiser("energy-share", b"k" * 32),
).collect()
print(json.dumps({
    "silver_columns": silver_schema("energy").names,
    "published": sorted(p.name for p in published_dir().iterdir()),
    "consumed": result.consumed,
    "silver_rows": result.silver_rows,
    "quarantine_reasons": quarantine.get_column("reasons").to_list(),
    "curated_rows": manifest.rows,
    "source_versions": manifest.source_versions,
    "emptied": list(contract.emptied_columns("energy")),
    "shared_meters": sorted(set(shared.get_column("meter").to_list())),
    "shared_notes": shared.get_column("note").to_list(),
}))
"""


def _copy_with_energy(dest: Path, env: dict[str, str]) -> None:
    """The walkthrough's steps on a copy of the source packages."""
    for package in PACKAGES:
        shutil.copytree(
            REPO / package,
            dest / package,
            ignore=shutil.ignore_patterns("__pycache__", ".kafka", "*.pyc"),
        )
    (dest / "schemas" / "events" / "energy.py").write_text(ENERGY_SCHEMA)
    (dest / "quality" / "suites" / "energy.json").write_text(json.dumps(ENERGY_SUITE, indent=2))
    export = [sys.executable, "-m", "maxlake.cli", "schemas", "export"]
    subprocess.run(
        [*export, "--out", "schemas/published"], cwd=dest, env=env, check=True, timeout=120
    )


def test_a_kind_added_by_the_walkthrough_is_ingested_curated_and_shareable(
    tmp_path: Path,
) -> None:
    source = tmp_path / "src"
    env = {**os.environ, "PYTHONPATH": str(source), "GX_ANALYTICS_ENABLED": "false"}
    env = {k: v for k, v in env.items() if not k.startswith("MAXLAKE_")}
    _copy_with_energy(source, env)
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "lake")],
        cwd=source,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])

    assert {"meter", "kwh", "note", "kafka_offset"} <= set(out["silver_columns"])
    assert "energy.v1.schema.json" in out["published"]
    assert (out["consumed"], out["silver_rows"]) == (3, 2)
    assert out["quarantine_reasons"] == [["negative_energy"]]
    assert out["curated_rows"] == 1
    assert out["source_versions"]["energy"] == 0
    assert out["emptied"] == ["kwh", "note"]
    [meter] = out["shared_meters"]
    assert meter.startswith("mt_")
    assert meter != "main"
    assert out["shared_notes"] == [None, None]
