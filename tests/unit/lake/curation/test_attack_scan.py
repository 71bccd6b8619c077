"""The gate's identifier checks of the published manifest and the data card, attacked: ids in
another letter case or made of hex digits are found; figures and words that merely contain a
short id are not."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from lake.curation import (
    CuratedArea,
    Manifest,
    build_dataset,
    parse_spec,
)
from lake.sharing import IdentifierLeak
from lake.sharing.leaks import leaked_values, text_mentions
from tests.unit.lake.curation.test_build_helpers import (
    JOB_NAME,
    JOBS,
    T0,
    TENANT,
    registry,
    seeded_lake,
    tag_means,
    write_inspection,
)
from tests.unit.lake.sharing.helpers import Sharing, contract_toml


def _build(
    tmp_path: Path,
    *,
    description: str = "spindle temperature means",
    job: object = tag_means,
    serial: str = "SN-0001",
    lot: str = "lot-1",
) -> Manifest:
    store = seeded_lake(tmp_path / "lake")
    write_inspection(store, serial, ["cnc-101"], T0 + timedelta(minutes=3), lot=lot)
    sharing = Sharing(tmp_path, min_group_size=1)
    sharing.add(contract_toml("nw-a"))
    jobs = {**JOBS, JOB_NAME: job}
    spec = parse_spec(
        {
            "name": "spindle",
            "description": description,
            "purpose": "predictive-maintenance-research",
            "job": JOB_NAME,
            "filters": {"tenants": [TENANT]},
        },
        jobs=jobs,
    )
    area = CuratedArea(str(tmp_path / "curated"), cache_dir=tmp_path / "cache")
    return build_dataset(
        store,
        spec,
        registry=registry(),
        jobs=jobs,  # type: ignore[arg-type]
        sharing=sharing.gate,
        out_root=area,
    )


@pytest.mark.parametrize(
    "description",
    ["spindle means of CNC-101 only", "spindle means of the Stuttgart plant", "BLOCK-L1 spindles"],
)
def test_an_identifier_in_another_case_in_the_description_stops_the_build(
    tmp_path: Path, description: str
) -> None:
    """[defect] The byte scan is case-sensitive; ids are case-sensitive ASCII
    (``ID_PATTERN`` allows both cases) but a reader is not: ``CNC-101`` names cnc-101."""
    with pytest.raises(IdentifierLeak):
        _build(tmp_path, description=description)


def test_a_hex_part_serial_of_16_digits_in_the_description_stops_the_build(
    tmp_path: Path,
) -> None:
    """[defect] An id made of 16 or more hex digits is itself a 'run of 16 hex digits', so
    ``leaked_values`` never counts it anywhere in bytes (manifest, card, side files,
    statistics): serials such as EPC/RFID or UUID-without-dashes are never found
    (``leaked_values(b"scrapped part 5e1f0a9b3c7d2e48", ["5e1f0a9b3c7d2e48"]) == []``)."""
    serial = "5e1f0a9b3c7d2e48"
    with pytest.raises(IdentifierLeak):
        _build(tmp_path, serial=serial, description=f"without the scrapped part {serial}")


def test_a_short_id_inside_a_word_or_a_figure_is_not_named() -> None:
    assert text_mentions(b'"description": "labels chosen for f1-score"', ["f1"]) == []
    assert text_mentions(b'"build_seconds": 12.3, "created_at": "2026-12-01"', ["12", "01"]) == []
    assert text_mentions(b"stands F1 and (f2).", ["f1", "f2"]) == ["f1", "f2"]


def test_the_scan_names_a_16_digit_hex_serial_but_not_a_short_id_inside_a_hash() -> None:
    assert leaked_values(b"scrapped part 5e1f0a9b3c7d2e48", ["5e1f0a9b3c7d2e48"]) == [
        "5e1f0a9b3c7d2e48"
    ]
    assert leaked_values(b'"sha256": "01f6808d0ad40f4eff102c42496b0082"', ["f2", "f4"]) == []
