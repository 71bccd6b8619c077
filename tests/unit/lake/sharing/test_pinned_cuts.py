"""Pinned split cuts under a contract that shifts each plant's clock (the default ±30 days):
the cuts are in lake time and every plant is cut at them, and no manifest a reader gets gives
a plant's shift away."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

from lake.curation import build_dataset, load, parse_spec
from lake.curation.jobs._params import iso_us
from lake.curation.published import REDACTED, published_manifest, published_manifest_bytes
from lake.sharing.deid import Pseudonymiser
from tests.unit.lake.curation.test_build_helpers import (
    PUEBLA,
    STUTTGART,
    TENANT,
    registry,
    seeded_lake,
)
from tests.unit.lake.curation.test_build_helpers import T0 as LAKE_T0
from tests.unit.lake.curation.test_summary import manifest as _manifest
from tests.unit.lake.sharing.helpers import PURPOSE, Sharing, contract_toml

KEY = "11" * 32
"""A fixed pseudonym key, so the plants' shifts are known: Stuttgart -20.5 d, Puebla +11.1 d."""
CUTS = (LAKE_T0 + timedelta(days=1), LAKE_T0 + timedelta(days=1, hours=12))


def _us(when: datetime) -> int:
    return round(when.timestamp() * 1_000_000)


def test_pinned_cuts_split_every_plant_at_the_same_lake_instant(tmp_path: Path) -> None:
    store = seeded_lake(tmp_path / "lake")
    keys = tmp_path / "keys.json"
    fd = os.open(keys, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"nw-pm": KEY}, fh)
    sharing = Sharing(tmp_path, min_group_size=1)
    sharing.add(contract_toml())  # time_shift_days: the default, 30
    pseudonyms = Pseudonymiser("nw-pm", bytes.fromhex(KEY))
    shifts = {p: pseudonyms.shift_seconds((TENANT, p), 30.0) for p, _, _ in (STUTTGART, PUEBLA)}
    assert shifts["stuttgart"] < -2 * 86_400 < 2 * 86_400 < shifts["puebla"]

    cuts = {"validation": iso_us(_us(CUTS[0])), "test": iso_us(_us(CUTS[1]))}
    spec = parse_spec(
        {
            "name": "pm-pinned",
            "purpose": PURPOSE,
            "filters": {"tenants": [TENANT]},
            "job": {"name": "predictive_maintenance", "horizon_h": 1, "cuts": cuts},
        }
    )
    manifest = build_dataset(
        store, spec, registry=registry(), sharing=sharing.gate, allow_failed_quality=True
    )

    machines = {
        name: load("pm-pinned", 1, name, lake_root=store.root, allow_failed_quality=True)
        .get_column("machine")
        .n_unique()
        for name in ("train", "validation", "test")
    }
    assert machines == {"train": 5, "validation": 5, "test": 5}  # both plants in every split
    assert "split_rows:validation" not in manifest.quality["failed"]
    assert manifest.job_meta["cuts"] == cuts
    assert manifest.job_meta["cuts_clock"] == "lake"
    assert "cuts_by_plant" not in manifest.job_meta

    shifted = [iso_us(_us(cut) + s * 1_000_000)[:16] for cut in CUTS for s in shifts.values()]
    stored = manifest.to_json().decode()
    published = published_manifest_bytes(manifest).decode()
    for text in shifted:
        assert text not in stored
        assert text not in published
    doc = json.loads(published)
    assert doc["job_meta"]["cuts"] == REDACTED
    assert doc["spec"]["params"]["cuts"] == REDACTED
    assert cuts["validation"] not in published


def test_without_contracts_pinned_cuts_stay_in_the_published_manifest(tmp_path: Path) -> None:
    store = seeded_lake(tmp_path / "lake")
    cuts = {"validation": iso_us(_us(CUTS[0])), "test": iso_us(_us(CUTS[1]))}
    spec = parse_spec(
        {
            "name": "pm-pinned",
            "purpose": PURPOSE,
            "job": {"name": "predictive_maintenance", "horizon_h": 1, "cuts": cuts},
        }
    )
    manifest = build_dataset(store, spec, registry=registry(), allow_failed_quality=True)
    doc = json.loads(published_manifest_bytes(manifest))
    assert doc["job_meta"]["cuts"] == cuts
    rows = pl.concat(
        [
            load("pm-pinned", 1, s, lake_root=store.root, allow_failed_quality=True)
            for s in ("validation",)
        ]
    )
    assert set(rows.get_column("plant")) == {"stuttgart", "puebla"}


def test_set_clock_cuts_all_plants_share_are_published_like_per_plant_cuts() -> None:
    """Whether every plant's shifted cuts fall on one instant depends on the companies in the
    set and on their random keys: published, it would show a withdrawal (a test of
    test_withdrawal failed on it by chance). Under contracts both forms read the same."""
    base = {"cuts_clock": "set", "cuts_pinned": False, "split_by": "plant_time"}
    shared = {
        **base,
        "cuts": {"validation": "2026-01-05T00:00:00Z", "test": "2026-01-06T00:00:00Z"},
    }
    per_plant = {**base, "cuts_by_plant": [{"tenant": "t", "plant": "p"}]}
    enforced = {"enforced": True, "purpose": "p"}
    docs = [
        published_manifest(_manifest(job_meta=meta, sharing=enforced))
        for meta in (shared, per_plant)
    ]
    assert docs[0]["job_meta"] == docs[1]["job_meta"]
    assert docs[0]["job_meta"]["cuts_by_plant"] == REDACTED
    unshared = published_manifest(_manifest(job_meta=shared, sharing=None))
    assert unshared["job_meta"]["cuts"] == shared["cuts"], "without contracts nothing is hidden"
