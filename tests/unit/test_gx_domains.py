"""GX's verdicts are the same with the narrowed domain records, memoised metric ids and
reused metric graphs of lake/_gx_domains.py as on GX's own path, on frames built to break
them."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from lake import _gx_domains
from lake.gx_runtime import NAME_KEY, named_suite, runtime, validate
from maxlake.errors import ConfigError
from quality import ValidationGateway, Verdict
from quality._gx import RESULT_FORMAT
from schemas import EventKind, load_registry
from tests.unit.quality.rows import T0, alarm, inspections, machine_events, telemetry


def _engine() -> Any:
    runtime()
    from great_expectations.execution_engine.pandas_execution_engine import (  # noqa: PLC0415 - GX is imported lazily
        PandasExecutionEngine,
    )

    return PandasExecutionEngine


def _id_dict() -> Any:
    runtime()
    from great_expectations.core.id_dict import IDDict  # noqa: PLC0415 - GX is imported lazily

    return IDDict


_BUILD = "_generate_metric_dependency_subgraphs_for_each_expectation_configuration"


def _validator() -> Any:
    runtime()
    from great_expectations.validator.validator import Validator  # noqa: PLC0415 - GX is imported lazily

    return Validator


@contextmanager
def gx_own_path() -> Iterator[None]:
    """GX's own ``get_domain_records``, ``IDDict.to_id`` and graph building within the block."""
    engine, id_dict, validator = _engine(), _id_dict(), _validator()
    patched = engine.get_domain_records, id_dict.to_id, getattr(validator, _BUILD)
    engine.get_domain_records = patched[0].__wrapped__
    id_dict.to_id = patched[1].__wrapped__
    setattr(validator, _BUILD, patched[2].__wrapped__)
    try:
        yield
    finally:
        engine.get_domain_records, id_dict.to_id = patched[:2]
        setattr(validator, _BUILD, patched[2])


@contextmanager
def counted_graph_builds() -> Iterator[list[int]]:
    """Counts the calls of GX's own graph building (behind the reuse) within the block."""
    validator = _validator()
    patched = getattr(validator, _BUILD)
    own = patched.__wrapped__
    calls: list[int] = []

    def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return own(self, *args, **kwargs)

    setattr(validator, _BUILD, _gx_domains._reused_graphs(spy))
    _gx_domains._GRAPHS.clear()
    try:
        yield calls
    finally:
        setattr(validator, _BUILD, patched)


