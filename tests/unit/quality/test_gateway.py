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
