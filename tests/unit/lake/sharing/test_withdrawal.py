"""A partner reads the metadata of two versions of a set, one company withdraws in between.

Everything a partner can fetch without downloading a split — the published manifest, the data
card, the Delta Sharing ``metaData`` line (schema) of every split — must not say which machine
types a set holds or that a company left: the two versions' documents may differ in figures
(rows, hashes, label counts, version numbers), not in a single word. Built with the real
predictive-maintenance job, whose feature columns are one group per registry tag.

A column published only when every contract releases it (``plant`` here) must not reappear
when the last company withholding it leaves: once a version withheld it, later versions do,
until the lake operator resets it by name (recorded in the stored manifest).
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lake import DeltaStore, silver_schema, silver_table
from lake.curation import CuratedArea, Manifest, build_dataset, parse_spec
from lake.curation.card import stored_card
from lake.curation.published import published_manifest_bytes
from lake.sharing import WithholdingResetError
from lake.tables import SILVER_PARTITIONS
from maxlake.server.deltasharing.actions import metadata_line
from maxlake.server.deltasharing.schema import schema_string
from tests.unit.lake.curation.test_build_helpers import T0, TENANT, registry, seeded_lake
from tests.unit.lake.sharing.helpers import Sharing

STEEL = "ironbridge-steel"
"""The packaged registry's only company with ``rolling_stand`` machines."""
_FIGURES = re.compile(r"[0-9a-f]{64}|\d+(\.\d+)?(e-?\d+)?")


def _steel_telemetry(store: DeltaStore) -> None:
    """Eight roll-force readings of each of two rolling stands, every 6 h of two days."""
    rows = [
        {
            "event_id": f"steel-{machine}-{i}",
            "schema_version": 1,
            "tenant": STEEL,
            "plant": "duisburg",
            "line": "hsm-1",
            "machine": machine,
            "event_time": T0 + timedelta(hours=6 * i),
            "sent_time": None,
            "date": (T0 + timedelta(hours=6 * i)).date(),
            "kafka_topic": f"maxlake.{STEEL}.telemetry",
            "kafka_partition": 0,
            "kafka_offset": n * 8 + i,
            "ingested_at": T0 + timedelta(hours=6 * i),
            "reading_index": 0,
            "tag": "roll_force",
            "value": 18_000.0 + 100 * i + n,
            "unit": "kN",
            "quality": "GOOD",
        }
        for n, machine in enumerate(("f1", "f2"))
        for i in range(8)
    ]
    table = pa.Table.from_pylist(rows, schema=silver_schema("telemetry"))
    store.append(silver_table("telemetry"), table, partition_by=SILVER_PARTITIONS, txns={})


def _contract(cid: str, tenant: str, deid: str = "") -> bytes:
    return (
        f'id = "{cid}"\ntenant = "{tenant}"\npurposes = ["predictive-maintenance-*"]\n'
        '[share]\nkinds = ["telemetry"]\n[deidentify]\nsuppress_rare = false\n'
        f"max_linkable_share = 1.0\n{deid}"
    ).encode()


def _build(store: DeltaStore, sharing: Sharing, reset: tuple[str, ...] = ()) -> Manifest:
    spec = parse_spec(
        {
            "name": "pm",
            "description": "6-hour spindle and roll statistics",
            "purpose": "predictive-maintenance-research",
            "job": {
                "name": "predictive_maintenance",
                "window": "6h",
                "horizon_h": 6,
                "drop_unobserved_horizon": False,
            },
        }
    )
    return build_dataset(
        store,
        spec,
        registry=registry(),
        sharing=sharing.gate,
        allow_failed_quality=True,
        reset_withheld=reset,
    )