def _hostile(n: int, seed: int) -> pd.DataFrame:
    """Nulls in every domain column and in columns no expectation reads, all-null columns,
    categoricals with unused and missing categories, nullable ints, Arrow strings."""
    rng = np.random.default_rng(seed)
    words = np.array(["a", "b", "c", "dd", "e1", "zz"], dtype=object)

    def holes(values: Any, share: float) -> Any:
        values = pd.Series(values)
        values[rng.random(n) < share] = None
        return values

    a = holes(rng.normal(0, 2, n), 0.2).astype(float)
    b = holes(rng.normal(0, 2, n), 0.25).astype(float)
    b[: n // 4] = a[: n // 4]
    s = holes(rng.choice(words, n), 0.2).astype(object)
    cat = pd.Categorical(holes(rng.choice(words, n), 0.2), categories=[*words, "unused"])
    cat2 = pd.Categorical(
        np.where(rng.random(n) < 0.5, np.asarray(cat, dtype=object), rng.choice(words, n)),
        categories=cat.categories,
    )
    return pd.DataFrame(
        {
            "a": a,
            "b": b,
            "s": s,
            "cat": cat,
            "cat2": cat2,
            "i": pd.array(holes(rng.integers(-5, 5, n), 0.3), dtype="Int64"),
            "arrow": pd.array(holes(rng.choice(words, n), 0.3), dtype=pd.ArrowDtype(pa.string())),
            "flag": rng.integers(0, 2, n).astype(float),
            "all_null": np.full(n, np.nan),
            "all_null_obj": pd.Series([None] * n, dtype=object),
            "unread": holes(rng.normal(size=n), 0.5).astype(float),
        }
    )


def _frames() -> list[tuple[str, pd.DataFrame]]:
    frames = [("hostile", _hostile(60, 0))]
    shuffled = _hostile(60, 9).sample(frac=1.0, random_state=3)
    frames += [
        ("shuffled_index", shuffled),
        ("empty", _hostile(60, 6).iloc[:0]),
        ("all_rows_missing", _hostile(60, 7).assign(a=np.nan, b=np.nan, s=None)),
    ]
    return frames


def _every_class() -> list[tuple[str, Any]]:
    gxe = runtime().expectations
    words = ["a", "b", "c"]
    out: list[tuple[str, Any]] = [
        ("rows", gxe.ExpectTableRowCountToBeBetween(min_value=1)),
        ("s_in", gxe.ExpectColumnValuesToBeInSet(column="s", value_set=words)),
        ("cat_in", gxe.ExpectColumnValuesToBeInSet(column="cat", value_set=words)),
        ("arrow_in", gxe.ExpectColumnValuesToBeInSet(column="arrow", value_set=words)),
        ("null_in", gxe.ExpectColumnValuesToBeInSet(column="all_null_obj", value_set=words)),
        ("cat_not_in", gxe.ExpectColumnValuesToNotBeInSet(column="cat", value_set=["zz"])),
        ("a_null", gxe.ExpectColumnValuesToBeNull(column="a")),
        ("all_null_null", gxe.ExpectColumnValuesToBeNull(column="all_null")),
        ("s_not_null", gxe.ExpectColumnValuesToNotBeNull(column="s")),
        ("cat_not_null", gxe.ExpectColumnValuesToNotBeNull(column="cat")),
        ("all_null_not_null", gxe.ExpectColumnValuesToNotBeNull(column="all_null")),
        ("a_between", gxe.ExpectColumnValuesToBeBetween(column="a", min_value=-1, max_value=1)),
        ("a_mostly", gxe.ExpectColumnValuesToBeBetween(column="a", min_value=-2, mostly=0.5)),
        ("i_between", gxe.ExpectColumnValuesToBeBetween(column="i", min_value=0)),
        ("null_between", gxe.ExpectColumnValuesToBeBetween(column="all_null", max_value=1)),
        ("s_unique", gxe.ExpectColumnValuesToBeUnique(column="s")),
        ("cat_unique", gxe.ExpectColumnValuesToBeUnique(column="cat")),
        ("s_between", gxe.ExpectColumnValuesToBeBetween(column="s", min_value=0)),
        ("missing_in", gxe.ExpectColumnValuesToBeInSet(column="missing", value_set=words)),
        (
            "missing_eq",
            gxe.ExpectColumnPairValuesToBeEqual(
                column_A="a", column_B="missing", ignore_row_if="either_value_is_missing"
            ),
        ),
        ("s_regex", gxe.ExpectColumnValuesToMatchRegex(column="s", regex="^[a-c]$")),
        ("a_mean", gxe.ExpectColumnMeanToBeBetween(column="a", min_value=-0.5, max_value=0.5)),
        ("flag_mean", gxe.ExpectColumnMeanToBeBetween(column="flag", max_value=0.05)),
        ("null_mean", gxe.ExpectColumnMeanToBeBetween(column="all_null", max_value=1)),
        (
            "cat_count",
            gxe.ExpectColumnUniqueValueCountToBeBetween(column="cat", min_value=1, max_value=4),
        ),
        (
            "b_non_null",
            gxe.ExpectColumnProportionOfNonNullValuesToBeBetween(column="b", min_value=0.9),
        ),
        (
            "s_in_where",
            gxe.ExpectColumnValuesToBeInSet(
                column="s", value_set=words, row_condition="a > 0", condition_parser="pandas"
            ),
        ),
    ]
    pairs = ("both_values_are_missing", "either_value_is_missing", "neither")
    for ignore in pairs:
        out += [
            (
                f"cat_eq_{ignore}",
                gxe.ExpectColumnPairValuesToBeEqual(
                    column_A="cat", column_B="cat2", ignore_row_if=ignore
                ),
            ),
            (
                f"a_ge_b_{ignore}",
                gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                    column_A="a", column_B="b", or_equal=True, ignore_row_if=ignore
                ),
            ),
            (
                f"b_gt_a_{ignore}",
                gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                    column_A="b", column_B="a", ignore_row_if=ignore
                ),
            ),
            (
                f"a_ge_all_null_{ignore}",
                gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                    column_A="a", column_B="all_null", or_equal=True, ignore_row_if=ignore
                ),
            ),
            (
                f"s_eq_s_{ignore}",
                gxe.ExpectColumnPairValuesToBeEqual(
                    column_A="s", column_B="s", ignore_row_if=ignore
                ),
            ),
        ]
    for ignore in ("all_values_are_missing", "any_value_is_missing", "never"):
        out.append(
            (
                f"s_cat_unique_{ignore}",
                gxe.ExpectCompoundColumnsToBeUnique(column_list=["s", "cat"], ignore_row_if=ignore),
            )
        )
    return out


