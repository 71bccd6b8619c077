"""Keyed pseudonyms and the de-identification of one tenant's silver frames.

A pseudonym is ``<prefix>_<first 20 hex digits of HMAC-SHA256(key, message)>`` where the key is
the contract's own secret and the message is the contract id, the column and the identifier
*with its scope* (a machine is named by tenant, plant, line and machine id), separated by a
unit separator. Consequences:

* the same machine gets the same pseudonym in every dataset built under one contract, so a
  model team can follow a machine across versions;
* two contracts give unrelated pseudonyms for the same machine (different key and message), so
  datasets built under different contracts cannot be joined on them;
* without the key nobody can compute a pseudonym from a name, so the names cannot be found by
  trying the registry's machine ids (the reason for a key rather than a plain hash).

80 bits of HMAC keep collisions out of reach for any plant's number of machines, parts or lots.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Sequence

import polars as pl

from lake.sharing.contract import Contract
from schemas import EVENT_SCHEMAS

__all__ = [
    "PREFIXES",
    "Pseudonymiser",
    "deidentify",
    "deidentify_machines",
    "feature_noise",
    "perturb",
    "tag_spans",
    "time_shifts",
]

_KIND_IDENTIFIERS = {
    column: prefix
    for event_schema in EVENT_SCHEMAS.values()
    for column, prefix in event_schema.identifier_columns.items()
}
PREFIXES = {
    "tenant": "t",
    "plant": "p",
    "line": "l",
    "machine": "m",
    "event_id": "e",
    **_KIND_IDENTIFIERS,
}
"""Pseudonym prefix per identifier column: the envelope's and each kind's
``identifier_columns`` (inspection: ``part_serial`` -> ``s``, ``lot`` -> ``lot``)."""
_SCOPES: dict[str, tuple[str, ...]] = {
    "tenant": ("tenant",),
    "plant": ("tenant", "plant"),
    "line": ("tenant", "plant", "line"),
    "machine": ("tenant", "plant", "line", "machine"),
    "event_id": ("tenant", "event_id"),
    **{column: ("tenant", column) for column in _KIND_IDENTIFIERS},
}
_SEP = "\x1f"
_HEX_DIGITS = 20


class Pseudonymiser:
    """Pseudonyms of one contract."""

    def __init__(self, contract_id: str, key: bytes) -> None:
        self._contract = contract_id
        self._key = key

    def __repr__(self) -> str:
        return f"Pseudonymiser({self._contract!r}, key=***)"

    def pseudonym(self, column: str, scoped_value: Sequence[str]) -> str:
        """The pseudonym of an identifier given as its scope path (see ``_SCOPES``)."""
        message = _SEP.join((self._contract, column, *scoped_value)).encode("utf-8")
        digest = hmac.new(self._key, message, hashlib.sha256).hexdigest()
        return f"{PREFIXES[column]}_{digest[:_HEX_DIGITS]}"

    def opaque(self, purpose: str, *parts: str) -> str:
        """A keyed id of ``parts`` for ``purpose`` (e.g. a contract's per-set manifest ref)."""
        message = _SEP.join((self._contract, purpose, *parts)).encode("utf-8")
        return "c_" + hmac.new(self._key, message, hashlib.sha256).hexdigest()[:_HEX_DIGITS]

    def seeds(self, purpose: str) -> tuple[int, int]:
        """Two 63-bit keyed seeds for ``purpose`` (hash seeds of keyed noise)."""
        digest = hmac.new(self._key, f"{self._contract}{_SEP}{purpose}".encode(), "sha256")
        raw = digest.digest()
        return int.from_bytes(raw[:8]) >> 1, int.from_bytes(raw[8:16]) >> 1

    def shift_seconds(self, scope: Sequence[str], bound_days: float) -> int:
        """The keyed time offset of a plant (scope: tenant, plant), whole seconds in
        ``[-bound_days, +bound_days]``."""
        message = _SEP.join((self._contract, "time-shift", *scope)).encode("utf-8")
        value = int.from_bytes(hmac.new(self._key, message, hashlib.sha256).digest()[:8])
        bound = int(bound_days * 86_400)
        return value % (2 * bound + 1) - bound

    def shift_seconds_expr(self, bound_days: float) -> pl.Expr:
        """Each row's plant offset (:meth:`shift_seconds`) as an Int64 expression."""

        def apply(series: pl.Series) -> pl.Series:
            distinct = series.unique().drop_nulls().to_list()
            mapping = {v: self.shift_seconds(v.split(_SEP), bound_days) for v in distinct}
            return series.replace_strict(mapping, default=0, return_dtype=pl.Int64)

        joined = pl.concat_str([pl.col("tenant"), pl.col("plant")], separator=_SEP)
        return joined.map_batches(apply, return_dtype=pl.Int64, is_elementwise=True)

    def expr(self, column: str) -> pl.Expr:
        """An expression replacing ``column`` with its pseudonym (computed once per value)."""
        scope = _SCOPES[column]

        def apply(series: pl.Series) -> pl.Series:
            distinct = series.unique().drop_nulls().to_list()
            mapping = {v: self.pseudonym(column, v.split(_SEP)) for v in distinct}
            return series.replace_strict(mapping, default=None, return_dtype=pl.String)

        joined = pl.concat_str([pl.col(c) for c in scope], separator=_SEP)
        return joined.map_batches(apply, return_dtype=pl.String, is_elementwise=True).alias(column)

    def machines_list_expr(self) -> pl.Expr:
        """``inspection.machines`` with each machine id pseudonymised in its line's scope."""

        def apply(series: pl.Series) -> pl.Series:
            out: list[list[str] | None] = []
            for row in series.to_list():
                ids = row["machines"]
                scope = (row["tenant"], row["plant"], row["line"])
                out.append(
                    None if ids is None else [self.pseudonym("machine", (*scope, m)) for m in ids]
                )
            return pl.Series("machines", out, dtype=pl.List(pl.String))

        packed = pl.struct("tenant", "plant", "line", "machines")
        return packed.map_batches(
            apply, return_dtype=pl.List(pl.String), is_elementwise=True
        ).alias("machines")


_MACHINE = ("tenant", "plant", "line", "machine")
_TIME_COLUMNS = ("event_time", "sent_time", "ingested_at", "process_start", "process_end")
_UNIT = 2.0**-53
_GRID = 2.0**16
"""Noisy values are rounded to multiples of 2**-16: sums of them are exact in float64, so a
job's aggregates do not depend on summation order and builds stay reproducible."""


def perturb(
    lf: pl.LazyFrame,
    kind: str,
    contract: Contract,
    pseudonymiser: Pseudonymiser,
    spans: pl.DataFrame | None = None,
) -> pl.LazyFrame:
    """Linkage protection of one tenant's raw rows (before pseudonymisation).

    ``spans`` (tenant, plant, line, machine, tag, span: Float64 in the tag's registry unit) is
    :func:`tag_spans` of the registry; needed when telemetry gets value noise.

    * Time shift (``time_shift_days`` > 0): every time column of a plant's rows moves by one
      offset, ``HMAC(key, contract, "time-shift", tenant, plant)`` mapped to whole seconds in
      ``[-days, +days]``; order and spacing within the plant are kept (so jobs that join a
      plant's machines, parts and events still line up), and ``date`` follows ``event_time``.
    * Value noise (``value_noise`` > 0): a telemetry value becomes
      ``value + value_noise * span * z``, ``span`` the registry's ``max - min`` of the tag for
      the row's machine type (``spans``; a value whose machine type has no such tag becomes
      null), so a tag far from zero (a temperature in K) gets no more noise than one near
      zero; an inspection dimension, which has no registry range, becomes
      ``value * (1 + value_noise * z)``. ``z`` is standard normal from two keyed hashes
      (Box-Muller) of (event_id, tag, reading_index) for telemetry and of (event_id, dimension
      index) for each dimension, so the same value gets the same noise in every build under
      the contract and unrelated noise under another contract; the result is rounded to a
      multiple of 2**-16 (see ``_GRID``).
    * Time grid (``time_grid_s`` > 0): after the shift, every time column is floored to a
      multiple of ``time_grid_s`` seconds.

    Raises:
        ValueError: telemetry needs value noise and ``spans`` is None (a caller's mistake).
    """
    schema = lf.collect_schema()
    exprs: list[pl.Expr] = []
    times = [c for c in _TIME_COLUMNS if c in schema]
    if contract.time_shift_days > 0:
        offset = pseudonymiser.shift_seconds_expr(contract.time_shift_days)
        exprs += [(pl.col(c) + pl.duration(seconds=offset)).alias(c) for c in times]
    out = lf.with_columns(exprs) if exprs else lf
    if contract.value_noise > 0 and kind == "telemetry" and "value" in schema:
        if spans is None:
            raise ValueError("telemetry value noise needs the registry's tag spans")
        first, second = pseudonymiser.seeds("value-noise")
        row = pl.struct("event_id", "tag", "reading_index")
        sd = contract.value_noise * pl.col("_span")
        out = (
            out.join(
                spans.lazy().rename({"span": "_span"}),
                on=[*_MACHINE, "tag"],
                how="left",
                maintain_order="left",
            )
            .with_columns(_noisy(pl.col("value"), sd, row, first, second))
            .drop("_span")
        )
    if contract.value_noise > 0 and kind == "inspection" and "dimensions" in schema:
        first, second = pseudonymiser.seeds("dimension-noise")
        out = _noisy_dimensions(out, first, second, contract.value_noise)
    if contract.time_grid_s > 0 and times:
        grid = f"{contract.time_grid_s}s"
        out = out.with_columns(pl.col(c).dt.truncate(grid) for c in times)
    if (contract.time_shift_days > 0 or contract.time_grid_s > 0) and "date" in schema:
        out = out.with_columns(pl.col("event_time").dt.date().alias("date"))
    return out


def _normal(key: pl.Expr, first: int, second: int) -> pl.Expr:
    """A standard normal value keyed by ``key`` (Box-Muller over two keyed hashes)."""
    u1 = (key.hash(seed=first) // 2048).cast(pl.Float64) * _UNIT + _UNIT / 2
    u2 = (key.hash(seed=second) // 2048).cast(pl.Float64) * _UNIT
    return (-2.0 * u1.log()).sqrt() * (2.0 * math.pi * u2).cos()


def _noisy(value: pl.Expr, sd: pl.Expr, key: pl.Expr, first: int, second: int) -> pl.Expr:
    """``value + sd * z`` on the noise grid, ``z`` standard normal keyed by ``key``."""
    return ((value + sd * _normal(key, first, second)) * _GRID).round() / _GRID


def tag_spans(machines: pl.DataFrame, tags: pl.DataFrame) -> pl.DataFrame:
    """Each machine's tags with their registry span: tenant, plant, line, machine, tag and
    ``span`` = ``max - min`` (Float64, the tag's unit) of the machine's type.

    ``machines`` has the machine columns and ``machine_type``; ``tags`` has ``machine_type``,
    ``tag``, ``min`` and ``max`` (the registry's ``TagSpec`` ranges).
    """
    span = tags.select("machine_type", "tag", (pl.col("max") - pl.col("min")).alias("span"))
    return (
        machines.select(*_MACHINE, "machine_type")
        .join(span, on="machine_type")
        .drop("machine_type")
    )


def feature_noise(
    frame: pl.DataFrame,
    columns: Sequence[str],
    key_columns: Sequence[str],
    pseudonymiser: Pseudonymiser,
    scale: float,
) -> dict[str, pl.Expr]:
    """Column -> expression replacing each float column of ``columns`` in ``frame`` by
    ``value * (1 + scale * z)``, ``z`` standard normal from keyed hashes of the row's
    ``key_columns`` and the column's name (same row, same noise in every build under the
    contract; unrelated under another). Not rounded: a feature's scale can be far below the
    readings' noise grid, and an element-wise product does not depend on row order."""
    first, second = pseudonymiser.seeds("feature-noise")
    keys = [c for c in key_columns if c in frame.columns]
    exprs = {}
    for column in columns:
        if column in frame.columns and frame.schema[column].is_float():
            key = pl.struct(*keys, pl.lit(column).alias("_column"))
            z = _normal(key, first, second)
            exprs[column] = (pl.col(column) * (1.0 + scale * z)).alias(column)
    return exprs


def _noisy_dimensions(lf: pl.LazyFrame, first: int, second: int, scale: float) -> pl.LazyFrame:
    """``lf`` with :func:`_noisy` applied to each inspection dimension's ``value``, keyed by the
    event id and the dimension's index; names, units, list lengths and row order are kept."""
    columns = lf.collect_schema().names()
    rows = lf.with_row_index("_row")
    values = (
        rows.select("_row", "event_id", "dimensions")
        .with_columns(pl.int_ranges(pl.col("dimensions").list.len()).alias("_index"))
        .explode("dimensions", "_index")
        .drop_nulls("_index")
        .unnest("dimensions")
        .with_columns(
            _noisy(
                pl.col("value"),
                scale * pl.col("value"),
                pl.struct("event_id", "_index"),
                first,
                second,
            )
        )
        .sort("_row", "_index")
        .group_by("_row", maintain_order=True)
        .agg(pl.struct("name", "value", "unit").alias("_noisy"))
    )
    joined = rows.join(values, on="_row", how="left").sort("_row")
    return joined.with_columns(pl.coalesce("_noisy", "dimensions").alias("dimensions")).select(
        columns
    )


def deidentify(
    lf: pl.LazyFrame,
    kind: str,
    contract: Contract,
    pseudonymiser: Pseudonymiser,
    spans: pl.DataFrame | None = None,
) -> pl.LazyFrame:
    """One tenant's rows of ``kind`` as the contract shares them (rows already filtered).

    Identifier columns the contract names become pseudonyms; ``event_id`` always does (it is
    producer-chosen and may embed names); ``kafka_topic`` (it names the tenant), ``content_hash``
    (a hash of the raw payload would confirm guesses of values under noise), free text and the
    contract's confidential columns become null. Columns keep their names and types, so the
    feature jobs run unchanged. ``spans``: see :func:`perturb`.
    """
    lf = perturb(lf, kind, contract, pseudonymiser, spans)
    schema = lf.collect_schema()
    exprs: list[pl.Expr] = [pseudonymiser.expr("event_id")]
    for column in contract.pseudonymise:
        if column in schema:
            exprs.append(pseudonymiser.expr(column))
    if "machine" in contract.pseudonymise and "machines" in schema:
        exprs.append(pseudonymiser.machines_list_expr())
    for column in ("kafka_topic", "content_hash", *contract.emptied_columns(kind)):
        if column in schema:
            exprs.append(pl.lit(None, dtype=schema[column]).alias(column))
    return lf.with_columns(exprs)


def time_shifts(
    machines: pl.DataFrame, contract: Contract, pseudonymiser: Pseudonymiser
) -> pl.DataFrame:
    """The time shift :func:`perturb` gives each plant of the contract's tenant: ``tenant``,
    ``plant`` (named as in the de-identified rows) and ``shift_us`` (Int64, 0 when the contract
    shifts nothing). Held in memory for the job's pinned split cuts only, never published."""
    plants = machines.filter(pl.col("tenant") == contract.tenant).select("tenant", "plant")
    plants = plants.unique().sort("tenant", "plant")
    bound = contract.time_shift_days
    shifts = [
        pseudonymiser.shift_seconds((t, p), bound) * 1_000_000 if bound > 0 else 0
        for t, p in plants.iter_rows()
    ]
    named = [pseudonymiser.expr(c) for c in ("tenant", "plant") if c in contract.pseudonymise]
    out = plants.with_columns(pl.Series("shift_us", shifts, dtype=pl.Int64))
    return out.with_columns(named) if named else out


def deidentify_machines(
    machines: pl.DataFrame, contract: Contract, pseudonymiser: Pseudonymiser
) -> pl.DataFrame:
    """The registry's machines of the contract's tenant, named as in its de-identified rows."""
    exprs = [pseudonymiser.expr(c) for c in contract.pseudonymise if c in machines.columns]
    rows = machines.filter(pl.col("tenant") == contract.tenant)
    return rows.with_columns(exprs) if exprs else rows
