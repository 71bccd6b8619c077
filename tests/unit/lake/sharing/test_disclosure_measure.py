"""The nearest-neighbour linkage figure counts links beyond chance, not every near value."""

from __future__ import annotations

import polars as pl

from lake.sharing.disclosure import linkage


def test_dense_values_that_are_near_by_chance_do_not_count_as_links() -> None:
    new = pl.DataFrame({"mean_value": [100 + 0.05 * i for i in range(2000)]})
    unrelated = pl.DataFrame({"mean_value": [100.025 + 0.05 * i for i in range(2000)]})

    _, _, nearest = linkage(new, [unrelated], tolerance=0.001)

    assert nearest < 0.03


def test_sparse_values_that_match_within_the_tolerance_are_links() -> None:
    new = pl.DataFrame({"mean_value": [100 * 1.05**i for i in range(40)]})
    same_rows = new.with_columns(pl.col("mean_value") * (1 + 1e-5))

    _, _, nearest = linkage(new, [same_rows], tolerance=0.001)

    assert nearest == 1.0