def _results(suite: Any, frame: pd.DataFrame, result_format: Mapping[str, Any]) -> dict[str, Any]:
    """Per entry: GX's success, its whole result as JSON, and the exceptions it recorded."""
    out = {}
    for r in validate(suite, frame, result_format=result_format):
        info = r.exception_info or {}
        records = [info] if "raised_exception" in info else list(info.values())
        raised = sorted(
            (bool(x.get("raised_exception")), str(x.get("exception_message")))
            for x in records
            if isinstance(x, dict)
        )
        result = json.dumps(r.to_json_dict()["result"], sort_keys=True, default=str)
        out[r.expectation_config.meta[NAME_KEY]] = (r.success, result, raised)
    return out


@pytest.mark.parametrize(
    ("result_format", "frames"),
    [(RESULT_FORMAT, _frames()), ({"result_format": "SUMMARY"}, _frames()[:1])],
    ids=["COMPLETE", "SUMMARY"],
)
def test_every_narrowed_class_gives_gx_own_verdicts_on_hostile_frames(
    result_format: dict[str, Any], frames: list[tuple[str, pd.DataFrame]]
) -> None:
    """COMPLETE (ingest) on every frame, SUMMARY (the output checks of curated datasets) on
    the first."""
    suite = named_suite("hostile", _every_class())
    assert _gx_domains.narrowable(suite, result_format)
    assert {type(e).__name__ for e in suite.expectations} == _gx_domains.NARROW_SAFE
    for name, frame in frames:
        narrowed = _results(suite, frame, result_format)
        with gx_own_path():
            own = _results(suite, frame, result_format)
        assert narrowed.keys() == own.keys()
        for entry, outcome in own.items():
            assert narrowed[entry] == outcome, (name, entry)


def test_a_reused_graph_gives_gx_own_verdicts_on_every_frame_after_any_other() -> None:
    """The graph built on one frame (empty, all missing, shuffled, hostile) judges every other
    frame as GX's freshly built graph does, in both result formats."""
    frames = [*_frames(), ("hostile_2", _hostile(80, 11)), ("hostile_3", _hostile(7, 12))]
    suite = named_suite("hostile", _every_class())
    for result_format, starts in ((RESULT_FORMAT, (0, 2, 3)), ({"result_format": "SUMMARY"}, (2,))):
        own = {}
        with gx_own_path():
            for name, frame in frames:
                own[name] = _results(suite, frame, result_format)
        for first in starts:
            order = frames[first:] + frames[:first]
            with counted_graph_builds() as builds:
                for name, frame in order:
                    assert _results(suite, frame, result_format) == own[name], (first, name)
            assert len(builds) == 1