def _seen_by_partner(store: DeltaStore, manifest: Manifest) -> dict[str, str]:
    """Every metadata document of ``manifest``'s version a partner can fetch, by name."""
    area = CuratedArea.of(store.root)
    seen = {
        "manifest": published_manifest_bytes(manifest).decode(),
        "card": stored_card(area, manifest).decode(),
    }
    for split, info in manifest.splits.items():
        line: dict[str, Any] = metadata_line(
            manifest,
            split,
            table_id="t",
            schema_string=schema_string(
                pq.read_schema(
                    area.local_file(manifest.name, manifest.version, info.file, info.sha256)
                )
            ),
            size=0,
            with_version=False,
        )
        seen[f"metaData {split}"] = json.dumps(line, sort_keys=True)
    return seen


def _words(text: str) -> str:
    """``text`` with every figure (number, sha256) replaced by ``#``."""
    return _FIGURES.sub("#", text)


Seen = tuple[Manifest, dict[str, str]]


def _steel_withdraws(tmp_path: Path, ours: str) -> tuple[DeltaStore, Sharing, Seen, Seen]:
    """Build with both companies (ours with ``[deidentify]`` lines ``ours``), revoke the steel
    company's contract, build again: the lake, the contracts, and each version with what a
    partner fetches of it."""
    store = seeded_lake(tmp_path / "lake")
    _steel_telemetry(store)
    sharing = Sharing(tmp_path, min_group_size=1)
    sharing.add(_contract("nw-pm", TENANT, ours))
    sharing.add(_contract("steel-pm", STEEL))
    both = _build(store, sharing)
    before = _seen_by_partner(store, both)
    sharing.store.revoke("steel-pm", reason="ironbridge-steel leaves the consortium")
    alone = _build(store, sharing)
    return store, sharing, (both, before), (alone, _seen_by_partner(store, alone))


def test_a_withdrawal_and_the_machine_types_are_not_in_anything_a_partner_fetches(
    tmp_path: Path,
) -> None:
    _, _, (both, before), (alone, after) = _steel_withdraws(tmp_path, "")

    assert both.sharing is not None
    assert alone.sharing is not None
    assert (both.sharing["tenants"], alone.sharing["tenants"]) == (2, 1), "no withdrawal built"
    assert alone.rows < both.rows
    assert before.keys() == after.keys()
    for name, text in before.items():
        assert _words(text) == _words(after[name]), f"the {name} changed in words"
        for machine_type in registry().machine_types:
            assert machine_type not in text, f"{machine_type} named in the {name}"
    every_tag = {t.tag for mt in registry().machine_types.values() for t in mt.tags}
    published_tags = {f["name"].split("__")[0] for f in alone.features} - {"machine_type"}
    assert published_tags == every_tag, "the feature columns follow the contributors"


def _columns(store: DeltaStore, manifest: Manifest) -> set[str]:
    """Every column of every split file of ``manifest``'s version (what a partner downloads)."""
    area = CuratedArea.of(store.root)
    return {
        name
        for info in manifest.splits.values()
        for name in pq.read_schema(
            area.local_file(manifest.name, manifest.version, info.file, info.sha256)
        ).names
    }


def test_a_column_withheld_for_one_company_does_not_reappear_when_it_leaves(
    tmp_path: Path,
) -> None:
    store, sharing, (both, before), (alone, after) = _steel_withdraws(
        tmp_path, 'release = ["plant"]\n'
    )

    assert alone.sharing is not None
    assert alone.sharing["tenants"] == 1, "no withdrawal built"
    assert "plant" not in _columns(store, both)
    assert "plant" not in _columns(store, alone), "plant reappeared: the withholder left"
    for name, text in before.items():
        assert _words(text) == _words(after[name]), f"the {name} changed in words"
    assert alone.sharing["withheld_carried"] == ["plant"]
    assert alone.sharing["withheld_previous_version"] == both.version

    reset = _build(store, sharing, reset=("plant",))

    assert reset.sharing is not None
    assert "plant" in _columns(store, reset), "the operator's reset publishes the column"
    assert reset.sharing["withheld_reset"] == ["plant"]
    assert "plant" not in reset.sharing["withheld_columns"]
    with pytest.raises(WithholdingResetError, match=r"'plant'.*v3 withheld tenant, line"):
        _build(store, sharing, reset=("plant",))
