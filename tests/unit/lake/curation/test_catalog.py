"""The catalog over published versions: list, show, pull, load, iter_batches, the CLI, and
the refusal of malformed or unknown names, versions and splits."""

from __future__ import annotations

import json
import os
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pytest
from polars.testing import assert_frame_equal

from lake import DeltaStore
from lake.access import AuditLog
from lake.curation import (
    DatasetNotFound,
    FailedQualityRefused,
    InvalidDatasetRef,
    VersionRevoked,
    build_dataset,
    curated_root,
    iter_batches,
    list_datasets,
    load,
    parse_ref,
    pull,
    show,
)
from lake.registry_store import RegistryStore
from maxlake.cli import main
from maxlake.errors import TerminalError
from tests.unit.lake.curation.test_build_helpers import (
    JOBS,
    T0,
    readings,
    registry,
    seeded_lake,
    spec,
    write_down_event,
)
from tests.unit.lake.curation.test_build_helpers import write_telemetry as append_telemetry


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lake with ``spindle`` v1 and v2 (v2 has a third day of data) and ``other`` v1."""
    root = tmp_path_factory.mktemp("lake")
    store = seeded_lake(root)
    for the_spec in (spec(), spec(name="other")):
        build_dataset(store, the_spec, registry=registry(), jobs=JOBS)
    append_telemetry(store, readings(2), first_offset=2000)
    build_dataset(store, spec(), registry=registry(), jobs=JOBS)
    return root


@pytest.fixture
def lake(built: Path, tmp_path: Path) -> Path:
    """A private copy of :func:`built` (tests may alter it)."""
    return Path(shutil.copytree(built, tmp_path / "lake"))


def test_list_and_show(lake: Path) -> None:
    listed = list_datasets(lake)
    assert [(d.name, d.versions, d.latest) for d in listed] == [
        ("other", (1,), 1),
        ("spindle", (1, 2), 2),
    ]
    assert listed[1].purpose == "predictive-maintenance-research"
    assert show("spindle", lake_root=lake).version == 2
    assert show("spindle", "v1", lake_root=lake).sources["telemetry"].version == 1
    assert show("spindle", 2, lake_root=lake).sources["telemetry"].version == 2


def test_load_and_iter_batches_give_the_split(lake: Path) -> None:
    folder = Path(curated_root(lake).root) / "spindle" / "v1"
    expected = pl.read_parquet(folder / "train.parquet")
    assert_frame_equal(load("spindle", 1, lake_root=lake), expected)
    batches = list(iter_batches("spindle", "v1", batch_rows=3, lake_root=lake))
    assert [b.height for b in batches] == [3, 1]
    assert_frame_equal(pl.concat(batches), expected)
    assert load("spindle", split="test", lake_root=lake).height == 1


def test_pull_parquet_and_arrow(lake: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    parquet = pull("spindle", None, "train", out, lake_root=lake)
    arrow = pull("spindle", 1, "test", out, "arrow", lake_root=lake)
    assert parquet.name == "spindle-v2-train.parquet"
    assert_frame_equal(pl.read_parquet(parquet), load("spindle", 2, lake_root=lake))
    with pa.memory_map(str(arrow)) as source:
        table = pa.ipc.open_file(source).read_all()
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    assert_frame_equal(frame, load("spindle", 1, "test", lake_root=lake))
    manifest = json.loads((out / "spindle-v1.manifest.json").read_bytes())
    assert manifest["version"] == 1


def test_pull_never_replaces_a_readme_that_is_not_a_data_card(lake: Path, tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "README.md").write_text("# my project\n")
    with pytest.raises(TerminalError, match="not a maxlake data card; nothing pulled"):
        pull("spindle", 1, "train", checkout, lake_root=lake)
    assert (checkout / "README.md").read_text() == "# my project\n"
    assert sorted(p.name for p in checkout.iterdir()) == ["README.md"]
    assert pull("spindle", 1, "test", checkout, "arrow", lake_root=lake).is_file()
    own = tmp_path / "own"
    pull("spindle", 1, "train", own, lake_root=lake)
    pull("spindle", 1, "test", own, lake_root=lake)
    assert "spindle-v1-test.parquet" in (own / "README.md").read_text()


def test_pull_never_replaces_another_datasets_card(lake: Path, tmp_path: Path) -> None:
    mixed = tmp_path / "mixed"
    pull("spindle", 1, "train", mixed, lake_root=lake)
    card = (mixed / "README.md").read_bytes()
    with pytest.raises(TerminalError) as refused:
        pull("other", 1, "train", mixed, lake_root=lake)
    message = str(refused.value)
    assert "is the data card of spindle v1; pulling other there would replace it" in message
    assert "nothing pulled" in message
    assert "into a folder of its own with --out DIR" in message
    assert (mixed / "README.md").read_bytes() == card
    assert not any(p.name.startswith("other") for p in mixed.iterdir())
    # another split, and another version, of the same set still go there
    pull("spindle", 1, "test", mixed, lake_root=lake)
    assert "spindle-v1-test.parquet" in (mixed / "README.md").read_text()
    pull("spindle", 2, "train", mixed, lake_root=lake)
    assert "spindle-v2-train.parquet" in (mixed / "README.md").read_text()
    # an Arrow pull writes no card, but its file would sit under spindle's card all the same
    with pytest.raises(TerminalError, match="is the data card of spindle v2; pulling other"):
        pull("other", 1, "test", mixed, "arrow", lake_root=lake)
    assert not any(p.name.startswith("other") for p in mixed.iterdir())
    assert pull("spindle", 2, "test", mixed, "arrow", lake_root=lake).is_file()


def test_pull_refuses_a_split_that_does_not_match_its_manifest(lake: Path, tmp_path: Path) -> None:
    split = Path(curated_root(lake).root) / "spindle" / "v1" / "train.parquet"
    split.write_bytes(split.read_bytes() + b"x")
    with pytest.raises(TerminalError, match="does not match the sha256"):
        pull("spindle", 1, "train", tmp_path / "out", lake_root=lake)


@pytest.mark.parametrize(
    "name", ["../x", "/etc/passwd", "a/b", "spin\x00dle", "", "Spindle", ".hidden", "x" * 65]
)
def test_malformed_names_are_rejected_with_the_valid_form(lake: Path, name: str) -> None:
    with pytest.raises(InvalidDatasetRef, match=r"expected a name matching \^\[a-z0-9\]"):
        load(name, lake_root=lake)


@pytest.mark.parametrize("version", ["0", "v0", "-1", "../1", "1.0", "latest", 0, True])
def test_malformed_versions_are_rejected(lake: Path, version: object) -> None:
    with pytest.raises(InvalidDatasetRef, match="expected a positive integer N or 'vN'"):
        show("spindle", version, lake_root=lake)  # type: ignore[arg-type]


def test_unknown_names_versions_and_splits_list_what_exists(lake: Path) -> None:
    with pytest.raises(DatasetNotFound, match=r"no dataset 'nope' \(available: other, spindle\)"):
        show("nope", lake_root=lake)
    with pytest.raises(DatasetNotFound, match=r"'v9' \(available: v1, v2\)"):
        load("spindle", 9, lake_root=lake)
    with pytest.raises(DatasetNotFound, match=r"no split of spindle@v2 'dev' \(available: test"):
        load("spindle", split="dev", lake_root=lake)
    with pytest.raises(InvalidDatasetRef, match=r"invalid split '\.\./train'"):
        load("spindle", split="../train", lake_root=lake)


def test_revoked_versions_are_shown_but_not_served(lake: Path) -> None:
    folder = Path(curated_root(lake).root) / "spindle" / "v2"
    doc = json.loads((folder / "manifest.json").read_bytes())
    doc["status"] = "revoked"
    (folder / "manifest.json").write_text(json.dumps(doc))
    assert show("spindle", 2, lake_root=lake).status == "revoked"
    assert load("spindle", lake_root=lake).height == 4
    assert show("spindle", lake_root=lake).version == 1
    with pytest.raises(TerminalError, match="spindle@v2 is revoked"):
        load("spindle", 2, lake_root=lake)


def test_when_every_version_is_revoked_show_gives_the_newest_and_errors_name_the_status(
    lake: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for version in (1, 2):
        folder = Path(curated_root(lake).root) / "spindle" / f"v{version}"
        doc = json.loads((folder / "manifest.json").read_bytes())
        doc["status"], doc["status_reason"] = "revoked", "contract nw revoked at T: left"
        (folder / "manifest.json").write_text(json.dumps(doc))

    newest = show("spindle", lake_root=lake, newest_if_none_active=True)
    assert (newest.version, newest.status) == (2, "revoked")
    with pytest.raises(DatasetNotFound, match=r"\(available: v1 \(revoked\), v2 \(revoked\)\)"):
        load("spindle", lake_root=lake)
    with pytest.raises(VersionRevoked, match=r"spindle@v1 is revoked \(contract nw revoked") as e:
        load("spindle", 1, lake_root=lake)
    assert isinstance(e.value, TerminalError)
    assert (e.value.ref, e.value.status) == ("spindle@v1", "revoked")

    monkeypatch.setenv("MAXLAKE_LAKE_ROOT", str(lake))
    assert main(["datasets", "show", "spindle"]) == 0
    assert capsys.readouterr().out.startswith("spindle@v2  revoked (contract nw revoked")
    assert main(["datasets", "list"]) == 0
    (row,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("spindle")]
    assert row.split()[1:4] == ["none", "2", "revoked"]


def test_parse_ref() -> None:
    assert parse_ref("spindle") == ("spindle", None)
    assert parse_ref("spindle@3") == ("spindle", 3)
    assert parse_ref("spindle@v3") == ("spindle", 3)
    with pytest.raises(InvalidDatasetRef):
        parse_ref("spindle@")


def test_cli_builds_the_reference_job_reproducibly_then_lists_shows_and_pulls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    store = seeded_lake(tmp_path)
    write_down_event(store, "cnc-101", T0 + timedelta(days=1, hours=14))
    monkeypatch.setenv("MAXLAKE_LAKE_ROOT", str(tmp_path))
    monkeypatch.setenv("MAXLAKE_SHARING_MIN_GROUP_SIZE", "1")
    contract = tmp_path / "nw.toml"
    contract.write_text(
        'id = "nw-research"\ntenant = "northwind-auto"\npurposes = ["research"]\n'
        '[share]\nkinds = ["telemetry", "machine_event", "inspection"]\n'
        '[deidentify]\npseudonymise = ["machine"]\n'
    )
    assert main(["contracts", "add", str(contract)]) == 0
    assert main(["access", "principal", "add", "pm-team", "--kind", "model_team"]) == 0
    monkeypatch.setenv("MAXLAKE_TOKEN", capsys.readouterr().out.strip().splitlines()[-1])
    assert main(["access", "grant", "pm-team", "pm"]) == 0
    capsys.readouterr()
    spec_file = tmp_path / "pm.toml"
    spec_file.write_text(
        'name = "pm"\npurpose = "research"\n[job]\nname = "predictive_maintenance"\n'
        '[filters]\ntenants = ["northwind-auto"]\n'
    )
    summaries: list[dict[str, Any]] = []
    for again in ([], ["--publish-identical"]):
        assert main(["datasets", "build", str(spec_file), *again]) == 0
        captured = capsys.readouterr()
        assert "datasets: pin: telemetry 1, machine_event 0, inspection absent" in captured.err
        assert "datasets: job: train " in captured.err  # as make demo words it
        assert "datasets: rows are machine windows of 1 h (train " in captured.err
        assert "datasets: published: version " in captured.err
        if summaries:
            assert "datasets: schema same feature columns as pm@v1" in captured.err
        summaries.append(json.loads(captured.out))
    assert [s["version"] for s in summaries] == [1, 2]
    assert summaries[0]["content_hash"] == summaries[1]["content_hash"]
    assert summaries[0]["sources"] == {"inspection": None, "machine_event": 0, "telemetry": 1}

    assert main(["datasets", "list"]) == 0
    assert "pm" in capsys.readouterr().out
    assert main(["datasets", "show", "pm@1"]) == 0
    assert summaries[0]["content_hash"] in capsys.readouterr().out
    out = tmp_path / "pulled"
    args = ["datasets", "pull", "pm", "--split", "test", "--format", "arrow", "--out", str(out)]
    assert main(args) == 0
    said = capsys.readouterr()
    assert said.out.strip() == str(out / "pm-v2-test.arrow")
    assert str(out / "pm-v2.manifest.json") in said.err
    assert (out / "pm-v2.manifest.json").is_file()
    assert said.err.startswith(
        f"pulled {summaries[1]['rows']['test']:,} rows of pm@v2 split test; also"
    )
    assert main(["datasets", "pull", "pm", "--split", "tets", "--out", str(out)]) == 1
    assert "pm@v2 has no split 'tets' (did you mean test?) (splits: " in capsys.readouterr().err
    default = tmp_path / "default"
    assert main(["datasets", "pull", "pm", "--out", str(default)]) == 0
    said = capsys.readouterr()
    assert said.out.strip() == str(default / "pm-v2-train.parquet")
    others = " or ".join(s for s in ("validation", "test") if s in summaries[1]["rows"])
    assert f" of pm@v2 split train (the default; --split {others} for the other" in said.err
    assert "note:" not in said.err
    assert main(["datasets", "pull", "pm@1", "--split", "test", "--out", str(default)]) == 0
    assert (
        f"note: {default} also holds pm-v2-train.parquet of other versions of pm, which its "
        "data card no longer lists (it describes v1): give each version a folder of its own"
    ) in capsys.readouterr().err

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    other_card = '---\npretty_name: "other v3"\nmaxlake:\n  dataset: "other"\n  version: 3\n---\n'
    (foreign / "README.md").write_text(other_card)
    assert main(["datasets", "pull", "pm", "--split", "test", "--out", str(foreign)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        f"maxlake: error: invalid: {foreign / 'README.md'} is the data card of other v3;"
    )
    assert "pulling pm there would replace it" in err
    assert (foreign / "README.md").read_text() == other_card
    refused = AuditLog(DeltaStore(tmp_path)).read().filter(pl.col("outcome") != "allowed")
    assert refused.select("action", "outcome", "status").rows() == [
        ("pull", "not_found", 404),
        ("pull", "invalid", 409),
    ]
    assert "is the data card of other v3" in refused["detail"][1]

    a_file = foreign / "README.md"
    for fmt in ("parquet", "arrow"):
        args = ["datasets", "pull", "pm", "--split", "test", "--format", fmt, "--out", str(a_file)]
        assert main(args) == 1
        err = capsys.readouterr().err
        assert err.startswith(
            f"maxlake: error: invalid: {a_file} is a file, not a folder; nothing pulled"
        )
        assert "unexpected" not in err
    assert a_file.read_text() == other_card
    refused = AuditLog(DeltaStore(tmp_path)).read().filter(pl.col("outcome") != "allowed")
    assert refused.select("outcome", "status").rows()[-2:] == [("invalid", 409)] * 2

    wrong = ["datasets", "pull", "pm", "--split", "test", "--out", str(out), "--token", "nope"]
    assert main(wrong) == 1
    err = capsys.readouterr().err
    assert "the token given (--token or MAXLAKE_TOKEN) is not one of this lake's" in err
    assert "give --token" not in err
    token = os.environ["MAXLAKE_TOKEN"]
    monkeypatch.delenv("MAXLAKE_TOKEN")
    assert main(["datasets", "pull", "pm", "--split", "test", "--out", str(out)]) == 1
    assert (
        "a valid token is required (give --token or set MAXLAKE_TOKEN)" in capsys.readouterr().err
    )
    assert not (out / "pm-v2-test.parquet").exists()
    monkeypatch.setenv("MAXLAKE_TOKEN", token)

    assert main(["datasets", "show", "../etc"]) == 1
    assert capsys.readouterr().err.startswith(
        "maxlake: error: invalid: invalid dataset name '../etc'"
    )
    not_found = "maxlake: error: not_found: no version of pm 'v7' (available: v1, v2)\n"
    for command in ("pull", "show", "scan"):
        assert main(["datasets", command, "pm@v7"]) == 1
        assert capsys.readouterr().err == not_found, command  # one code, whichever command

    registry_store = RegistryStore(tmp_path)
    base = registry_store.get()
    doc = base.registry.document()
    doc["machine_types"]["press"] = {
        "description": "a new company's press",
        "tags": [{"tag": "ram_force", "unit": "kN", "min": 0.0, "max": 9000.0, "nominal": 10.0}],
    }
    registry_store.commit(doc, base=base, author="tenants onboard", reason="NewCo joins")
    assert main(["datasets", "build", str(spec_file)]) == 0
    err = capsys.readouterr().err
    assert (
        "datasets: schema CHANGED since pm@v2: 7 feature column(s) added (ram_force__count" in err
    )
    assert "machine type press (1 tag(s): ram_force)" in err
    assert "datasets: schema cause: registry version 0 -> 1" in err
    assert "registry change since pm@v2: v1 " in err
    assert "tenants onboard: NewCo joins" in err


def test_a_failed_quality_version_is_marked_everywhere_and_refused_by_default(
    lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ovens = spec(name="ovens", filters={"machine_types": ["reflow_oven"]})
    build_dataset(
        DeltaStore(lake), ovens, registry=registry(), jobs=JOBS, allow_failed_quality=True
    )
    listed = {d.name: d for d in list_datasets(lake)}
    assert listed["ovens"].failed_quality == (1,)
    assert listed["spindle"].failed_quality == ()
    assert not show("ovens", lake_root=lake).quality_passed
    with pytest.raises(FailedQualityRefused, match=r"ovens@v1 failed its output checks \(rows\)"):
        load("ovens", lake_root=lake)
    with pytest.raises(FailedQualityRefused):
        pull("ovens", 1, "train", tmp_path / "out", lake_root=lake)
    assert load("ovens", lake_root=lake, allow_failed_quality=True).height == 0
    pull("ovens", 1, "train", tmp_path / "out", lake_root=lake, allow_failed_quality=True)
    card = (tmp_path / "out" / "README.md").read_text()
    header = card.split("\n---\n", 1)[0]
    assert '  quality:\n    passed: false\n    failed:\n      - "rows"' in header
    assert "**Quality: FAILED** output checks rows." in card

    monkeypatch.setenv("MAXLAKE_LAKE_ROOT", str(lake))
    assert main(["datasets", "list"]) == 0
    out = capsys.readouterr().out
    assert "failed output checks (not served by default): ovens@v1" in out
    assert any(line.startswith("ovens") and "FAILED" in line for line in out.splitlines())
    assert main(["datasets", "show", "ovens"]) == 0
    assert "quality    FAILED (rows)" in capsys.readouterr().out
    assert main(["datasets", "show", "ovens", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["quality"]["success"] is False