def test_the_graph_is_built_once_per_suite_content() -> None:
    gxe = runtime().expectations
    frame = _hostile(60, 4)

    def suite(words: list[str]) -> Any:
        return named_suite(
            "content",
            [
                ("s_in", gxe.ExpectColumnValuesToBeInSet(column="s", value_set=words)),
                ("a_mean", gxe.ExpectColumnMeanToBeBetween(column="a", max_value=0.5)),
            ],
        )

    first, same, other = suite(["a", "b"]), suite(["a", "b"]), suite(["a", "zz"])
    with counted_graph_builds() as builds:
        results = [_results(s, frame, RESULT_FORMAT) for s in (first, same, first, other)]
        assert len(builds) == 2
        _results(first, frame, {"result_format": "SUMMARY"})
        assert len(builds) == 3
        first.expectations[0].value_set = ["zz"]
        changed = _results(first, frame, RESULT_FORMAT)
        assert len(builds) == 4
    with gx_own_path():
        assert results[0] == results[1] == results[2] == _results(same, frame, RESULT_FORMAT)
        assert results[3] == _results(other, frame, RESULT_FORMAT)
        assert changed == _results(first, frame, RESULT_FORMAT)
    assert results[3] != results[0]
    assert changed != results[0]


def test_other_classes_build_their_graph_every_time() -> None:
    gxe = runtime().expectations
    other = named_suite(
        "other", [("len", gxe.ExpectColumnValueLengthsToBeBetween(column="s", max_value=1))]
    )
    with counted_graph_builds() as builds:
        for _ in range(2):
            validate(other, _hostile(60, 2), result_format=RESULT_FORMAT)
    assert len(builds) == 2


def test_the_hostile_frames_do_fail_rows_and_raise() -> None:
    """The comparison above is not between two empty answers."""
    results = _results(named_suite("hostile", _every_class()), _hostile(60, 0), RESULT_FORMAT)
    failing = [
        e for e, (_, result, _) in results.items() if json.loads(result).get("unexpected_count")
    ]
    assert len(failing) >= 15
    raised = {e for e, (_, _, r) in results.items() if any(flag for flag, _ in r)}
    assert {"s_between", "missing_in", "missing_eq"} <= raised


def test_the_domain_records_are_narrowed_once_per_domain(monkeypatch: Any) -> None:
    engine = _engine()
    own = engine.get_domain_records.__wrapped__
    asked: list[dict[str, Any]] = []
    widths: list[int] = []

    def spy(self: Any, domain_kwargs: dict[str, Any]) -> Any:
        asked.append(dict(domain_kwargs))
        return own(self, domain_kwargs)

    narrowed = _gx_domains._narrow_domain_records(spy)

    def measured(self: Any, domain_kwargs: dict[str, Any]) -> Any:
        frame = narrowed(self, domain_kwargs)
        if {"column", "column_A", "column_list"} & domain_kwargs.keys():
            widths.append(frame.shape[1])
        return frame

    monkeypatch.setattr(engine, "get_domain_records", measured)
    gxe = runtime().expectations
    suite = named_suite(
        "narrow",
        [
            ("s_in", gxe.ExpectColumnValuesToBeInSet(column="s", value_set=["a"])),
            (
                "a_ge_b",
                gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                    column_A="a", column_B="b", ignore_row_if="either_value_is_missing"
                ),
            ),
        ],
    )
    validate(suite, _hostile(60, 1), result_format=RESULT_FORMAT)
    assert widths
    assert set(widths) <= {1, 2}
    assert not any({"column", "column_A", "column_list"} & kw.keys() for kw in asked)
    assert len(asked) < len(widths)


