"""Secure by default, played as a rival participant reading a published set.

A contract that says nothing about de-identification must publish no raw plant, line, machine,
tenant, serial or lot name anywhere: not in a value, not in a Parquet min/max statistic, not in
the manifest a reader gets. Contract ids and revocation notes (they name companies) stay out of
every published manifest.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from lake.curation import curated_root, load, pull, revoke_contract, show
from lake.curation.published import REDACTED, REVOKED_NOTE, published_manifest
from lake.sharing import ContractError, parse_contract
from tests.unit.lake.curation.test_build_helpers import PUEBLA, STUTTGART, TENANT, seeded_lake
from tests.unit.lake.sharing.helpers import Sharing, build

RAW_IDS = [
    TENANT,
    *(p for p, _, _ in (STUTTGART, PUEBLA)),
    *(ln for _, ln, _ in (STUTTGART, PUEBLA)),
    *(m for _, _, ms in (STUTTGART, PUEBLA) for m in ms),
]
BARE = (
    b'id = "northwind-quality-team"\ntenant = "northwind-auto"\n'
    b'purposes = ["predictive-maintenance-*"]\n[share]\nkinds = ["telemetry", "inspection"]\n'
)


def _statistics(path: Path) -> list[str]:
    meta = pq.ParquetFile(path).metadata
    out: list[str] = []
    for g in range(meta.num_row_groups):
        for c in range(meta.num_columns):
            stats = meta.row_group(g).column(c).statistics
            if stats is not None and stats.has_min_max:
                out += [str(stats.min), str(stats.max)]
    return out


def test_a_contract_without_deidentify_publishes_no_raw_name(tmp_path: Path) -> None:
    store = seeded_lake(tmp_path / "lake")
    sharing = Sharing(tmp_path, min_group_size=1)
    sharing.add(BARE)

    manifest = build(store, sharing)

    assert manifest.rows == 5
    folder = Path(curated_root(store.root).root) / "spindle" / "v1"
    for path in folder.glob("*.parquet"):
        data, stats = path.read_bytes(), _statistics(path)
        for raw in RAW_IDS:
            assert raw.encode() not in data, raw
            assert not any(raw in s for s in stats), raw
    train = load("spindle", 1, "train", lake_root=store.root)
    assert "tenant" not in train.columns
    assert all(m.startswith("m_") for m in train.get_column("machine"))
    assert "tenant" not in manifest.key_columns


def test_an_identifier_is_clear_only_when_released_by_name(tmp_path: Path) -> None:
    store = seeded_lake(tmp_path / "lake")
    sharing = Sharing(tmp_path, min_group_size=1)
    sharing.add(BARE + b'[deidentify]\nrelease = ["machine", "tenant"]\n')

    build(store, sharing)

    train = load("spindle", 1, "train", lake_root=store.root)
    assert set(train.get_column("machine")) <= {m for _, _, ms in (STUTTGART, PUEBLA) for m in ms}
    assert set(train.get_column("tenant")) == {TENANT}
    assert "plant" not in train.columns
    assert "line" not in train.columns


def test_published_manifests_name_no_contract_and_no_revocation_reason(tmp_path: Path) -> None:
    store = seeded_lake(tmp_path / "lake")
    sharing = Sharing(tmp_path, min_group_size=1)
    sharing.add(BARE)
    first = build(store, sharing)
    other = build(store, sharing, name="other")

    pulled = pull("spindle", 1, "train", tmp_path / "out", lake_root=store.root)
    text = (pulled.parent / "spindle-v1.manifest.json").read_text()
    assert "northwind" not in text
    assert json.loads(text)["contracts"] == REDACTED, "one entry per company"
    assert published_manifest(other)["contracts"] == REDACTED
    assert first.contracts[0]["id"] == "northwind-quality-team"
    assert first.contracts[0]["ref"].startswith("c_"), "the operator's manifest keeps refs"

    revoke_contract(
        sharing.store, curated_root(store.root), "northwind-quality-team", reason="Northwind left"
    )

    shown = published_manifest(show("spindle", 1, lake_root=store.root))
    assert shown["status_reason"] == REVOKED_NOTE
    assert "northwind" not in json.dumps(shown).lower()


@pytest.mark.parametrize("column", ["tenant", "lot"])
def test_released_and_pseudonymised_at_once_is_refused(column: str, tmp_path: Path) -> None:
    text = BARE + f'[deidentify]\nrelease = ["{column}"]\npseudonymise = ["{column}"]\n'.encode()
    with pytest.raises(ContractError, match="deidentify"):
        parse_contract(text, source="c.toml")
