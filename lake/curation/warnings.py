"""A version's advisory output-check warnings in words: what failed, on which data, what to do.

The manifest names each failed advisory check by its id (``split_label_classes:validation:
failure_within_h``, ``feature_not_all_null:spindle_temp__mean``); these lines say what it means
for a data engineer and end with the id in brackets, so a line can still be found with grep in
the manifest and in ``datasets show``. A warning never stops a build: the version is published
as it is.

Every warning is shown: the many ``feature_not_all_null`` ones of one registry tag (a tag gives
several columns, ``<tag>__mean``, ``<tag>__std``, ...) are grouped into one line per set that
names every tag and counts its columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lake.curation.manifest import Manifest

__all__ = ["warning_lines"]


def warning_lines(manifest: Manifest) -> list[str]:
    """One line per failed advisory output check of ``manifest``, the all-null feature columns
    grouped into one line.

    Reads ``manifest.quality`` (``warnings``: the failed advisory check ids; ``results``: each
    check's record with its ``observed_value`` and ``detail``) and what a row of the set is
    (``job_meta.row_unit``, for the counts).

    Returns:
        Lines without a ``warning:`` prefix, in the order of the warnings; empty when there
        are none.
    """
    quality = manifest.quality
    row_unit = str(manifest.job_meta.get("row_unit") or "rows")
    names = [str(w) for w in quality.get("warnings") or []]
    results = {str(r.get("name")): r for r in quality.get("results") or [] if isinstance(r, dict)}
    lines: list[str] = []
    null_features = [n.split(":", 1)[1] for n in names if n.startswith("feature_not_all_null:")]
    grouped = False
    for name in names:
        check, _, subject = name.partition(":")
        observed = results.get(name, {}).get("observed_value")
        if check == "feature_not_all_null":
            if not grouped:
                lines.append(_null_features(null_features))
                grouped = True
        elif check == "split_label_classes":
            lines.append(_one_class(subject, observed, row_unit, name))
        elif check == "label_balance":
            lines.append(_imbalance(subject, observed, name))
        else:
            detail = str(results.get(name, {}).get("detail") or "failed (advisory, published)")
            lines.append(f"{detail} [{name}]")
    return lines


def _one_class(subject: str, observed: Any, row_unit: str, name: str) -> str:
    split, _, label = subject.partition(":")
    counts = _counts(observed)
    if len(counts) == 1:
        (value, n), *_ = counts.items()
        held = f"all {n:,} {row_unit} are {value}"
    else:
        held = ", ".join(f"{value}: {n:,} {row_unit}" for value, n in counts.items()) or "none"
    return (
        f"the {split} split has {'a single class' if len(counts) == 1 else 'too few classes'} "
        f"of the label {label} ({held}): "
        f"metrics that need both classes (AUC, recall, F1) cannot be computed on {split}; "
        "build it again once the lake holds more data (more of the missing class), or move "
        "the split "
        f"cuts [{name}]"
    )


def _imbalance(label: str, observed: Any, name: str) -> str:
    shares = _counts(observed, share=True)
    shown = ", ".join(f"{value} {share:.1%}" for value, share in shares.items())
    return (
        f"the label {label} is imbalanced ({shown} of the labelled rows), below the job's "
        "minimum class share: weight or resample the classes when training, and judge models "
        f"by recall or AUC rather than accuracy [{name}]"
    )


def _null_features(columns: Sequence[str]) -> str:
    by_tag: dict[str, int] = {}
    for column in columns:
        tag = column.split("__", 1)[0]
        by_tag[tag] = by_tag.get(tag, 0) + 1
    shown = ", ".join(f"{tag} ({n} column{'s' if n > 1 else ''})" for tag, n in by_tag.items())
    first = columns[0]
    return (
        f"{len(columns)} feature column{'s are' if len(columns) > 1 else ' is'} null in every "
        f"row of every split: {shown}; no machine of the set sent a reading of "
        f"{'these tags' if len(by_tag) > 1 else 'this tag'} in the data read (a tag of "
        "machine types the set's machines are not, as when the lake holds one company, a tag "
        "just added to the registry, or one the contracts do not share). Published as they "
        "are: "
        "list the spec's [job] tags to leave them out, or build again once readings arrive "
        f"[feature_not_all_null:{first}" + (", ...]" if len(columns) > 1 else "]")
    )


def _counts(observed: Any, *, share: bool = False) -> dict[str, Any]:
    if not isinstance(observed, Mapping):
        return {}
    out: dict[str, Any] = {}
    for value, count in observed.items():
        if isinstance(count, int | float) and not isinstance(count, bool):
            out[str(value)] = float(count) if share else int(count)
    return out