def test_row_results_and_other_classes_take_gx_own_path() -> None:
    gxe = runtime().expectations
    safe = named_suite(
        "safe", [("s_in", gxe.ExpectColumnValuesToBeInSet(column="s", value_set=["a"]))]
    )
    other = named_suite(
        "other", [("len", gxe.ExpectColumnValueLengthsToBeBetween(column="s", max_value=1))]
    )
    assert _gx_domains.narrowable(safe, RESULT_FORMAT)
    assert not _gx_domains.narrowable(other, RESULT_FORMAT)

    class ExpectColumnValuesToBeInSet(gxe.ExpectColumnValuesToBeInSet):  # type: ignore[misc, name-defined]
        pass

    lookalike = named_suite(
        "lookalike", [("s_in", ExpectColumnValuesToBeInSet(column="s", value_set=["a"]))]
    )
    assert not _gx_domains.narrowable(lookalike, RESULT_FORMAT)
    for fmt in (
        {"result_format": "COMPLETE", "include_unexpected_rows": True},
        {"result_format": "COMPLETE", "unexpected_index_column_names": ["unread"]},
    ):
        assert not _gx_domains.narrowable(safe, fmt)
        frame = _hostile(60, 2)
        results = _results(safe, frame, fmt)
        with gx_own_path():
            assert results == _results(safe, frame, fmt)
        assert "unread" in results["s_in"][1]


@pytest.mark.parametrize(
    "content",
    [
        {"a": 1},
        {"a": 1.0},
        {"a": True},
        {"a": "1"},
        {"a": -0.0},
        {"a": float("nan")},
        {"a": None},
        {"a": [1, 2]},
        {"a": (1, 2)},
        {"b": 2, "a": 1},
        {"a": 1, "b": 2},
        {"a": {"y": 1, "x": [None, "s", 2.5]}},
        {"a": {"x": [None, "s", 2.5], "y": 1}},
        {"value_set": ["m1", "m2"], "result_format": {"result_format": "COMPLETE"}},
        {"a": np.int64(1), "b": 1},
        {"a": {1, 2}, "b": 1},
        {"a": pd.Timestamp("2026-01-01"), "b": 1},
    ],
    ids=repr,
)
def test_metric_ids_are_gx_own(content: dict[str, Any]) -> None:
    id_dict = _id_dict()
    own = id_dict.to_id.__wrapped__
    with _gx_domains.narrowed(domains=False):
        first, again = id_dict(content).to_id(), id_dict(content).to_id()
    assert first == again == own(id_dict(content))


def test_metric_ids_of_equal_values_of_other_types_stay_apart() -> None:
    id_dict = _id_dict()
    with _gx_domains.narrowed(domains=False):
        ids = [id_dict({"a": v, "b": 0}).to_id() for v in (1, 1.0, True, "1")]
    assert len(set(ids)) == 4


def test_a_changed_gx_function_fails_loudly(monkeypatch: Any) -> None:
    engine = _engine()
    name = (
        "great_expectations.execution_engine.pandas_execution_engine."
        "PandasExecutionEngine.get_domain_records"
    )
    monkeypatch.setitem(_gx_domains.FINGERPRINTS, name, "0" * 64)
    with pytest.raises(ConfigError, match=r"changed .*get_domain_records.*1\.24\.1"):
        _gx_domains._check_fingerprint(engine.get_domain_records.__wrapped__)


def _verdict_fields(verdict: Verdict) -> tuple[Any, ...]:
    return (
        verdict.drop.tolist(),
        verdict.drop_reasons,
        verdict.drop_explained,
        verdict.warn_counts,
        verdict.batch_results,
        verdict.failed_expectations,
    )


