"""Linkage and re-identification, played by a partner holding two published sets.

The issue's two joins: a part-quality style set joined to another contract's set on
(process_start, process_end), and a predictive-maintenance style set joined on
(window_start, a float feature). Under the default contract options (keyed per-plant time
shift, keyed value noise) neither links; with both options turned off the disclosure report
sees the linkage and the build refuses to publish. Re-identification by structure (machines per
line and plant matched against the alliance registry) fails because tenant, plant and line are
withheld.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest

from lake import DeltaStore, silver_schema, silver_table
from lake.curation import (
    FeatureInfo,
    Job,
    JobInputs,
    JobOutput,
    build_dataset,
    load,
    parse_spec,
    show,
)
from lake.sharing import DisclosureRefused
from lake.tables import SILVER_PARTITIONS
from schemas import load_registry
from tests.unit.lake.curation.test_build_helpers import T0, TENANT, seeded_lake, write_inspection
from tests.unit.lake.sharing.helpers import Sharing
from tests.unit.lake.sharing.test_attacks import RIVAL, _registry, _rival_telemetry
from tests.unit.lake.sharing.test_withdrawal import STEEL

KEYS = ["tenant", "plant", "line", "machine"]


def parts(inputs: JobInputs) -> JobOutput:
    """One row per inspected part: serial, process times and the result."""
    rows = (
        inputs.source("inspection")
        .select(*KEYS, "part_serial", "process_start", "process_end", "result")
        .sort("process_start", "part_serial")
        .collect()
    )
    return JobOutput(
        splits={"train": rows},
        features=[FeatureInfo("process_end", "s", "end of processing")],
        label_columns=["result"],
        key_columns=[*KEYS, "part_serial"],
    )


def windows(inputs: JobInputs) -> JobOutput:
    """Mean of each machine's readings per 6 h window (a predictive-maintenance shape)."""
    rows = (
        inputs.source("telemetry")
        .sort("event_time")
        .group_by_dynamic("event_time", every="6h", group_by=KEYS, start_by="window")
        .agg(pl.col("value").mean().alias("mean_value"), pl.len().alias("readings"))
        .rename({"event_time": "window_start"})
        .with_columns((pl.col("mean_value") > 31).cast(pl.Int8).alias("hot"))
        .sort(*KEYS, "window_start")
        .collect()
    )
    return JobOutput(
        splits={"train": rows},
        features=[FeatureInfo("mean_value", "degC", "mean reading")],
        label_columns=["hot"],
        key_columns=[*KEYS, "window_start"],
    )


JOBS = {"parts": parts, "windows": windows}


def _contract(cid: str, purpose: str, deid: str) -> bytes:
    return (
        f'id = "{cid}"\ntenant = "{TENANT}"\npurposes = ["{purpose}"]\n'
        '[share]\nkinds = ["telemetry", "inspection"]\n'
        f"[deidentify]\nsuppress_rare = false\n{deid}"
    ).encode()


def _build(store: DeltaStore, sharing: Sharing, name: str, job: str, purpose: str) -> None:
    spec = parse_spec(
        {"name": name, "purpose": purpose, "job": job, "filters": {"tenants": [TENANT]}},
        jobs=JOBS,
    )
    build_dataset(
        store,
        spec,
        registry=load_registry(),
        jobs=JOBS,
        sharing=sharing.gate,
        allow_failed_quality=True,
    )


def _lake(root: Path) -> DeltaStore:
    store = seeded_lake(root)
    for i in range(12):
        write_inspection(store, f"SN-{i:04d}", ["cnc-101"], T0 + timedelta(minutes=7 * i + 3))
    return store


