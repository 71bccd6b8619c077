"""Data cards: every version and every pull loads with Hugging Face `datasets`, no maxlake code."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import datasets
import polars as pl
import pyarrow as pa
import pytest
from datasets.exceptions import DatasetGenerationError

from lake.curation import CuratedArea, JobInputs, JobOutput, build_dataset, curated_root, pull
from lake.curation.card import (
    CARD_FILE,
    LABEL_FILE,
    hf_features,
    stale_card_columns,
    stored_card,
)
from maxlake.cli import main
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


def _with_nested_columns(inputs: JobInputs) -> JobOutput:
    """:func:`tag_means` plus a list, a struct and a time column, as a job of one's own may
    emit (window values, a per-window summary)."""
    out = JOBS[JOB_NAME](inputs)
    start = pl.lit(datetime(2026, 11, 1, 6, tzinfo=UTC), dtype=pl.Datetime("us", "UTC"))
    values = pl.concat_list(pl.col("mean_value"), pl.col("mean_value") * 2).alias("values")
    summary = pl.struct(
        pl.col("readings").alias("n"), pl.col("tag").alias("tag_name"), values.alias("both")
    ).alias("summary")
    splits = {
        name: rows.with_columns(start.alias("window_start"), values, summary)
        for name, rows in out.splits.items()
    }
    return dataclasses.replace(out, splits=splits)


def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _assert_real_types(train: Any) -> None:
    assert train.features["window_start"].dtype == "timestamp[us, tz=UTC]"
    assert train.features["values"] == datasets.LargeList(datasets.Value("float64"))
    assert train.features["summary"] == {
        "n": datasets.Value("uint32"),
        "tag_name": datasets.Value("large_string"),
        "both": datasets.LargeList(datasets.Value("float64")),
    }
    row = train[0]
    assert row["values"] == [row["mean_value"], row["mean_value"] * 2]
    assert row["summary"]["n"] == row["readings"]


def test_list_and_struct_columns_load_with_their_types_not_as_strings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _offline(monkeypatch)
    store = seeded_lake(tmp_path / "lake")
    build_dataset(store, spec(), registry=registry(), jobs={JOB_NAME: _with_nested_columns})
    out = tmp_path / "pulled"
    pull("spindle", 1, "train", out, lake_root=tmp_path / "lake")

    _assert_real_types(_load(out, tmp_path / "hf")["train"])


def test_the_card_types_are_those_datasets_itself_derives_from_the_parquet_schema() -> None:
    types = [
        *(pa.int8(), pa.uint64(), pa.float16(), pa.float32(), pa.float64(), pa.bool_()),
        *(pa.string(), pa.large_string(), pa.binary(), pa.date32(), pa.date64()),
        *(pa.time64("us"), pa.timestamp("us"), pa.timestamp("ns", "Europe/Berlin")),
        *(
            pa.duration("us"),
            pa.decimal128(10, 2),
            pa.null(),
            pa.dictionary(pa.int32(), pa.string()),
        ),
        pa.list_(pa.float64()),
        pa.list_(pa.int8(), 3),
        pa.large_list(pa.string()),
        pa.list_(pa.list_(pa.int64())),
        pa.list_(pa.struct([("x", pa.int32())])),
        pa.struct([("x", pa.int32()), ("l", pa.list_(pa.timestamp("us", "UTC")))]),
    ]
    schema = pa.schema([(f"c{i}", t) for i, t in enumerate(types)])

    features, untyped = hf_features(schema)

    assert untyped == []
    assert features == datasets.Features.from_arrow_schema(schema)._to_yaml_list()


def test_a_column_datasets_cannot_type_is_named_in_the_card_instead_of_a_wrong_type() -> None:
    schema = pa.schema([("key", pa.string()), ("counts", pa.map_(pa.string(), pa.int64()))])
    assert hf_features(schema) == (
        [{"name": "key", "dtype": "string"}],
        ["counts (map<string, int64>)"],
    )


def test_an_old_version_whose_stored_card_says_string_pulls_with_the_real_types(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _offline(monkeypatch)
    store = seeded_lake(tmp_path / "lake")
    manifest = build_dataset(
        store, spec(), registry=registry(), jobs={JOB_NAME: _with_nested_columns}
    )
    folder = Path(curated_root(tmp_path / "lake").root) / "spindle" / "v1"
    stored = (folder / CARD_FILE).read_text()
    old = re.sub(
        r"(    - name: \"(window_start|values|summary)\"\n)      (large_list|struct|dtype):.*\n"
        r"((        .*\n)*)",
        r'\1      dtype: "string"\n',
        stored,
    )
    assert old.count('dtype: "string"') == 3
    (folder / CARD_FILE).write_text(old)  # what a build before the type fixes wrote
    with pytest.raises(DatasetGenerationError):  # a list declared a string cannot be cast
        _load(folder, tmp_path / "hf-old")

    out = tmp_path / "pulled"
    pull("spindle", 1, "train", out, lake_root=tmp_path / "lake")
    _assert_real_types(_load(out, tmp_path / "hf")["train"])
    served = stored_card(CuratedArea.of(tmp_path / "lake"), manifest).decode()
    assert served == stored  # the service renders the card again, with today's types
    assert stale_card_columns(CuratedArea.of(tmp_path / "lake"), manifest) == [
        "window_start (timestamp[us, tz=UTC])",
        "values (large_list<element: double>)",
        "summary (struct<n: uint32, tag_name: large_string, both: large_list<element: double>>)",
    ]
    monkeypatch.setenv("MAXLAKE_LAKE_ROOT", str(tmp_path / "lake"))
    assert main(["datasets", "show", "spindle@1"]) == 0
    shown = capsys.readouterr().out
    assert "  card       the stored README.md declares window_start (timestamp" in shown
    assert "`datasets pull` writes a card with the real types" in shown
    (folder / CARD_FILE).write_text(stored)
    assert stale_card_columns(CuratedArea.of(tmp_path / "lake"), manifest) == []
