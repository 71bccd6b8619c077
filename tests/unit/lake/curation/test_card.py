"""Data cards: every version and every pull loads with Hugging Face `datasets`, no maxlake code."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import datasets
import polars as pl
import pytest

from lake.curation import CuratedArea, JobInputs, JobOutput, build_dataset, curated_root, pull
from lake.curation.card import CARD_FILE, LABEL_FILE, stored_card
from maxlake.errors import TerminalError
from tests.unit.lake.curation.test_build_helpers import JOB_NAME, JOBS, registry, seeded_lake, spec


def _load(folder: Path, cache: Path) -> Any:
    return datasets.load_dataset(str(folder), cache_dir=str(cache))


def test_a_published_version_loads_with_every_split(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    store = seeded_lake(tmp_path / "lake")
    the_spec = spec(card={"license": "cc-by-4.0", "source": "synthetic spindles"})
    manifest = build_dataset(store, the_spec, registry=registry(), jobs=JOBS)
    folder = Path(curated_root(tmp_path / "lake").root) / "spindle" / "v1"

    card = (folder / "README.md").read_text()
    assert card.startswith("---\n")
    assert 'license: "cc-by-4.0"' in card
    assert '"mean_value": "degC"' not in card  # YAML, not JSON
    assert 'mean_value: "degC"' in card

    loaded = _load(folder, tmp_path / "hf")
    assert set(loaded) == {"train", "test"}
    assert loaded["train"].num_rows == manifest.splits["train"].rows
    assert loaded["test"].num_rows == manifest.splits["test"].rows
    assert "mean_value" in loaded["train"].column_names

    out = tmp_path / "pulled"
    pull("spindle", 1, "train", out, lake_root=tmp_path / "lake")
    assert set(_load(out, tmp_path / "hf2")) == {"train"}
    pull("spindle", 1, "test", out, lake_root=tmp_path / "lake")
    both = _load(out, tmp_path / "hf3")
    assert {name: both[name].num_rows for name in both} == {
        "train": manifest.splits["train"].rows,
        "test": manifest.splits["test"].rows,
    }


def _with_label(inputs: JobInputs) -> JobOutput:
    out = JOBS[JOB_NAME](inputs)
    label = b'{"definition": "mean reading above the nominal"}'
    return dataclasses.replace(out, files={**out.files, LABEL_FILE: label})


def test_the_card_is_rendered_again_from_what_the_manifest_vouches_for(tmp_path: Path) -> None:
    store = seeded_lake(tmp_path / "lake")
    manifest = build_dataset(store, spec(), registry=registry(), jobs={JOB_NAME: _with_label})
    folder = Path(curated_root(tmp_path / "lake").root) / "spindle" / "v1"

    area = CuratedArea.of(tmp_path / "lake")
    card = stored_card(area, manifest)

    assert card == (folder / CARD_FILE).read_bytes()
    assert b"mean reading above the nominal" in card
    (folder / LABEL_FILE).write_bytes(b'{"definition": "altered"}')
    with pytest.raises(TerminalError, match=r"label\.json"):
        stored_card(area, manifest)


def _with_window_start(inputs: JobInputs) -> JobOutput:
    out = JOBS[JOB_NAME](inputs)
    start = pl.lit(datetime(2026, 11, 1, 6, tzinfo=UTC), dtype=pl.Datetime("us", "UTC"))
    splits = {
        name: rows.with_columns(start.alias("window_start")) for name, rows in out.splits.items()
    }
    return dataclasses.replace(out, splits=splits)


def test_a_time_column_loads_as_a_timestamp_not_a_string(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    store = seeded_lake(tmp_path / "lake")
    build_dataset(store, spec(), registry=registry(), jobs={JOB_NAME: _with_window_start})
    folder = Path(curated_root(tmp_path / "lake").root) / "spindle" / "v1"

    train = _load(folder, tmp_path / "hf")["train"]

    assert train.features["window_start"].dtype == "timestamp[us, tz=UTC]"
    assert train[0]["window_start"] == datetime(2026, 11, 1, 6, tzinfo=UTC)