def _two_sets(tmp_path: Path, job: str, deid: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    store = _lake(tmp_path / "lake")
    sharing = Sharing(tmp_path, min_group_size=1)
    sharing.add(_contract("nw-a", "study-a", deid))
    sharing.add(_contract("nw-b", "study-b", deid + 'release = ["part_serial"]\n'))
    _build(store, sharing, "set-a", job, "study-a")
    _build(store, sharing, "set-b", job, "study-b")
    return (
        load("set-a", 1, "train", lake_root=store.root),
        load("set-b", 1, "train", lake_root=store.root),
    )


def test_part_sets_of_two_contracts_do_not_join_on_process_times(tmp_path: Path) -> None:
    a, b = _two_sets(tmp_path, "parts", "")
    assert a.height == b.height == 12

    linked = a.join(b, on=["process_start", "process_end"], how="inner")

    assert linked.height == 0, "pseudonymised serials reversed through process times"


def test_window_sets_of_two_contracts_do_not_join_on_window_and_feature(tmp_path: Path) -> None:
    a, b = _two_sets(tmp_path, "windows", "max_linkable_share = 1.0\n")
    assert a.height == b.height > 0

    exact = a.join(b, on=["window_start", "mean_value"], how="inner")
    assert exact.height == 0
    nearest = a.sort("mean_value").join_asof(
        b.sort("mean_value"), on="mean_value", by="window_start", tolerance=1e-9
    )
    assert nearest.get_column("machine_right").null_count() == nearest.height


def test_without_protection_the_report_sees_the_link_and_refuses(tmp_path: Path) -> None:
    off = "time_shift_days = 0\nvalue_noise = 0\n"
    with pytest.raises(DisclosureRefused, match="process_end"):
        _two_sets(tmp_path, "parts", off)


def test_the_report_is_in_every_manifest(tmp_path: Path) -> None:
    store = _lake(tmp_path / "lake")
    sharing = Sharing(tmp_path, min_group_size=1)
    sharing.add(_contract("nw-a", "study-a", ""))
    _build(store, sharing, "set-a", "windows", "study-a")

    report = show("set-a", 1, lake_root=store.root).sharing["disclosure"]  # type: ignore[index]
    assert report["compared_versions"] == 0
    assert report["exact_share"] == 0.0
    assert report["withheld_columns"] == ["tenant", "plant", "line"]
    assert report["machine_type_min_companies"] == 1


def test_structure_does_not_single_out_a_company_in_the_registry(tmp_path: Path) -> None:
    """The attacker's shape match: machines per (plant, line) per company, against the
    registry's shapes of the companies running the machine type."""
    store = seeded_lake(tmp_path / "lake")

    _rival_telemetry(store)
    sharing = Sharing(tmp_path, min_group_size=2)
    for cid, tenant in (("nw-pm", TENANT), ("rival-pm", RIVAL)):
        sharing.add(
            (
                f'id = "{cid}"\ntenant = "{tenant}"\npurposes = ["pm"]\n'
                '[share]\nkinds = ["telemetry"]\n[deidentify]\nmax_linkable_share = 1.0\n'
            ).encode()
        )
    registry = _registry(tmp_path)
    spec = parse_spec(
        {"name": "pm", "purpose": "pm", "job": "windows", "filters": {"tenants": [TENANT, RIVAL]}},
        jobs=JOBS,
    )
    manifest = build_dataset(
        store, spec, registry=registry, jobs=JOBS, sharing=sharing.gate, allow_failed_quality=True
    )
    published = load("pm", 1, "train", lake_root=store.root)
    assert published.height > 0

    machines = pl.from_arrow(registry.machines())
    assert isinstance(machines, pl.DataFrame)
    shapes = {
        t: sorted(g.group_by("plant", "line").len()["len"].to_list())
        for (t,), g in machines.filter(pl.col("machine_type") == "cnc_mill").group_by("tenant")
    }
    named: list[str] = []
    if {"tenant", "plant", "line"} <= set(published.columns):
        for (_,), rows in published.group_by("tenant"):
            shape = sorted(
                rows.group_by("plant", "line").agg(pl.col("machine").n_unique())["machine"]
            )
            named += [t for t, s in shapes.items() if s == shape]
    assert named == [], f"the set's structure names {named}"
    assert manifest.sharing is not None
    assert manifest.sharing["disclosure"]["machine_type_min_companies"] == 2


def _contract_of(cid: str, tenant: str, deid: str = "") -> bytes:
    return (
        f'id = "{cid}"\ntenant = "{tenant}"\npurposes = ["study-a"]\n'
        '[share]\nkinds = ["telemetry", "inspection"]\n'
        f"[deidentify]\nsuppress_rare = false\n{deid}"
    ).encode()


def _rejoin(
    tmp_path: Path, deid: str, job: str = "windows", jobs: Mapping[str, Job] = JOBS
) -> dict[str, object]:
    """Set v1 of two companies; the first leaves (its contract revoked) and signs a new one;
    v2 is built with ``job`` (one of ``jobs``): the rival's rows are the same as in v1 (same
    contract), the first's rows are under a contract of their own. Returns v2's disclosure
    report."""
    store = _lake(tmp_path / "lake")
    _rival_telemetry(store)
    sharing = Sharing(tmp_path, min_group_size=1)
    sharing.add(_contract_of("nw-a", TENANT, deid))
    sharing.add(_contract_of("rv-a", RIVAL, deid))
    spec = parse_spec(
        {
            "name": "set",
            "purpose": "study-a",
            "job": job,
            "filters": {"tenants": [TENANT, RIVAL]},
        },
        jobs=jobs,
    )
    registry = _registry(tmp_path)

    def build() -> dict[str, object]:
        manifest = build_dataset(
            store,
            spec,
            registry=registry,
            jobs=jobs,
            sharing=sharing.gate,
            allow_failed_quality=True,
        )
        assert manifest.sharing is not None
        return dict(manifest.sharing["disclosure"])

    first = build()
    assert first["compared_versions"] == 0
    sharing.store.revoke("nw-a", reason="left the alliance")
    sharing.add(_contract_of("nw-b", TENANT, deid))
    return build()


def test_a_company_rejoining_under_a_new_contract_leaves_the_others_rows_out_of_linkage(
    tmp_path: Path,
) -> None:
    report = _rejoin(tmp_path, "max_linkable_share = 1.0\n")
    assert report["compared_versions"] == 1
    assert report["exact_share"] == 0.0, "the rival's unchanged rows were counted as linked"


def test_a_company_rejoining_without_protection_is_still_refused(tmp_path: Path) -> None:
    with pytest.raises(DisclosureRefused, match="link to another published version"):
        _rejoin(tmp_path, "time_shift_days = 0\nvalue_noise = 0\nfeature_noise = 0\n")


def test_another_company_returning_under_a_new_contract_does_not_block_a_set_of_ours(
    tmp_path: Path,
) -> None:
    """v1: both companies' parts; the steel company withdraws (v2: ours alone); it comes back
    under a new contract (v3). Our rows of v3 are our rows of v1 and v2 under the same contract
    and keys, so they disclose nothing new; with the default limits (1 %) the build was refused
    as "N % of rows link to another published version (exact on process_start, process_end)",
    N being our share of the rows (v1 holds the steel company under its old contract). Here the
    spec even filters to our company (`_build` of test_linkage): the steel company's new
    contract alone makes our unchanged rows "linkable" (100 %)."""
    store = _lake(tmp_path / "lake")
    for i in range(12, 24):
        write_inspection(store, f"SN-{i:04d}", ["cnc-101"], T0 + timedelta(minutes=7 * i + 3))
    coils = [
        {
            "event_id": f"coil-{i}",
            "schema_version": 1,
            "tenant": STEEL,
            "plant": "duisburg",
            "line": "hsm-1",
            "machine": "f1",
            "event_time": T0 + timedelta(minutes=11 * i + 5),
            "sent_time": None,
            "date": (T0 + timedelta(minutes=11 * i + 5)).date(),
            "part_serial": f"C-{i:04d}",
            "lot": "coil-lot-1",
            "machines": ["f1"],
            "process_start": T0 + timedelta(minutes=11 * i),
            "process_end": T0 + timedelta(minutes=11 * i + 5),
            "result": "PASS",
            "defect_codes": [],
            "dimensions": [],
            "kafka_topic": f"maxlake.{STEEL}.inspection",
            "kafka_partition": 0,
            "kafka_offset": i,
            "ingested_at": T0,
        }
        for i in range(6)
    ]
    table = pa.Table.from_pylist(coils, schema=silver_schema("inspection"))
    store.append(silver_table("inspection"), table, partition_by=SILVER_PARTITIONS, txns={})

    def contract(cid: str, tenant: str) -> bytes:
        return (
            f'id = "{cid}"\ntenant = "{tenant}"\npurposes = ["study-a"]\n'
            '[share]\nkinds = ["telemetry", "inspection"]\n[deidentify]\nsuppress_rare = false\n'
        ).encode()

    sharing = Sharing(tmp_path, min_group_size=1)
    sharing.add(contract("nw-a", TENANT))
    sharing.add(contract("steel-a", STEEL))
    _build(store, sharing, "set-a", "parts", "study-a")
    sharing.store.revoke("steel-a", reason="leaves")
    _build(store, sharing, "set-a", "parts", "study-a")
    sharing.add(contract("steel-a-2", STEEL))

    _build(store, sharing, "set-a", "parts", "study-a")
