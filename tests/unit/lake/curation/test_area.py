"""The curated area on a local folder and on a real S3 server (moto on loopback): builds are
published with the manifest last, readers see only whole versions, and every catalog reader
works the same on both."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from lake import LakeLocation
from lake.curation import (
    CuratedArea,
    build_dataset,
    iter_batches,
    list_datasets,
    load,
    pull,
    revoke_contract,
    show,
    versions_under,
)
from maxlake.errors import TerminalError
from tests.unit.lake.curation.test_build_helpers import JOBS, registry, seeded_lake, spec
from tests.unit.lake.sharing.helpers import Sharing, contract_toml


@pytest.fixture(params=["local", "s3"])
def area(request: pytest.FixtureRequest, tmp_path: Path) -> CuratedArea:
    if request.param == "local":
        return CuratedArea(str(tmp_path / "curated"), cache_dir=tmp_path / "cache")
    s3_lake: LakeLocation = request.getfixturevalue("s3_lake")
    return CuratedArea(s3_lake.child("curated"), cache_dir=tmp_path / "cache")


def test_built_versions_are_read_back_by_every_reader(area: CuratedArea, tmp_path: Path) -> None:
    store = seeded_lake(tmp_path / "lake")
    first, second = (
        build_dataset(store, spec(), registry=registry(), jobs=JOBS, out_root=area)
        for _ in range(2)
    )
    assert (first.version, second.version) == (1, 2)
    assert first.content_hash == second.content_hash
    assert [(d.name, d.versions, d.latest) for d in list_datasets(area)] == [("spindle", (1, 2), 2)]
    assert show("spindle", 1, lake_root=area) == first
    train = load("spindle", 1, "train", lake_root=area)
    assert train.height == first.splits["train"].rows > 0
    assert_frame_equal(pl.concat(iter_batches("spindle", 2, "train", 1, lake_root=area)), train)
    pulled = pull("spindle", 2, "train", tmp_path / "out", lake_root=area)
    assert_frame_equal(pl.read_parquet(pulled), train)
    assert (tmp_path / "out" / "README.md").is_file()


def test_a_version_without_its_manifest_is_invisible_and_its_number_taken(
    area: CuratedArea, tmp_path: Path
) -> None:
    store = seeded_lake(tmp_path / "lake")
    build_dataset(store, spec(), registry=registry(), jobs=JOBS, out_root=area)
    crashed = area.reserve("spindle")
    (crashed.folder / "train.parquet").write_bytes(b"half a set")
    area.files.put_file("spindle/v2/train.parquet", crashed.folder / "train.parquet")
    assert area.versions("spindle") == [1]
    assert list_datasets(area)[0].versions == (1,)
    assert build_dataset(store, spec(), registry=registry(), jobs=JOBS, out_root=area).version == 3
    area.abandon(crashed)
    assert area.versions("spindle") == [1, 3]


def test_a_stored_split_that_changed_is_not_pulled(area: CuratedArea, tmp_path: Path) -> None:
    store = seeded_lake(tmp_path / "lake")
    build_dataset(store, spec(), registry=registry(), jobs=JOBS, out_root=area)
    area.files.write_bytes("spindle/v1/train.parquet", b"PAR1 altered PAR1")
    with pytest.raises(TerminalError, match="does not match the sha256 in its manifest"):
        pull("spindle", 1, "train", tmp_path / "out", lake_root=area)


def test_sets_under_contracts_are_revoked_and_compared_in_the_area(
    area: CuratedArea, tmp_path: Path
) -> None:
    store = seeded_lake(tmp_path / "lake")
    sharing = Sharing(tmp_path, min_group_size=1)
    linkable = "max_linkable_share = 1.0\n"

    def build() -> int:
        manifest = build_dataset(
            store, spec(), registry=registry(), jobs=JOBS, sharing=sharing.gate, out_root=area
        )
        assert manifest.sharing is not None
        return int(manifest.sharing["disclosure"]["compared_versions"])

    sharing.add(contract_toml("nw-a", extra_deid=linkable))
    assert build() == 0
    assert versions_under(area, "nw-a", 2) == []
    assert versions_under(area, "nw-a", None) == [("spindle@v1", "active")]
    assert show("spindle", 1, lake_root=area).status == "active", "a preview changes nothing"
    _, marked = revoke_contract(sharing.store, area, "nw-a", reason="NDA ended")
    assert marked == ["spindle@v1"]
    assert show("spindle", 1, lake_root=area).status == "revoked"
    assert versions_under(area, "nw-a", 1) == [("spindle@v1", "revoked")]
    with pytest.raises(TerminalError, match="revoked"):
        pull("spindle", 1, "train", tmp_path / "out", lake_root=area)
    sharing.add(contract_toml("nw-b", extra_deid=linkable))
    assert build() == 1, "v1's splits were read from the area for the disclosure report"
    assert [d.latest for d in list_datasets(area)] == [2]


def test_concurrent_builders_reserve_different_numbers(area: CuratedArea) -> None:
    with ThreadPoolExecutor(6) as pool:
        staged = list(pool.map(lambda _: area.reserve("spindle"), range(6)))
    assert sorted(s.version for s in staged) == [1, 2, 3, 4, 5, 6]
    assert len({s.folder for s in staged}) == 6
    for staging in staged:
        area.abandon(staging)
