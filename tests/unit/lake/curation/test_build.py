"""The build runner on a real Delta lake under tmp_path: pinning, filters, publishing."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from lake import DeltaStore, silver_table
from lake.curation import (
    JobInputs,
    JobOutput,
    Manifest,
    QualityCheckFailed,
    SpecError,
    build_dataset,
    curated_root,
    load_spec,
    parse_spec,
    spec_hash,
)
from lake.curation.jobs import JobParamError
from lake.delta import VersionUnavailable
from tests.unit.lake.curation.test_build_helpers import (
    JOBS,
    T0,
    TENANT,
    readings,
    registry,
    seeded_lake,
    spec,
    tag_means,
    write_inspection,
    write_telemetry,
)
from tests.unit.lake.sharing.helpers import Sharing


def _build(store: DeltaStore, **kwargs: object) -> Manifest:
    the_spec = kwargs.pop("the_spec", None) or spec()
    return build_dataset(store, the_spec, registry=registry(), jobs=JOBS, **kwargs)  # type: ignore[arg-type]


def test_build_publishes_version_one_with_a_full_manifest(tmp_path: Path) -> None:
    store = seeded_lake(tmp_path)
    stages: list[tuple[str, dict[str, int]]] = []

    def progress(stage: str, counts: Mapping[str, int]) -> None:
        stages.append((stage, dict(counts)))

    manifest = _build(store, progress=progress)

    folder = Path(curated_root(tmp_path).root) / "spindle" / "v1"
    assert manifest.version == 1
    assert manifest.status == "active"
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "manifest.json",
        "seen.json",
        "test.parquet",
        "train.parquet",
    ]
    assert Manifest.read(folder) == manifest
    assert manifest.sources["telemetry"].version == 1
    assert not manifest.sources["telemetry"].pinned
    assert manifest.sources["telemetry"].rows == 40
    assert manifest.sources["inspection"].version is None
    assert manifest.splits["train"].rows == 4
    assert manifest.splits["test"].rows == 1
    assert manifest.splits["test"].labels["hot"] == {"counts": {"0": 1}, "nulls": 0}
    assert manifest.features[0] == {
        "name": "mean_value",
        "unit": "degC",
        "description": "mean reading",
    }
    assert manifest.spec_hash == spec_hash(spec())
    assert manifest.spec["job"] == "tag_means"
    assert manifest.quality["success"] is True
    assert {r["name"] for r in manifest.quality["results"]} >= {
        "rows",
        "key_not_null:machine",
        "key_unique:tenant,plant,line,machine,tag",
        "label_not_null:hot",
        "feature_not_all_null:mean_value",
    }
    assert [s for s, _ in stages] == ["pin", "read", "job", "write", "quality", "published"]
    assert stages[0][1] == {"telemetry": 1, "machine_event": -1, "inspection": -1}
    assert stages[1][1]["telemetry"] == 40
    train = pl.read_parquet(folder / "train.parquet")
    assert train.get_column("readings").to_list() == [8, 8, 8, 8]


def test_same_spec_same_versions_same_hash_and_never_overwrites(tmp_path: Path) -> None:
    store = seeded_lake(tmp_path)
    first = _build(store)
    v1_bytes = (Path(curated_root(tmp_path).root) / "spindle" / "v1" / "manifest.json").read_bytes()

    second = _build(store)

    assert second.version == 2
    assert second.content_hash == first.content_hash
    assert second.splits["train"].sha256 == first.splits["train"].sha256
    assert (
        Path(curated_root(tmp_path).root) / "spindle" / "v1" / "manifest.json"
    ).read_bytes() == v1_bytes
    assert not list((Path(curated_root(tmp_path).root) / "spindle").glob(".building-*"))


def test_pinned_versions_reproduce_after_new_data_and_latest_differs(tmp_path: Path) -> None:
    store = seeded_lake(tmp_path)
    first = _build(store)
    write_telemetry(store, readings(2, value=80.0), first_offset=2000)

    rebuilt = _build(store, the_spec=spec().pinned(first.source_versions))
    latest = _build(store)

    assert rebuilt.content_hash == first.content_hash
    assert rebuilt.sources["telemetry"].version == 1
    assert rebuilt.sources["telemetry"].pinned
    assert latest.sources["telemetry"].version == 2
    assert latest.content_hash != first.content_hash
    assert [first.version, rebuilt.version, latest.version] == [1, 2, 3]


def test_time_plant_and_machine_type_filters(tmp_path: Path) -> None:
    store = seeded_lake(tmp_path)
    day_one = {"start": "2026-01-06T00:00:00Z", "end": (T0 + timedelta(days=2)).isoformat()}
    only_day_one = _build(
        store, the_spec=spec(filters={"tenants": [TENANT], "plants": ["puebla"], **day_one})
    )
    assert only_day_one.sources["telemetry"].rows == 8
    assert only_day_one.rows == 2

    with pytest.raises(
        QualityCheckFailed,
        match=r"\(rows\).*filters tenants, machine_types left source rows telemetry=0.*widen",
    ):
        _build(
            store,
            the_spec=spec(
                name="ovens", filters={"tenants": [TENANT], "machine_types": ["reflow_oven"]}
            ),
        )
    assert not (Path(curated_root(tmp_path).root) / "ovens").exists() or not any(
        (Path(curated_root(tmp_path).root) / "ovens").iterdir()
    )


def test_inspections_follow_the_machines_that_made_the_part(tmp_path: Path) -> None:
    store = seeded_lake(tmp_path)
    write_inspection(store, "part-1", ["cnc-101", "cnc-102"], T0 + timedelta(hours=1))
    mills = _build(store, the_spec=spec(filters={"machine_types": ["cnc_mill"]}))
    ovens = _build(
        store,
        the_spec=spec(name="ovens", filters={"machine_types": ["reflow_oven"]}),
        allow_failed_quality=True,
    )

    def seen(m: Manifest) -> list[str]:
        path = Path(curated_root(tmp_path).root) / m.name / f"v{m.version}" / "seen.json"
        return list(json.loads(path.read_bytes()))

    assert seen(mills) == ["part-1"]
    assert mills.sources["inspection"].version == 0
    assert seen(ovens) == []
    assert ovens.quality["success"] is False
    assert ovens.rows == 0


def test_build_rejects_unknown_job_tenant_plant_and_machine_type(tmp_path: Path) -> None:
    store = seeded_lake(tmp_path)
    bad_job = spec().__class__(name="x", purpose="p", job="nope")
    with pytest.raises(SpecError, match=r"unknown job 'nope' \(valid: tag_means, or a"):
        _build(store, the_spec=bad_job)
    with pytest.raises(SpecError, match=r"unknown tenant 'acme'.*northwind-auto"):
        _build(store, the_spec=spec(filters={"tenants": ["acme"]}))
    with pytest.raises(SpecError, match=r"filters.plants: unknown plant 'x'.*puebla, stuttgart"):
        _build(store, the_spec=spec(filters={"tenants": [TENANT], "plants": ["x"]}))
    with pytest.raises(SpecError, match=r"unknown machine type 'lathe'.*cnc_mill"):
        _build(store, the_spec=spec(filters={"machine_types": ["lathe"]}))


def test_unreadable_pinned_versions_fail_clearly(tmp_path: Path) -> None:
    store = seeded_lake(tmp_path)
    with pytest.raises(VersionUnavailable, match=r"version 7: versions are 0\.\.1"):
        _build(store, the_spec=spec(sources={"telemetry": 7}))
    table_dir = tmp_path / silver_table("telemetry")
    first_files = sorted(table_dir.rglob("*.parquet"), key=lambda p: p.stat().st_mtime)[:1]
    first_files[0].unlink()
    with pytest.raises(VersionUnavailable, match="gone"):
        _build(store, the_spec=spec(sources={"telemetry": 0}))


def test_a_version_number_is_never_reused_after_a_crashed_build(tmp_path: Path) -> None:
    store = seeded_lake(tmp_path)
    (Path(curated_root(tmp_path).root) / "spindle" / ".building-v1").mkdir(parents=True)
    assert _build(store).version == 2


def test_a_job_parameter_typo_fails_before_any_data_is_read(tmp_path: Path) -> None:
    store = seeded_lake(tmp_path)
    for data_file in (tmp_path / "silver" / "telemetry").rglob("*.parquet"):
        data_file.unlink()
    typo = parse_spec(
        {
            "name": "pm",
            "purpose": "predictive-maintenance-research",
            "job": {"name": "predictive_maintenance", "windw": "1h"},
        }
    )
    with pytest.raises(JobParamError, match="parameter 'windw' is not a parameter of this job"):
        build_dataset(store, typo, registry=registry())


def test_the_part_quality_reference_spec_publishes_with_null_defect_codes(tmp_path: Path) -> None:
    store = seeded_lake(tmp_path)
    for i, (result, defects) in enumerate(
        [("PASS", []), ("FAIL", ["BURR"]), ("PASS", []), ("REWORK", ["CHATTER-MARK"])] * 2
    ):
        when = T0 + timedelta(hours=3 * i, minutes=3)
        write_inspection(
            store, f"part-{i}", ["cnc-101"], when, result=result, defects=defects, lot=f"lot-{i}"
        )
    reference = Path(__file__).parents[4] / "lake/curation/specs/part_quality.toml"
    manifest = build_dataset(store, load_spec(reference), registry=registry())

    assert manifest.quality_passed, manifest.quality["failed"]
    assert "label_not_null:defect_code" not in {r["name"] for r in manifest.quality["results"]}
    assert {c["column"]: c["nullable"] for c in manifest.label_contracts} == {
        "result": False,
        "defect_code": True,
    }
    nulls = sum(s.labels["defect_code"]["nulls"] for s in manifest.splits.values())
    assert nulls == 4


def test_an_empty_set_says_no_contract_covers_its_purpose(tmp_path: Path) -> None:
    store = seeded_lake(tmp_path)
    with pytest.raises(
        QualityCheckFailed,
        match=r"no tenant has a sharing contract for purpose 'predictive-maintenance-research'",
    ) as info:
        _build(store, sharing=Sharing(tmp_path / "sharing").gate)
    assert "maxlake contracts add" in str(info.value)


def test_an_empty_split_the_spec_gives_no_share_is_not_published(tmp_path: Path) -> None:
    def with_unasked_validation(inputs: JobInputs) -> JobOutput:
        out = tag_means(inputs)
        empty = out.splits["train"].clear()
        splits = {**out.splits, "validation": empty, "score": empty}
        return dataclasses.replace(out, splits=splits, required_splits=("train", "test"))

    store = seeded_lake(tmp_path)
    manifest = build_dataset(
        store, spec(), registry=registry(), jobs={"tag_means": with_unasked_validation}
    )

    assert sorted(manifest.splits) == ["score", "test", "train"]
    folder = Path(curated_root(tmp_path).root) / "spindle" / "v1"
    assert not (folder / "validation.parquet").exists()
    assert "validation" not in (folder / "README.md").read_text()
