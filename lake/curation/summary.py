"""A dataset version in a dozen lines: what ``maxlake datasets show`` and ``make demo`` print.

The manifest is the whole record (hundreds of lines for a wide set); the summary says what a
reader decides on: status and quality, sources, rows and label balance per split, each failed
check and each warning (in the words of :func:`lake.curation.warnings.warning_lines`, the same
lines ``datasets build`` and ``make demo`` print), the split cut instants, the feature count and
the content hash.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from lake.curation.manifest import Manifest
from lake.curation.schema_change import schema_change_lines
from lake.curation.warnings import warning_lines

__all__ = ["one_line", "rows_line", "summary_lines"]

_LABEL_VALUES_SHOWN = 6
_SPLIT_ORDER = ("train", "validation", "test", "score")


def summary_lines(manifest: Manifest) -> list[str]:
    """The summary of ``manifest`` as lines (no trailing newlines)."""
    m = manifest
    quality = "passed" if m.quality_passed else "FAILED (" + ", ".join(m.quality_failed) + ")"
    warnings = m.quality.get("warnings") or []
    if warnings:
        quality += f"; {len(warnings)} warning(s): " + ", ".join(_short(warnings))
    status = f"{m.status} ({m.status_reason})" if m.status_reason else m.status
    lines = [
        f"{m.name}@v{m.version}  {status}",
        f"  quality    {quality}",
        f"  job        {m.job}  (built {m.created_at}"
        + (f" in {m.quality['build_seconds']} s)" if "build_seconds" in m.quality else ")"),
    ]
    purpose = m.spec.get("purpose")
    if purpose:
        lines.append(f"  purpose    {purpose}")
    sources = ", ".join(
        f"{s.table}@v{s.version} ({s.rows:,} rows)" if s.version is not None else f"{s.table} -"
        for s in m.sources.values()
    )
    lines.append(f"  sources    {sources}")
    units = {
        str(c["column"]): str(c["unit"])
        for c in m.label_contracts
        if c.get("column") and c.get("unit")
    }
    null_splits = {
        str(c.get("column")): list(c.get("null_splits") or ()) for c in m.label_contracts
    }
    for i, (name, split) in enumerate(m.splits.items()):
        head = "  splits     " if i == 0 else "             "
        labels = "; ".join(
            f"{col} null by design in {name} ({split.rows:,} rows)"
            if name in null_splits.get(col, ())
            else f"{col} {_distribution(d, units.get(col))}"
            for col, d in split.labels.items()
        )
        lines.append(f"{head}{name:<11}{split.rows:>10,} rows  {labels}".rstrip())
    unit = m.job_meta.get("row_unit")
    if unit:
        lines.append(f"  rows are   {unit}")
    advisory = tuple(f"{w}: " for w in warnings)
    for detail in m.quality.get("details") or []:
        if not str(detail).startswith(advisory):
            lines.append(f"  check      {detail}")
    for line in warning_lines(m):
        lines.append(f"  warning    {line}")
    cuts = m.job_meta.get("cuts")
    pinned = " (pinned, lake time)" if m.job_meta.get("cuts_pinned") else ""
    if isinstance(cuts, Mapping) and cuts:
        lines.append("  cuts       " + ", ".join(f"{k} {v}" for k, v in cuts.items()) + pinned)
    for unit in ("line", "plant"):
        by = m.job_meta.get(f"cuts_by_{unit}")
        if isinstance(by, list) and by:
            lines.append(f"  cuts       per {unit} ({len(by)} {unit}s; --json for each){pinned}")
    lines.append(
        f"  features   {len(m.features)}   keys {', '.join(m.key_columns)}"
        f"   labels {', '.join(m.label_columns) or '-'}"
    )
    for i, line in enumerate(schema_change_lines(m.schema_change, m.name)):
        lines.append(("  schema     " if i == 0 else "             ") + line)
    if m.contracts:
        contracts = ", ".join(f"{c.get('id')} v{c.get('version')}" for c in m.contracts)
        lines.append(f"  contracts  {contracts}")
    elif not m.enforced:
        lines.append("  contracts  none (built without sharing contracts: not served)")
    lines.append(f"  content    sha256 {m.content_hash}")
    return lines


def one_line(manifest: Manifest) -> str:
    """``name@vN: train 1,234, validation 250, test 260 <row unit>`` (what a row is, from the
    job's ``job_meta.row_unit``; ``rows`` when the job does not say), plus the quality verdict
    when it failed, the number of warnings (``1 warning``; each in words:
    :func:`lake.curation.warnings.warning_lines`) and a feature-schema change against the
    previous version (``schema changed since v1: +168/-0 feature columns``)."""
    m = manifest
    unit = str(m.job_meta.get("row_unit") or "rows")
    order = {name: i for i, name in enumerate(_SPLIT_ORDER)}
    names = sorted(m.splits, key=lambda name: (order.get(name, len(order)), name))
    splits = ", ".join(f"{name} {m.splits[name].rows:,}" for name in names)
    failed = "" if m.quality_passed else f"  quality FAILED ({', '.join(m.quality_failed)})"
    count = len(m.quality.get("warnings") or [])
    warned = f"  {count} warning{'s' if count > 1 else ''}" if count else ""
    change = m.schema_change or {}
    schema = (
        f"  schema changed since v{change.get('previous_version')}: "
        f"+{len(change.get('added', []))}/-{len(change.get('removed', []))} feature columns"
        if change.get("changed")
        else ""
    )
    return f"{m.name}@v{m.version}: {splits} {unit}{failed}{warned}{schema}"


def _distribution(dist: Mapping[str, Any], unit: str | None = None) -> str:
    """Counts per value, or ``[min .. max unit, mean m unit]`` to about 3 significant digits
    (the manifest keeps the exact figures)."""
    counts = dist.get("counts")
    nulls = int(dist.get("nulls", 0) or 0)
    if isinstance(counts, Mapping):
        items = list(counts.items())
        shown = ", ".join(f"{k}: {v:,}" for k, v in items[:_LABEL_VALUES_SHOWN])
        hidden = len(items) - _LABEL_VALUES_SHOWN
        more = f", +{hidden} more" if hidden > 0 else ""
        text = "{" + shown + more + "}"
    else:
        after = f" {unit}" if unit else ""
        low, high, mean = (_number(dist.get(k)) for k in ("min", "max", "mean"))
        text = f"[{low} .. {high}{after}, mean {mean}{after}]"
    return text + (f" nulls {nulls:,}" if nulls else "")


def _number(value: Any) -> str:
    """An integer with thousands separators; a float to about 3 significant digits."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    decimals = max(0, 2 - math.floor(math.log10(abs(value))))
    return f"{value:,.{decimals}f}"


def _short(names: list[Any], limit: int = 4) -> list[str]:
    out = [str(n) for n in names[:limit]]
    return [*out, f"+{len(names) - limit} more"] if len(names) > limit else out


def rows_line(manifest: Manifest) -> str | None:
    """``rows are <row unit> (train 1,234, validation 250, test 260)`` (the job's
    ``job_meta.row_unit``, splits in train/validation/test order), or None when the job does
    not say what a row is."""
    unit = manifest.job_meta.get("row_unit")
    if not unit:
        return None
    order = {name: i for i, name in enumerate(_SPLIT_ORDER)}
    names = sorted(manifest.splits, key=lambda name: (order.get(name, len(order)), name))
    counts = ", ".join(f"{name} {manifest.splits[name].rows:,}" for name in names)
    return f"rows are {unit} ({counts})"