def _hostile_batches() -> list[tuple[str, pa.Table]]:
    ghost = {"machine": "ghost"}
    return [
        (
            "telemetry",
            telemetry(
                {},
                ghost,
                {"tag": "no_such_tag"},
                {"unit": None},
                {"unit": "furlongs"},
                {"unit": "Hz"},
                {"value": -1.0},
                {"value": 1e9},
                {"value": float("nan")},
                {"quality": "BAD"},
                {"sent_time": None},
                {"sent_time": T0 + pd.Timedelta(hours=3)},
                {**ghost, "unit": None, "value": -5.0},
                {"tag": "no_such_tag", "unit": None},
            ),
        ),
        ("telemetry", telemetry(*[{"machine": "ghost", "unit": None}] * 3)),
        (
            "machine_event",
            machine_events(
                {},
                ghost,
                alarm("NOPE", 2),
                alarm("NOPE", 2, machine="ghost"),
                {"event_type": "ALARM", "state": None, "alarm_code": None},
                {"event_type": "STATE", "state": None},
            ),
        ),
        (
            "inspection",
            inspections(
                {},
                {"machines": ["ghost"]},
                {"machines": []},
                {"result": "FAIL", "defect_codes": []},
                {"result": "FAIL", "defect_codes": ["NOPE", "BURR"]},
                {"process_start": T0 - pd.Timedelta(days=3)},
                {"dimensions": []},
                {"dimensions": [{"name": "bore", "value": 1e6, "unit": "furlongs"}]},
            ),
        ),
    ]


def test_the_bundled_suites_give_the_same_verdicts_on_hostile_batches() -> None:
    gateway = ValidationGateway(load_registry())
    for kind, rows in _hostile_batches():
        narrowed = gateway.validate(kind, gateway.convert_units(kind, rows))
        with gx_own_path():
            own = gateway.validate(kind, gateway.convert_units(kind, rows))
        assert _verdict_fields(narrowed) == _verdict_fields(own), kind
        assert narrowed.dropped or narrowed.warn_counts, kind


def test_the_bundled_suites_give_the_same_verdicts_with_a_reused_graph() -> None:
    """Batches of one kind in a row, each judged on the graph kept from the ones before; every
    drop expectation of the telemetry suite fails on some row."""
    gateway = ValidationGateway(load_registry())
    batches = _hostile_batches()
    batches += [(kind, rows.slice(1)) for kind, rows in batches]
    batches += [(kind, rows.take([0])) for kind, rows in batches[:4]]
    own = []
    with gx_own_path():
        for kind, rows in batches:
            own.append(_verdict_fields(gateway.validate(kind, gateway.convert_units(kind, rows))))
    with counted_graph_builds() as builds:
        for (kind, rows), expected in zip(batches, own, strict=True):
            verdict = gateway.validate(kind, gateway.convert_units(kind, rows))
            assert _verdict_fields(verdict) == expected, kind
    assert len(builds) == 3
    telemetry_suite = gateway.suites[EventKind.TELEMETRY]
    failed = {name for v in own[:2] for name in v[5]}
    assert {e.name for e in telemetry_suite.expectations if e.level != "batch"} <= failed


def test_a_changed_gx_function_leaves_gx_unpatched_and_validation_going(
    monkeypatch: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A GX upgrade that changed a patched function must not stop a worker's validation."""
    from great_expectations.execution_engine.pandas_execution_engine import (  # noqa: PLC0415
        PandasExecutionEngine,
    )

    _engine()
    original = PandasExecutionEngine.get_domain_records
    unpatched = getattr(original, "__wrapped__", original)
    monkeypatch.setattr(PandasExecutionEngine, "get_domain_records", unpatched)
    name = (
        "great_expectations.execution_engine.pandas_execution_engine."
        "PandasExecutionEngine.get_domain_records"
    )
    monkeypatch.setitem(_gx_domains.FINGERPRINTS, name, "0" * 64)
    monkeypatch.setattr(_gx_domains, "_STATE_UNPATCHED", [])
    with caplog.at_level(logging.WARNING, logger="lake._gx_domains"):
        assert _gx_domains.install() is False
        assert _gx_domains.install() is False
    assert PandasExecutionEngine.get_domain_records is unpatched
    warnings = [r.getMessage() for r in caplog.records if r.name == "lake._gx_domains"]
    assert len(warnings) == 1
    assert "get_domain_records" in warnings[0]
    assert "GX's own, slower path" in warnings[0]
