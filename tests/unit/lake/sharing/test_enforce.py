"""Builds under sharing contracts on a real lake: who gets in, in which form, and revocation."""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path

import polars as pl
import pytest

from lake.curation import build_dataset, curated_root, load, pull, revoke_contract
from lake.curation.sources import source_frame as _source
from lake.sharing import ContractConflict, IdentifierLeak, SharingGate
from lake.sharing.enforce import SharedInputs
from maxlake.errors import TerminalError
from schemas import EventKind
from tests.unit.lake.curation.test_build_helpers import (
    JOBS,
    PUEBLA,
    STUTTGART,
    TENANT,
    registry,
    seeded_lake,
    spec,
    write_inspection,
)
from tests.unit.lake.curation.test_build_helpers import T0 as LAKE_T0
from tests.unit.lake.sharing.helpers import Sharing, build, contract_toml

RAW_IDS = [
    TENANT,
    *(p for p, _, _ in (STUTTGART, PUEBLA)),
    *(ln for _, ln, _ in (STUTTGART, PUEBLA)),
    *(m for _, _, ms in (STUTTGART, PUEBLA) for m in ms),
]


def _split_bytes(folder: Path) -> bytes:
    """Every split file's bytes plus its rows as an uncompressed Arrow IPC stream."""
    out = b""
    for path in sorted(folder.glob("*.parquet")):
        out += path.read_bytes()
        sink = io.BytesIO()
        pl.read_parquet(path).write_ipc_stream(sink, compression="uncompressed")
        out += sink.getvalue()
    return out


def test_a_tenant_without_a_contract_contributes_no_rows(tmp_path: Path) -> None:
    store = seeded_lake(tmp_path / "lake")
    manifest = build(store, Sharing(tmp_path))

    assert manifest.rows == 0
    assert manifest.contracts == []
    assert manifest.sharing is not None
    assert manifest.sharing["excluded_tenants"] >= 1
    assert manifest.enforced


def test_a_pseudonymising_contract_leaves_no_raw_identifier_in_the_files(tmp_path: Path) -> None:
    store = seeded_lake(tmp_path / "lake")
    sharing = Sharing(tmp_path, min_group_size=1)
    sharing.add(contract_toml())

    manifest = build(store, sharing)

    assert manifest.rows == 5
    assert manifest.contracts[0]["id"] == "nw-pm"
    assert manifest.contracts[0]["version"] == 1
    folder = Path(curated_root(store.root).root) / "spindle" / "v1"
    data = _split_bytes(folder)
    for raw in RAW_IDS:
        assert raw.encode() not in data, raw
    train = load("spindle", 1, "train", lake_root=store.root)
    assert all(m.startswith("m_") for m in train.get_column("machine"))
    assert "tenant" not in train.columns


def test_pseudonyms_are_stable_within_a_contract_and_differ_across_contracts(
    tmp_path: Path,
) -> None:
    store = seeded_lake(tmp_path / "lake")
    sharing = Sharing(tmp_path, min_group_size=1)
    lenient = "max_linkable_share = 1.0\n"
    sharing.add(
        contract_toml("nw-pm", purposes='["predictive-maintenance-research"]', extra_deid=lenient)
    )
    sharing.add(contract_toml("nw-other", purposes='["other-study"]', extra_deid=lenient))

    first = build(store, sharing)
    again = build(store, sharing)
    other = build_dataset(
        store,
        spec("other", purpose="other-study"),
        registry=registry(),
        jobs=JOBS,
        sharing=sharing.gate,
    )

    assert first.content_hash == again.content_hash
    machines_a = load("spindle", 1, "train", lake_root=store.root).get_column("machine")
    machines_b = load("other", 1, "train", lake_root=store.root).get_column("machine")
    assert machines_a.len() == machines_b.len() > 0
    assert not set(machines_a) & set(machines_b)
    assert other.contracts[0]["id"] == "nw-other"


def test_contract_filters_tags_and_time_before_the_job(tmp_path: Path) -> None:
    store = seeded_lake(tmp_path / "lake")
    sharing = Sharing(tmp_path, min_group_size=1)
    sharing.add(contract_toml(extra_share='confidential_tags = ["spindle_temp"]\n'))
    assert build(store, sharing).rows == 0

    sharing.add(contract_toml(extra_share=f'start = "{LAKE_T0.isoformat()}"\n'))
    assert build(store, sharing).rows == 5
    end = "2026-01-05T06:00:00+00:00"
    sharing.add(contract_toml(extra_share=f'end = "{end}"\n'))
    manifest = build(store, sharing)
    assert manifest.contracts[0]["version"] == 3
    assert manifest.sources["telemetry"].rows == 5


