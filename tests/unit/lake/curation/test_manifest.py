"""The content hash depends on the data only; manifests round-trip; label distributions."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from lake.curation.manifest import (
    Manifest,
    SourceInfo,
    SplitInfo,
    content_hash,
    frame_sha256,
    label_distribution,
)
from maxlake.errors import TerminalError


def _frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "machine": [f"m{i % 7}" for i in range(200_000)],
            "value": [float(i) for i in range(200_000)],
            "label": [i % 3 for i in range(200_000)],
        }
    )


def test_frame_hash_is_independent_of_chunking_and_stable() -> None:
    frame = _frame()
    chunked = pl.concat([frame.slice(0, 70_001), frame.slice(70_001)], rechunk=False)
    assert chunked.n_chunks() == 2
    assert frame_sha256(chunked) == frame_sha256(frame) == frame_sha256(_frame())


def test_frame_hash_sees_row_order_values_and_types() -> None:
    frame = _frame()
    base = frame_sha256(frame)
    assert frame_sha256(frame.reverse()) != base
    assert frame_sha256(frame.with_columns(pl.col("value") + 1e-9)) != base
    assert frame_sha256(frame.with_columns(pl.col("label").cast(pl.Int32))) != base


def test_content_hash_covers_splits_and_files() -> None:
    splits = {"train": "a", "test": "b"}
    base = content_hash(splits, {})
    assert content_hash(dict(reversed(splits.items())), {}) == base
    assert content_hash({"train": "b", "test": "a"}, {}) != base
    assert content_hash(splits, {"stats.json": "c"}) != base


def test_label_distribution_counts_or_summarises() -> None:
    frame = pl.DataFrame({"y": [1, 0, 1, None], "r": [0.5, 1.5, 2.5, 3.5]})
    assert label_distribution(frame, "y") == {"counts": {"0": 1, "1": 2}, "nulls": 1}
    many = pl.DataFrame({"r": [float(i) for i in range(100)]})
    assert label_distribution(many, "r") == {"min": 0.0, "max": 99.0, "mean": 49.5, "nulls": 0}


def test_manifest_round_trips_and_rejects_foreign_files(tmp_path: Path) -> None:
    manifest = Manifest(
        name="x",
        version=2,
        created_at="2026-01-01T00:00:00Z",
        status="active",
        spec={"name": "x"},
        spec_hash="s",
        job="j",
        sources={"telemetry": SourceInfo("silver/telemetry", 3, True, 10)},
        splits={"train": SplitInfo("train.parquet", 10, "f", "c", {"y": {"counts": {}}})},
        features=[{"name": "f", "unit": "1", "description": "d"}],
        label_columns=["y"],
        key_columns=["k"],
        files={},
        quality={"success": True},
        content_hash="h",
        registry_hash="r",
        maxlake_version="0.1.0",
    )
    manifest.write(tmp_path)
    assert Manifest.read(tmp_path) == manifest
    (tmp_path / "manifest.json").write_text('{"format": 99}')
    with pytest.raises(TerminalError, match="manifest format 99"):
        Manifest.read(tmp_path)
    (tmp_path / "manifest.json").write_text("not json")
    with pytest.raises(TerminalError, match="not a readable dataset manifest"):
        Manifest.read(tmp_path)
