"""Great Expectations Data Docs of recent data, built on demand (never per batch).

The worker validates with plain suites and keeps its own summaries in ``ops/validation_runs``;
rendering Data Docs there would cost far more than the validation itself. When someone wants
GX's HTML view, :func:`build_data_docs` takes the most recent rows of each kind — the newest
silver rows and the newest quarantined messages that reached validation (decoded again from
their raw bytes) — validates them with the current suite in an ephemeral GX context of its own,
through a checkpoint whose only action renders a filesystem Data Docs site, and returns the
site's ``index.html``. Each run adds one validation result per kind to the site.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from lake import DeltaStore, LakeLocation, quarantine_table, silver_table
from lake.gx_runtime import runtime
from quality import _gx
from quality.enrich import RegistryIndex, derive_columns
from quality.suites import SuiteSpec, load_suites
from schemas import EventKind, Registry, event_schema_for, load_registry

__all__ = ["SITE_NAME", "build_data_docs", "recent_rows"]

logger = logging.getLogger(__name__)

SITE_NAME = "maxlake"
_RECENT_DAYS = 7


def _newest(
    store: DeltaStore, name: str, columns: list[str], flt: ds.Expression, order: str, n: int
) -> pa.Table | None:
    rows = store.read(name, columns=columns, filter=flt)
    if rows is None or rows.num_rows <= n:
        return rows
    return rows.sort_by([(order, "descending")]).slice(0, n)


def recent_rows(store: DeltaStore, kind: EventKind, n: int) -> pa.Table:
    """Up to ``n`` newest silver rows plus up to ``n`` newest rows of quarantined messages
    (stage ``validate``, decoded again) of ``kind``, in the event schema's row schema."""
    event_schema = event_schema_for(kind)
    names = [c for c in event_schema.row_schema.names if c != "_msg"]
    since = pa.scalar(date.today() - timedelta(days=_RECENT_DAYS), pa.date32())
    parts: list[pa.Table] = []
    silver = _newest(
        store,
        silver_table(kind),
        [*names, "ingested_at"],
        ds.field("date") >= since,
        "ingested_at",
        n,
    )
    if silver is not None:
        parts.append(silver.select(names))
    flt = (ds.field("date") >= since) & (ds.field("stage") == "validate")
    quarantined = _newest(
        store, quarantine_table(kind), ["tenant", "raw", "quarantined_at"], flt, "quarantined_at", n
    )
    if quarantined is not None:
        rows = quarantined
        now = datetime.now(UTC)
        for tenant in sorted(set(rows["tenant"].to_pylist())):
            mine = rows.filter(pc.equal(rows["tenant"], tenant))
            decoded = event_schema.decode(mine["raw"].to_pylist(), tenant=tenant, now=now).rows
            if decoded.num_rows:
                parts.append(decoded.select(names))
    if not parts:
        return event_schema.row_schema.empty_table().select(names)
    return pa.concat_tables(parts, promote_options="permissive")


def build_data_docs(
    lake_root: str | Path | LakeLocation,
    out_dir: Path,
    *,
    kinds: Sequence[EventKind] = tuple(EventKind),
    rows: int = 5000,
    registry: Registry | None = None,
    suites_dir: Path | None = None,
) -> Path:
    """Validate recent rows of each kind and render GX Data Docs under ``out_dir``.

    Args:
        lake_root: the lake to read from (a path, URI or location with storage options).
        out_dir: the Data Docs site folder (created; earlier runs' pages are kept).
        kinds: event kinds to include (kinds without recent rows are skipped).
        rows: newest silver rows and newest quarantined messages per kind.
        registry: asset registry for placeholders and derived columns (default: packaged).
        suites_dir: suites folder (default: packaged).

    Returns:
        The site's ``index.html``.
    """
    registry = registry or load_registry()
    index = RegistryIndex(registry)
    specs = load_suites(suites_dir)
    gx = runtime().gx
    from great_expectations.checkpoint.actions import UpdateDataDocsAction  # noqa: PLC0415 - lazy: GX takes seconds to import
    from great_expectations.data_context.types.base import ProgressBarsConfig  # noqa: PLC0415 - lazy: GX takes seconds to import

    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    context.add_data_docs_site(
        site_name=SITE_NAME,
        site_config={
            "class_name": "SiteBuilder",
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(out_dir),
            },
        },
    )
    asset = context.data_sources.add_pandas("maxlake_docs").add_dataframe_asset("recent_rows")
    batch_definition = asset.add_batch_definition_whole_dataframe("recent")
    store = DeltaStore(lake_root)
    for kind in kinds:
        data = recent_rows(store, kind, rows)
        if data.num_rows == 0:
            logger.info("no recent %s rows: skipped in Data Docs", kind.value)
            continue
        spec: SuiteSpec = specs[kind]
        suite = context.suites.add(_gx.build_suite(spec, index.placeholders))
        frame = derive_columns(kind, data, spec.columns(), index).to_pandas()
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=f"recent_{kind.value}", data=batch_definition, suite=suite)
        )
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name=f"docs_{kind.value}",
                validation_definitions=[definition],
                actions=[UpdateDataDocsAction(name="data_docs", site_names=[SITE_NAME])],
                result_format={"result_format": "SUMMARY"},
            )
        )
        checkpoint.run(batch_parameters={"dataframe": frame})
        logger.info("Data Docs: validated %s recent %s rows", f"{data.num_rows:,}", kind.value)
    context.build_data_docs(site_names=[SITE_NAME])
    return out_dir / "index.html"