def test_rare_machine_types_are_suppressed_below_the_group_size(tmp_path: Path) -> None:
    store = seeded_lake(tmp_path / "lake")
    sharing = Sharing(tmp_path, min_group_size=2)
    sharing.add(contract_toml(suppress_rare=True))

    manifest = build(store, sharing)

    assert manifest.rows == 0
    assert manifest.sharing is not None
    assert manifest.sharing["suppressed_machine_types"] == 1


def test_a_contract_without_suppression_keeps_rare_types_and_reports_none(tmp_path: Path) -> None:
    store = seeded_lake(tmp_path / "lake")
    sharing = Sharing(tmp_path, min_group_size=2)
    sharing.add(contract_toml(suppress_rare=False))

    manifest = build(store, sharing)

    assert manifest.rows > 0
    assert manifest.sharing is not None
    assert manifest.sharing["suppressed_machine_types"] == 0


def test_inspections_lose_serials_lots_and_machine_names(tmp_path: Path) -> None:
    store = seeded_lake(tmp_path / "lake")
    write_inspection(store, "SN-4711", ["cnc-101", "cnc-102"], LAKE_T0)
    sharing = Sharing(tmp_path, min_group_size=1)
    sharing.add(contract_toml())
    gate = sharing.gate

    machines = pl.from_arrow(registry().machines())
    assert isinstance(machines, pl.DataFrame)
    version = store.version("silver/inspection")
    frame = _source(store, EventKind.INSPECTION, version, spec().filters, machines)
    tags = pl.from_arrow(registry().tag_ranges())
    assert isinstance(tags, pl.DataFrame)
    shared = gate.apply("predictive-maintenance-research", {"inspection": frame}, machines, tags)
    row = shared.frames["inspection"].collect().row(0, named=True)

    assert row["part_serial"].startswith("s_")
    assert row["lot"].startswith("lot_")
    assert all(m.startswith("m_") for m in row["machines"])
    assert row["kafka_topic"] is None
    assert set(row["machines"]) <= set(shared.machines.get_column("machine"))
    leaky = {"train": pl.DataFrame({"serial": ["SN-4711"]})}
    with pytest.raises(IdentifierLeak):
        gate.check_output("x", leaky, {}, shared)


def test_two_contracts_in_force_for_one_purpose_stop_the_build(tmp_path: Path) -> None:
    store = seeded_lake(tmp_path / "lake")
    sharing = Sharing(tmp_path)
    sharing.add(contract_toml("nw-a"))
    sharing.add(contract_toml("nw-b"))
    with pytest.raises(ContractConflict):
        build(store, sharing)


def test_revoking_excludes_the_tenant_and_revokes_earlier_versions(tmp_path: Path) -> None:
    store = seeded_lake(tmp_path / "lake")
    sharing = Sharing(tmp_path, min_group_size=1)
    sharing.add(contract_toml())
    assert build(store, sharing).rows == 5

    _, marked = revoke_contract(
        sharing.store, curated_root(store.root), "nw-pm", reason="NDA ended"
    )

    assert marked == ["spindle@v1"]
    with pytest.raises(TerminalError, match="revoked"):
        pull("spindle", 1, "train", tmp_path / "out", lake_root=store.root)
    assert build(store, sharing).rows == 0


class _RareOnce(SharingGate):
    """Finds a machine type too rare in the job's output once, as a second pass does."""

    passes = 0

    def rare_in_output(
        self, shared: SharedInputs, splits: Mapping[str, pl.DataFrame]
    ) -> frozenset[str]:
        self.passes += 1
        return frozenset({"no-such-type"}) if self.passes == 1 else frozenset()


def test_a_second_pass_for_rare_types_reports_the_sharing_stage_once(tmp_path: Path) -> None:
    store = seeded_lake(tmp_path / "lake")
    sharing = Sharing(tmp_path)
    sharing.add(contract_toml(suppress_rare=True))
    stages: list[tuple[str, dict[str, int]]] = []

    build_dataset(
        store,
        spec(),
        registry=registry(),
        jobs=JOBS,
        sharing=_RareOnce(sharing.store, sharing.keys, min_group_size=1),
        allow_failed_quality=True,
        progress=lambda stage, counts: stages.append((stage, dict(counts))),
    )

    names = [stage for stage, _ in stages]
    assert names.count("sharing") == 1, names
    assert names.index("sharing") < names.index("read") < names.index("rare") < names.index("job")
    assert dict(stages)["rare"] == {"suppressed_machine_types": 0, "job_runs": 2}
