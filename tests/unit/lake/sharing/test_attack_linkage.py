"""The disclosure report's rows at risk, attacked: rows of a company whose contract changed
(another id, or a version with other de-identification options) must be measured whatever the
job put in their ``tenant`` column."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from lake.curation import JobInputs, JobOutput, build_dataset, parse_spec
from lake.sharing import DisclosureRefused
from tests.unit.lake.curation.test_build_helpers import TENANT
from tests.unit.lake.sharing.helpers import Sharing
from tests.unit.lake.sharing.test_attacks import RIVAL, _registry, _rival_telemetry
from tests.unit.lake.sharing.test_linkage import JOBS, _contract_of, _lake, windows
from tests.unit.lake.sharing.test_linkage import _rejoin as linkage_rejoin

OFF = "time_shift_days = 0\nvalue_noise = 0\nfeature_noise = 0\n"


def sites(inputs: JobInputs) -> JobOutput:
    """``windows`` with ``tenant`` holding a site key (tenant pseudonym / plant pseudonym), as
    a job naming a site in one column would: the value maps to no contract's tenant."""
    out = windows(inputs)
    train = out.splits["train"].with_columns(
        pl.concat_str([pl.col("tenant"), pl.col("plant")], separator="/").alias("tenant")
    )
    return JobOutput(
        splits={"train": train},
        features=out.features,
        label_columns=out.label_columns,
        key_columns=out.key_columns,
    )


ATTACK_JOBS = {**JOBS, "sites": sites}


def _rejoin(tmp_path: Path, job: str) -> None:
    """v1 of two companies, unprotected; ours leaves and rejoins under a new contract; v2."""
    linkage_rejoin(tmp_path, OFF, job, ATTACK_JOBS)


def test_rejoin_without_protection_is_refused_with_the_plain_job(tmp_path: Path) -> None:
    with pytest.raises(DisclosureRefused, match="link to another published version"):
        _rejoin(tmp_path, "windows")


def test_rows_whose_tenant_value_maps_to_no_contract_are_still_measured(tmp_path: Path) -> None:
    """Same rows, same values, same link: only the tenant column's text differs (a site key
    that maps to no contract's company). Such rows are measured, so the link is seen."""
    with pytest.raises(DisclosureRefused, match="link to another published version"):
        _rejoin(tmp_path, "sites")


def test_a_new_version_of_our_contract_releasing_ids_is_measured_when_another_changed(
    tmp_path: Path,
) -> None:
    """v1: our parts under nw-a v1 (serials and machines pseudonymised, default time shift),
    the rival under rv-a. Then nw-a v2 releases part_serial and machine in clear (same id:
    same keyed time shift, so the same process times) and the rival moves to rv-b. v2's parts
    would join v1's on (process_start, process_end) and name every v1 serial pseudonym: our
    rows are at risk because our contract's de-identification changed, and the build refuses."""
    store = _lake(tmp_path / "lake")
    _rival_telemetry(store)
    sharing = Sharing(tmp_path, min_group_size=1)
    sharing.add(_contract_of("nw-a", TENANT))
    sharing.add(_contract_of("rv-a", RIVAL))
    spec = parse_spec(
        {
            "name": "set",
            "purpose": "study-a",
            "job": "parts",
            "filters": {"tenants": [TENANT, RIVAL]},
        },
        jobs=ATTACK_JOBS,
    )
    registry = _registry(tmp_path)
    kwargs = {"registry": registry, "jobs": ATTACK_JOBS, "allow_failed_quality": True}
    build_dataset(store, spec, sharing=sharing.gate, **kwargs)  # type: ignore[arg-type]
    sharing.add(_contract_of("nw-a", TENANT, 'release = ["machine", "part_serial"]\n'))
    sharing.store.revoke("rv-a", reason="moves")
    sharing.add(_contract_of("rv-b", RIVAL))
    with pytest.raises(DisclosureRefused, match="link to another published version"):
        build_dataset(store, spec, sharing=sharing.gate, **kwargs)  # type: ignore[arg-type]
