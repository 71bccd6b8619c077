"""The build-time disclosure report: how far a new dataset version can be linked or singled out.

Every version built under contracts carries a ``disclosure`` entry in its manifest:

* **linkage** — the share of the new version's rows that can be linked *uniquely* to a row of
  another published version built from the same tenants under another contract; against each
  such version only the rows of the tenants whose contract differs are measured (the caller
  selects them: a tenant under the same contract in both contributes the same rows to both):

  - ``exact_share``: equal values on a candidate key, found in exactly one row on each side.
    Candidate keys are every pair (one time column, one float column) the two versions have in
    common, all their common time columns together, and all their common float columns
    together; the largest share over the keys is reported (an attacker picks the best key).
  - ``nearest_share``: rows whose nearest neighbour on the first common float column (an
    as-of join, strategy ``nearest``) agrees on *every* common float column within the relative
    ``tolerance`` (``|a - b| <= tolerance * max(|a|, |b|)``), less the matches expected by
    chance: the mean count against decoys of the other version, every float value scaled by
    ``1 ± k * tolerance`` (k = 3, 5, 7, 9), which keeps the local density of values and moves
    every true counterpart out of reach (the target-decoy estimate of false matches).

* **groups** — for each machine type in the output, the number of companies contributing rows
  of it; ``machine_type_min_companies`` is the smallest such group (k of k-anonymity, Sweeney
  2002, counted over machine types). ``withheld_columns`` lists the structure left out of the
  set (tenant, plant and line unless released), which is what keeps the shape of a company
  (machines per line and plant) out of it.

A contract sets limits (``max_linkable_share``, ``min_group_size``); a build over any limit of
any of its contracts publishes nothing and names the limit (:class:`DisclosureRefused`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import polars as pl

from lake.sharing.errors import DisclosureRefused

__all__ = [
    "DisclosureReport",
    "PublishedSets",
    "linkage",
    "read_splits",
]

_MAX_FLOAT_COLUMNS = 12


class PublishedSets(Protocol):
    """The published versions a new one is compared with (a ``lake.curation.CuratedArea``)."""

    def published(self) -> Iterator[tuple[str, int, dict[str, Any]]]:
        """Every published version as (name, version, stored manifest JSON object)."""
        ...

    def local_file(self, name: str, version: int, file: str, sha256: str) -> Path:
        """A local file with the bytes of a published version's ``file``."""
        ...


@dataclass(frozen=True)
class DisclosureReport:
    """What the manifest's ``disclosure`` entry holds (see the module doc)."""

    rows: int
    compared_versions: int
    exact_share: float
    exact_key: list[str]
    nearest_share: float
    tolerance: float
    machine_type_min_companies: int | None
    machine_types: int
    withheld_columns: list[str]
    untraced_rows: int = 0
    rows_at_risk: int = 0

    def record(self) -> dict[str, Any]:
        """The JSON-ready manifest entry."""
        return asdict(self)

    def enforce(self, dataset: str, limits: Iterable[tuple[float, int | None]]) -> None:
        """Raise :class:`DisclosureRefused` when a contract's limit is exceeded.

        Args:
            dataset: the dataset name (for the message).
            limits: ``(max_linkable_share, min_group_size)`` of each contract.
        """
        for max_share, min_group in limits:
            worst = max(self.exact_share, self.nearest_share)
            if worst > max_share:
                raise DisclosureRefused(
                    dataset,
                    f"{worst:.1%} of the {self.rows_at_risk:,} rows measured (of {self.rows:,}) "
                    "link to another published version "
                    f"(exact on {', '.join(self.exact_key) or '-'}: {self.exact_share:.1%}, "
                    f"nearest within {self.tolerance:g}: {self.nearest_share:.1%}); "
                    f"a contract allows at most {max_share:.1%}; {_remedy(self)}",
                )
            smallest = self.machine_type_min_companies
            if min_group is not None and smallest is not None and smallest < min_group:
                raise DisclosureRefused(
                    dataset,
                    f"a machine type in the output hides among {smallest} company(ies); "
                    f"a contract asks for at least {min_group}",
                )


