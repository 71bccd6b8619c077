"""Feature-level noise, played by a partner holding two contracts' tiny sets of one company.

Noise on each reading shrinks when a job averages readings (a mean of n readings carries
``value_noise * (max - min) / sqrt(n)``, the tag's registry range), so the means of a small set
under two contracts pair row by row.
``feature_noise`` adds keyed noise of the stated scale to every float feature of the output,
whatever the number of readings behind it. Both sets here hold the same machines and windows
with identical times (time shift off) and machine ids released, so the test knows the true
pairs; the keys are fixed, so the figures are the same in every run.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import polars as pl

from lake.curation import load, show
from tests.unit.lake.sharing.helpers import Sharing
from tests.unit.lake.sharing.test_linkage import _build, _contract, _lake

PLAIN = 'release = ["machine"]\ntime_shift_days = 0\nvalue_noise = 0\nmax_linkable_share = 1.0\n'
KEYS = {"nw-a": "11" * 32, "nw-b": "22" * 32}


def _pair(tmp_path: Path, noise_b: str) -> tuple[pl.DataFrame, dict[str, float]]:
    """Set A without any noise, set B with ``noise_b`` and no reading noise: rows joined on
    the truth, and B's disclosure report."""
    store = _lake(tmp_path / "lake")
    sharing = Sharing(tmp_path, min_group_size=1)
    sharing.add(_contract("nw-a", "study-a", PLAIN + "feature_noise = 0\n"))
    sharing.add(_contract("nw-b", "study-b", PLAIN + noise_b))
    sharing.keys.path.write_text(json.dumps(KEYS))
    _build(store, sharing, "set-a", "windows", "study-a")
    _build(store, sharing, "set-b", "windows", "study-b")
    a = load("set-a", 1, "train", lake_root=store.root)
    b = load("set-b", 1, "train", lake_root=store.root)
    pairs = a.join(b, on=["machine", "window_start"], how="inner", suffix="_b")
    assert pairs.height == a.height == b.height
    report = show("set-b", 1, lake_root=store.root).sharing["disclosure"]  # type: ignore[index]
    return pairs, report


def test_without_feature_noise_a_partner_pairs_every_row(tmp_path: Path) -> None:
    pairs, report = _pair(tmp_path, "feature_noise = 0\n")

    assert pairs.filter(pl.col("mean_value") != pl.col("mean_value_b")).height == 0
    assert report["compared_versions"] == 1
    assert report["nearest_share"] > 0.5


def test_feature_noise_moves_every_feature_by_its_stated_scale(tmp_path: Path) -> None:
    pairs, report = _pair(tmp_path, "feature_noise = 0.05\n")

    ratio = (pairs.get_column("mean_value_b") / pairs.get_column("mean_value") - 1).to_list()
    assert pairs.height >= 20
    assert 0.03 < statistics.pstdev(ratio) < 0.07, "the stated 5 % relative standard deviation"
    within = sum(abs(r) <= 0.001 for r in ratio) / len(ratio)
    assert within < 0.1, "rows still pair within the 0.1 % linkage tolerance"
    assert report["nearest_share"] < 0.1
    assert pairs.get_column("readings").equals(pairs.get_column("readings_b"), check_names=False), (
        "integer counts are not features with noise"
    )


def test_the_default_contract_adds_one_percent(tmp_path: Path) -> None:
    pairs, _ = _pair(tmp_path, "")

    ratio = (pairs.get_column("mean_value_b") / pairs.get_column("mean_value") - 1).to_list()
    assert 0.006 < statistics.pstdev(ratio) < 0.015
