"""The disclosure report's rows at risk, attacked: rows of a company whose contract changed
(another id, or a version with other de-identification options) must be measured whatever the
job put in their ``tenant`` column."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import polars as pl
import pytest

from lake.curation import JobInputs, JobOutput, build_dataset, load, parse_spec
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


def no_tenant(inputs: JobInputs) -> JobOutput:
    """``windows`` without the ``tenant`` column (machine pseudonyms still name the rows)."""
    out = windows(inputs)
    return JobOutput(
        splits={"train": out.splits["train"].drop("tenant")},
        features=out.features,
        label_columns=out.label_columns,
        key_columns=[c for c in out.key_columns if c != "tenant"],
    )


def anonymous(inputs: JobInputs) -> JobOutput:
    """``windows`` keyed by a site label of the job's own: ``tenant`` holds ``"site"`` and no
    plant, line or machine column is left, so no row names a company."""
    out = windows(inputs)
    train = (
        out.splits["train"]
        .with_columns(pl.lit("site").alias("tenant"))
        .drop("plant", "line", "machine")
        .with_row_index("row")
    )
    return JobOutput(
        splits={"train": train},
        features=out.features,
        label_columns=out.label_columns,
        key_columns=["tenant", "row", "window_start"],
    )


ATTACK_JOBS.update({"no_tenant": no_tenant, "anonymous": anonymous})


def test_a_job_without_a_tenant_column_is_traced_by_its_machine_pseudonyms(
    tmp_path: Path,
) -> None:
    """The issue-14 rejoin (default protection) with a job that has no ``tenant`` column: the
    rows are traced to their company by the machine pseudonyms the gate handed the job, so
    the rival's unchanged rows are not measured, and the set is published (the old code
    compared every row: 7 % linked exactly, refused at the default limit). The limit is
    raised, as in test_linkage's rejoin test, because the nearest-neighbour share of the
    fixtures' few-reading means depends on the random keys (SECURITY, the disclosure report)."""
    report = linkage_rejoin(tmp_path, "max_linkable_share = 1.0\n", "no_tenant", ATTACK_JOBS)
    assert report["compared_versions"] == 1
    assert report["exact_share"] == 0.0
    assert report["untraced_rows"] == 0
    measured, rows = int(str(report["rows_at_risk"])), int(str(report["rows"]))
    assert 0 < measured < rows, "only our rows are measured"


def test_rows_that_name_no_company_are_measured_and_the_refusal_says_why(
    tmp_path: Path,
) -> None:
    """A job whose rows name no company (no plant, line or machine, a label in ``tenant``):
    every row is measured, so the rival's unchanged rows link to themselves and the build is
    refused; the refusal says why and what to keep, instead of the protection remedy (which
    is on here)."""
    with pytest.raises(DisclosureRefused, match=r"row\(s\) name no single company") as refused:
        linkage_rejoin(tmp_path, "", "anonymous", ATTACK_JOBS)
    assert "keep one of those columns" in str(refused.value)
    assert "rows measured (of" in str(refused.value)


def _single(
    tmp_path: Path,
    job: str,
    deids: Mapping[str, str],
    tenants: Sequence[str] = (TENANT, RIVAL),
) -> pl.DataFrame:
    """``job``'s published train split over ``tenants`` (default: ours and the rival), each
    under the contract options in ``deids`` (tenant -> ``[deidentify]`` lines)."""
    store = _lake(tmp_path / "lake")
    _rival_telemetry(store)
    sharing = Sharing(tmp_path, min_group_size=1)
    for cid, tenant in (("nw-a", TENANT), ("rv-a", RIVAL)):
        sharing.add(_contract_of(cid, tenant, deids[tenant]))
    spec = parse_spec(
        {"name": "set", "purpose": "study-a", "job": job, "filters": {"tenants": list(tenants)}},
        jobs=ATTACK_JOBS,
    )
    manifest = build_dataset(
        store,
        spec,
        registry=_registry(tmp_path),
        jobs=ATTACK_JOBS,
        sharing=sharing.gate,
        allow_failed_quality=True,
    )
    return load("set", manifest.version, "train", lake_root=store.root)