def _remedy(report: DisclosureReport) -> str:
    """What to change in the contracts (or the job) for a set refused for linkage."""
    if report.exact_share > report.nearest_share:
        cure = "keep time_shift_days and value_noise on (or set time_grid_s)"
    else:
        cure = "set feature_noise (e.g. 0.02) so that few-reading aggregates do not pair"
    untraced = ""
    if report.untraced_rows:
        untraced = (
            f"; {report.untraced_rows} row(s) name no single company by their tenant, plant, "
            "line or machine column and were measured whatever their company's contract: "
            "keep one of those columns unchanged in the job's output so that only rows of "
            "companies whose contract changed are measured"
        )
    return f"{cure}, or raise max_linkable_share to accept the linkage{untraced}"


def linkage(
    new: pl.DataFrame, others: Sequence[pl.DataFrame], tolerance: float
) -> tuple[float, list[str], float]:
    """``(exact_share, exact_key, nearest_share)`` of ``new`` against ``others``."""
    exact, key, nearest = 0.0, list[str](), 0.0
    if new.height == 0:
        return exact, key, nearest
    for other in others:
        times, floats = _link_columns(new, other)
        for candidate in _candidate_keys(times, floats):
            share = _unique_matches(new, other, candidate) / new.height
            if share > exact:
                exact, key = share, candidate
        if floats:
            linked = _nearest(new, other, floats, tolerance) - _chance(
                new, other, floats, tolerance
            )
            nearest = max(nearest, linked / new.height)
    return exact, key, nearest


def read_splits(
    curated: PublishedSets, name: str, version: int, manifest: Mapping[str, Any]
) -> pl.DataFrame:
    """Every split of a published version, stacked (columns of the first split's schema)."""
    frames = [
        pl.read_parquet(curated.local_file(name, version, s["file"], s["sha256"]))
        for s in manifest.get("splits", {}).values()
    ]
    return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()


def _link_columns(new: pl.DataFrame, other: pl.DataFrame) -> tuple[list[str], list[str]]:
    common = [c for c in new.columns if c in other.columns]
    times = [c for c in common if new.schema[c].is_temporal() and other.schema[c].is_temporal()]
    floats = [c for c in common if new.schema[c].is_float() and other.schema[c].is_float()]
    return times, floats[:_MAX_FLOAT_COLUMNS]


def _candidate_keys(times: list[str], floats: list[str]) -> list[list[str]]:
    keys: list[list[str]] = [[t, f] for t in times for f in floats]
    if times:
        keys.append(times)
    if floats:
        keys.append(floats)
    return keys


def _unique_matches(new: pl.DataFrame, other: pl.DataFrame, key: list[str]) -> int:
    def once(frame: pl.DataFrame) -> pl.DataFrame:
        counted = frame.select(key).drop_nulls().group_by(key).len()
        return counted.filter(pl.col("len") == 1).drop("len")

    return once(new).join(once(other), on=key, how="inner", nulls_equal=False).height


_DECOY_STEPS = (3, 5, 7, 9)


def _chance(new: pl.DataFrame, other: pl.DataFrame, floats: list[str], tolerance: float) -> float:
    """Nearest-neighbour matches expected by chance: the mean over decoys of ``other``."""
    counts = [
        _nearest(
            new,
            other.with_columns(pl.col(c) * (1 + sign * k * tolerance) for c in floats),
            floats,
            tolerance,
        )
        for k in _DECOY_STEPS
        for sign in (1, -1)
    ]
    return sum(counts) / len(counts)


def _nearest(new: pl.DataFrame, other: pl.DataFrame, floats: list[str], tolerance: float) -> int:
    first = floats[0]
    left = new.select(floats).drop_nulls(first).with_row_index("_row").sort(first)
    right = other.select(floats).drop_nulls(first).rename({c: f"{c}_o" for c in floats})
    right = right.sort(f"{first}_o")
    if left.height == 0 or right.height == 0:
        return 0
    joined = left.join_asof(right, left_on=first, right_on=f"{first}_o", strategy="nearest")
    close = pl.lit(True)
    for column in floats:
        a, b = pl.col(column), pl.col(f"{column}_o")
        scale = pl.max_horizontal(a.abs(), b.abs())
        within = ((a - b).abs() <= tolerance * scale) | (a.is_null() & b.is_null())
        close = close & within.fill_null(False)
    return int(joined.select(close.sum()).item())
