"""Gateway behaviour the ingest worker relies on: one GX context, aligned verdicts, errors."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from maxlake.errors import TerminalError, TransientError
from quality import RowsSchemaError, ValidationFailed, ValidationGateway
from schemas import Registry, UnknownKindError
from tests.unit.quality.rows import inspections, telemetry


def test_context_is_built_once_per_process(gateway: ValidationGateway, registry: Registry) -> None:
    context = gateway.gx_context
    other = ValidationGateway(registry)
    for _ in range(5):
        gateway.validate("telemetry", telemetry({}, {"value": -1.0}))
        other.validate("inspection", inspections({}))
    assert other.gx_context is context
    assert [ds.name for ds in context.data_sources.all().values()] == ["maxlake"]


def test_every_failing_row_is_reported_in_large_batches(gateway: ValidationGateway) -> None:
    # GX caps unexpected_list at 200 values; the index list must still be complete.
    overrides = [{"value": -1.0} if i % 3 == 0 else {} for i in range(3000)]
    verdict = gateway.validate("telemetry", telemetry(*overrides))
    expected = np.arange(3000) % 3 == 0
    assert np.array_equal(verdict.drop, expected)
    assert verdict.dropped == 1000
    assert {verdict.drop_reasons[i] for i in np.flatnonzero(expected)} == {
        ("tag_value_not_below_physical_min",)
    }


def test_chunked_tables_and_extra_columns_stay_aligned(gateway: ValidationGateway) -> None:
    rows = pa.concat_tables([telemetry({}, {"machine": "x"}), telemetry({"value": 1e9}, {})])
    assert rows.column("value").num_chunks == 2
    verdict = gateway.validate("telemetry", rows.append_column("extra", pa.array([1, 2, 3, 4])))
    assert verdict.drop.tolist() == [False, True, True, False]
    assert verdict.drop_reasons[1:3] == [("machine_known",), ("tag_value_not_above_physical_max",)]


def test_empty_batch_gives_an_empty_verdict(gateway: ValidationGateway) -> None:
    verdict = gateway.validate("telemetry", telemetry().slice(0, 0))
    assert verdict.drop.shape == (0,)
    assert verdict.drop_reasons == []
    assert verdict.failed_expectations == ()
    assert verdict.warn_counts == {"event_latency_within_1h": 0}
    assert verdict.batch_results["bad_quality_share_at_most_5pct"].observed_value is None


def test_gx_errors_raise_transient_validation_failed(gateway: ValidationGateway) -> None:
    rows = telemetry({}, {})
    as_text = rows.set_column(
        rows.schema.get_field_index("value"), "value", pa.array(["a", "b"], pa.string())
    )
    with pytest.raises(ValidationFailed) as info:
        gateway.validate("telemetry", as_text)
    assert isinstance(info.value, TransientError)
    assert info.value.kind == "telemetry"
    assert info.value.rows == 2
    assert info.value.expectation is not None
    assert info.value.expectation.startswith("tag_value_not_")


def test_missing_columns_are_a_terminal_error(gateway: ValidationGateway) -> None:
    with pytest.raises(
        RowsSchemaError, match="lack columns the telemetry suite needs: quality, tag"
    ):
        gateway.validate("telemetry", telemetry({}).drop_columns(["tag", "quality"]))
    assert issubclass(RowsSchemaError, TerminalError)


def test_unknown_kind_lists_the_valid_ones(gateway: ValidationGateway) -> None:
    with pytest.raises(UnknownKindError, match="valid kinds: telemetry, machine_event, inspection"):
        gateway.validate("telemetri", telemetry({}))


def test_string_columns_reach_gx_as_categoricals_with_the_same_verdicts(
    gateway: ValidationGateway,
) -> None:
    from quality import _gx  # noqa: PLC0415 - the one GX wrapper, tested directly here

    rows = telemetry({}, {"machine": "ghost"}, {"unit": "furlong"}, {"unit": None}, {})
    suite = gateway._suite("telemetry")
    assert {"machine_key", "machine_type_tag", "unit", "registry_unit"} <= suite.categorical
    table = _gx_table(gateway, rows)
    plain = _gx.run_suite(suite.gx_suite, table.to_pandas(), kind="telemetry")
    frame = _gx.frame_for_gx(table, suite.categorical)
    assert str(frame["unit"].dtype) == "category"
    assert list(frame["unit"].cat.categories) == list(frame["registry_unit"].cat.categories)
    coded = _gx.run_suite(suite.gx_suite, frame, kind="telemetry")

    def rows_of(outcome: _gx.Outcome) -> list[int] | None:
        bad = outcome.unexpected_rows
        return None if bad is None else bad.tolist()

    keyed = _gx_table(gateway, rows, dictionary=suite.categorical)
    assert pa.types.is_dictionary(keyed.schema.field("machine_type_tag").type)
    assert keyed.to_pylist() == table.to_pylist()
    from_keys = _gx.run_suite(
        suite.gx_suite, _gx.frame_for_gx(keyed, suite.categorical), kind="telemetry"
    )
    for name, outcome in plain.items():
        for other in (coded, from_keys):
            assert outcome.success == other[name].success, name
            assert outcome.observed_value == other[name].observed_value, name
            assert rows_of(outcome) == rows_of(other[name]), name
    assert rows_of(plain["machine_known"]) == [1]
    assert rows_of(plain["unit_matches_registry"]) == [2]


def test_a_string_column_an_ordering_expectation_reads_stays_strings() -> None:
    from quality import _gx  # noqa: PLC0415 - the one GX wrapper, tested directly here
    from quality.suites import ExpectationSpec  # noqa: PLC0415

    def entry(name: str, expectation: str, **kwargs: object) -> ExpectationSpec:
        return ExpectationSpec(name, "drop", expectation, kwargs, description="")

    class Spec:
        expectations = (
            entry("a", "ExpectColumnValuesToBeInSet", column="tag", value_set=["x"]),
            entry("b", "ExpectColumnValuesToMatchRegex", column="tag", regex="^x"),
            entry("c", "ExpectColumnValuesToBeInSet", column="unit", value_set=["bar"]),
        )

    assert _gx.category_columns(Spec()) == frozenset({"unit"})  # type: ignore[arg-type]


def _gx_table(
    gateway: ValidationGateway, rows: pa.Table, dictionary: frozenset[str] = frozenset()
) -> pa.Table:
    from quality.enrich import derive_columns  # noqa: PLC0415

    suite = gateway._suite("telemetry")
    converted = gateway.convert_units("telemetry", rows)
    return derive_columns(
        suite.spec.kind, converted, suite.columns, gateway._index, dictionary=dictionary
    )


class _Switchable:
    """A registry source whose version the test moves on."""

    def __init__(self, *registries: Registry) -> None:
        self.registries = registries
        self.version = 1

    def snapshot(self) -> tuple[int | None, Registry]:
        return self.version, self.registries[self.version - 1]


def _narrower_spindle(registry: Registry) -> Registry:
    """``registry`` with every spindle_speed range cut to 0..100 rpm."""
    types = {
        name: mt.model_copy(
            update={
                "tags": tuple(
                    t.model_copy(update={"max": 100.0, "nominal": 50.0})
                    if t.tag == "spindle_speed"
                    else t
                    for t in mt.tags
                )
            }
        )
        for name, mt in registry.machine_types.items()
    }
    return Registry.model_validate({**registry.model_dump(), "machine_types": types})


def test_converted_rows_are_judged_like_fresh_ones_and_under_the_newest_registry(
    registry: Registry,
) -> None:
    source = _Switchable(registry, _narrower_spindle(registry))
    gateway = ValidationGateway(source)
    rows = telemetry({}, {"value": -1.0}, {"machine": "x"}, {"value": 50.0})
    converted = gateway.convert_units("telemetry", rows)
    fresh = ValidationGateway(registry).validate("telemetry", pa.table(converted.to_pydict()))
    verdict = gateway.validate("telemetry", converted)
    assert verdict.drop.tolist() == fresh.drop.tolist() == [False, True, True, False]
    assert verdict.drop_reasons == fresh.drop_reasons

    converted = gateway.convert_units("telemetry", rows)
    source.version = 2  # the live registry moves on between conversion and validation
    verdict = gateway.validate("telemetry", converted)
    assert verdict.registry_version == 2
    assert verdict.drop.tolist() == [True, True, True, False]
