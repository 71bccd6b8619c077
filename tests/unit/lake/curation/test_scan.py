"""``datasets scan``: a published version re-checked for the raw identifiers its contracts hide,
in everything a reader receives (split values and statistics, published manifest, data card,
side files)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from lake.curation import CuratedArea, build_dataset
from lake.curation.scan import scan_version
from lake.sharing import IdentifierLeak, SharedInputs
from lake.sharing.leaks import leaked_values
from maxlake.errors import TerminalError
from tests.unit.lake.curation.test_build_helpers import JOBS, registry, seeded_lake, spec
from tests.unit.lake.sharing.helpers import Sharing, contract_toml


def _scan(
    tmp_path: Path, description: str = "spindle temperature means"
) -> tuple[list[tuple[str, str, int]], list[str]]:
    store = seeded_lake(tmp_path / "lake")
    sharing = Sharing(tmp_path, min_group_size=1)
    sharing.add(contract_toml("nw-a"))
    area = CuratedArea(str(tmp_path / "curated"), cache_dir=tmp_path / "cache")
    manifest = build_dataset(
        store,
        spec(description=description),
        registry=registry(),
        jobs=JOBS,
        sharing=sharing.gate,
        out_root=area,
    )
    machines = pl.from_arrow(registry().machines())
    assert isinstance(machines, pl.DataFrame)
    report = scan_version(area, manifest, contracts=sharing.store, store=store, machines=machines)
    assert report.identifiers > 4
    assert "README.md" in report.scanned
    return report.hits, report.values


def test_a_set_built_under_contracts_scans_clean(tmp_path: Path) -> None:
    hits, values = _scan(tmp_path)
    assert (hits, values) == ([], [])


def test_a_raw_machine_id_in_the_spec_description_stops_the_build(tmp_path: Path) -> None:
    with pytest.raises(IdentifierLeak, match=r"file 'manifest.json' holds 1 .*description"):
        _scan(tmp_path, description="spindle means of cnc-101 only")
    assert list((tmp_path / "curated").rglob("manifest.json")) == [], "nothing published"


def test_a_version_published_before_that_check_is_found_by_the_scan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(SharedInputs, "check_prose", lambda *_, **__: None)
    hits, values = _scan(tmp_path, description="spindle means of cnc-101 only")
    assert {file for file, _, _ in hits} == {"spindle-v1.manifest.json", "README.md"}
    assert values == ["cnc-101"]


def test_a_version_built_without_contracts_has_nothing_to_be_checked_against(
    tmp_path: Path,
) -> None:
    store = seeded_lake(tmp_path / "lake")
    area = CuratedArea(str(tmp_path / "curated"), cache_dir=tmp_path / "cache")
    manifest = build_dataset(store, spec(), registry=registry(), jobs=JOBS, out_root=area)
    sharing = Sharing(tmp_path)
    with pytest.raises(TerminalError, match="without sharing contracts"):
        scan_version(area, manifest, contracts=sharing.store, store=store, machines=pl.DataFrame())


def test_a_hex_machine_id_inside_a_hash_is_not_a_leak_but_beside_one_it_is() -> None:
    digest = b'"sha256": "01f6808d0ad40f4eff102c42496b0082cce39d4436fb1cdca7893a60f42918fe"'
    assert leaked_values(digest, ["f2", "f4", "cnc-101"]) == []
    assert leaked_values(digest + b' "machine": "f2"', ["f2", "f4"]) == ["f2"]
    assert leaked_values(b"block-l1-11-00000001", ["block-l1"]) == ["block-l1"]