EXACT = "time_shift_days = 0\nvalue_noise = 0\n"


def _exact_means(tmp_path: Path) -> set[float]:
    plain = _single(tmp_path, "windows", {TENANT: OFF, RIVAL: OFF})
    return set(plain.get_column("mean_value").to_list())


def test_rows_whose_tenant_value_maps_to_no_contract_get_feature_noise(tmp_path: Path) -> None:
    """A job that writes a site key into ``tenant`` (it still carries plant and machine):
    the old code added a contract's feature noise where ``tenant`` equalled its shown value,
    so these rows kept their exact means (31.0, 32.0, ...). Both contracts ask for 1 %."""
    exact = _exact_means(tmp_path / "a")
    site = _single(tmp_path / "b", "sites", {TENANT: EXACT, RIVAL: EXACT})
    kept = exact & set(site.get_column("mean_value").to_list())
    assert not kept, f"{len(kept)} mean(s) published exact: no feature noise"


def test_rows_that_name_no_company_get_the_strictest_contracts_feature_noise(
    tmp_path: Path,
) -> None:
    """Our contract asks for no feature noise, the rival's for 5 %. Rows that name no
    company could be the rival's, so every one gets 5 % (the old code left them exact)."""
    exact = _exact_means(tmp_path / "a")
    strict = EXACT + "feature_noise = 0.05\n"
    rows = _single(tmp_path / "b", "anonymous", {TENANT: OFF, RIVAL: strict})
    published = rows.get_column("mean_value").to_list()
    assert len(published) > 10
    assert not exact & set(published), "untraceable rows were published without feature noise"


def mislabelled(inputs: JobInputs) -> JobOutput:
    """``windows`` whose ``tenant`` column holds, on every row, the value of the company with
    the most rows (ours), as a job that filled it from one row would; ``machine`` still names
    each row's real company."""
    out = windows(inputs)
    train = out.splits["train"]
    train = train.with_columns(pl.lit(train.get_column("tenant").mode()[0]).alias("tenant"))
    return JobOutput(
        splits={"train": train},
        features=out.features,
        label_columns=out.label_columns,
        key_columns=out.key_columns,
    )


ATTACK_JOBS["mislabelled"] = mislabelled


def test_rows_whose_columns_name_two_companies_get_the_strictest_noise(tmp_path: Path) -> None:
    """``tenant`` names our company (no feature noise) on every row, ``machine`` the rival's
    (5 %) on the rival's rows: those rows cannot be attributed with certainty, so they get
    the strictest noise. The old code believed ``tenant`` and published the rival's means
    exact."""
    exact = _exact_means(tmp_path / "a")
    ours = _single(tmp_path / "b", "windows", {TENANT: OFF, RIVAL: OFF}, [TENANT])
    theirs = exact - set(ours.get_column("mean_value").to_list())
    assert theirs, "the rival has rows of its own"
    strict = EXACT + "feature_noise = 0.05\n"
    rows = _single(tmp_path / "c", "mislabelled", {TENANT: OFF, RIVAL: strict})
    published = set(rows.get_column("mean_value").to_list())
    assert not theirs & published, "the rival's means were published without its noise"


@pytest.mark.parametrize("job", ["windows", "no_tenant", "sites"])
def test_a_contracts_min_group_size_holds_whatever_columns_trace_the_rows(
    tmp_path: Path, job: str
) -> None:
    """Our contract asks that every machine type hide among 2 companies; the set holds ours
    alone. The group count traced rows by the longest prefix of tenant, plant, line and
    machine, so a job without ``tenant`` (or with a site key in it) gave no count and the
    set was published with every type naming one company."""
    deid = {TENANT: "min_group_size = 2\n", RIVAL: ""}
    with pytest.raises(DisclosureRefused, match="hides among 1 company"):
        _single(tmp_path, job, deid, [TENANT])
