"""Feature-schema changes between a set's versions: what changed, why, and how to pin it.

A set's feature columns follow the spec and the registry (every tag of the machine types the
spec selects), never the rows. So a registry change (a new machine type, a new tag) changes
the columns of the next version of every set that does not pin them, and a model retrained on
that version gets a different feature matrix. The build compares each new version's columns
with the previous published version of the same name and records the result in the manifest
(``schema_change``): the added, removed and re-united feature columns, changed label or key
columns, whether the spec changed, which registry machine types the added columns' tags belong
to, which removed tags left the registry or the spec's machine types, the registry changes
since the previous version, and how to pin the previous columns.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import polars as pl

from lake.curation.manifest import Manifest

__all__ = ["SHOWN_NAMES", "schema_change", "schema_change_lines"]

SHOWN_NAMES = 4
"""Column names quoted in a one-line summary (the manifest lists them all)."""


def schema_change(
    previous: Manifest | None,
    *,
    features: Sequence[Mapping[str, str]],
    label_columns: Sequence[str],
    key_columns: Sequence[str],
    spec_hash: str,
    registry_tags: pl.DataFrame,
    selected_types: Collection[str] | None,
    registry_version: int | None,
    registry_notes: Sequence[str] = (),
) -> dict[str, Any]:
    """The manifest's ``schema_change`` record of a new version against ``previous``.

    Args:
        previous: the newest published version of the same name (None: this is the first).
        features: the new version's features (``name``, ``unit``, ``description``).
        label_columns: the new version's label columns.
        key_columns: the new version's key columns.
        spec_hash: the new version's spec hash.
        registry_tags: every tag of every registry machine type (``machine_type``, ``tag``),
            not restricted to the spec's machine types.
        selected_types: the spec's ``filters.machine_types`` (None: every type).
        registry_version: the live registry version the build used (None: a registry file).
        registry_notes: one line per registry change since ``previous`` was built.

    Returns:
        ``{"previous_version": N, "changed": False}`` when the columns are the same (N = 0
        for a first version: the same record, so that a set's first and second published
        manifests differ in figures only); else the change (see the module docstring).
    """
    if previous is None:
        return {"previous_version": 0, "changed": False}
    before = {str(f["name"]): str(f["unit"]) for f in previous.features}
    after = {str(f["name"]): str(f["unit"]) for f in features}
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    units = [
        {"column": n, "from": before[n], "to": after[n]}
        for n in sorted(set(before) & set(after))
        if before[n] != after[n]
    ]
    labels = _changed(previous.label_columns, label_columns)
    keys = _changed(previous.key_columns, key_columns)
    record: dict[str, Any] = {"previous_version": previous.version, "changed": False}
    if not (added or removed or units or labels or keys):
        return record
    types_of = _types_of(registry_tags)
    known = sorted(types_of, key=len, reverse=True)
    added_by_type: dict[str, set[str]] = {}
    for column in added:
        tag = _tag(column, known)
        for machine_type in types_of.get(tag or "", ()):
            added_by_type.setdefault(machine_type, set()).add(str(tag))
    gone, unselected = set(), set()
    for column in removed:
        tag = _tag(column, known)
        if tag is None:
            gone.add(column.split("__", 1)[0])
        elif selected_types is not None and not set(types_of[tag]) & set(selected_types):
            unselected.add(tag)
    previous_tags = sorted({t for c in before if (t := _tag(c, known)) is not None})
    pin_types = sorted({m for t in previous_tags for m in types_of[t]})
    record.update(
        changed=True,
        added=added,
        removed=removed,
        units_changed=units,
        label_columns=labels,
        key_columns=keys,
        spec_changed=previous.spec_hash != spec_hash,
        registry_versions=[previous.registry_version, registry_version],
        added_tags_by_machine_type={m: sorted(t) for m, t in sorted(added_by_type.items())},
        removed_tags_not_in_registry=sorted(gone),
        removed_tags_of_unselected_types=sorted(unselected),
        registry_notes=list(registry_notes),
        pin={"machine_types": pin_types, "tags": previous_tags},
    )
    return record


def schema_change_lines(record: Mapping[str, Any] | None, name: str) -> list[str]:
    """The change as lines for people (``datasets build`` and ``datasets show``); ``[]`` for
    a first version or a manifest from before the comparison existed."""
    if not record or not record.get("previous_version"):
        return []
    since = f"{name}@v{record['previous_version']}"
    if not record.get("changed"):
        return [f"same feature columns as {since}"]
    added, removed = list(record.get("added", [])), list(record.get("removed", []))
    lines = [
        f"CHANGED since {since}: {len(added)} feature column(s) added{_names(added)}, "
        f"{len(removed)} removed{_names(removed)}"
    ]
    for unit in record.get("units_changed", []):
        lines.append(f"unit of {unit['column']} changed from {unit['from']} to {unit['to']}")
    for what in ("label_columns", "key_columns"):
        change = record.get(what)
        if change:
            lines.append(
                f"{what.replace('_', ' ')} changed from {change['from']} to {change['to']}"
            )
    by_type = record.get("added_tags_by_machine_type")
    causes = [
        f"the added columns are the tags of registry machine type {machine_type} "
        f"({len(tags)} tag(s): {_listed(tags)})"
        for machine_type, tags in (by_type.items() if isinstance(by_type, Mapping) else ())
    ]
    if isinstance(by_type, str) and record.get("added"):
        causes.append(
            "the added columns are registry tags the previous version did not have (the lake "
            "operators' `maxlake datasets show` names their machine types and the registry "
            "changes)"
        )
    if record.get("removed_tags_not_in_registry"):
        causes.append(
            "removed tags no longer in the registry: "
            + ", ".join(record["removed_tags_not_in_registry"])
        )
    if record.get("removed_tags_of_unselected_types"):
        causes.append(
            "removed tags of machine types the spec's filters.machine_types does not select: "
            + ", ".join(record["removed_tags_of_unselected_types"])
        )
    if record.get("spec_changed"):
        causes.append("the spec changed (spec_hash differs)")
    versions = record.get("registry_versions")
    if isinstance(versions, list) and None not in versions and versions[0] != versions[1]:
        causes.append(f"registry version {versions[0]} -> {versions[1]}")
    if not causes:
        causes.append("the registry's tags or the job changed")
    lines += [f"cause: {cause}" for cause in causes]
    notes = record.get("registry_notes")
    if isinstance(notes, list):
        lines += [f"registry change since {since}: {note}" for note in notes]
    lines.append(f"a model trained on {since} gets a different feature matrix from this version")
    pin = record.get("pin") or {}
    types, tags = pin.get("machine_types"), pin.get("tags")
    ways = []
    if isinstance(types, list) and types:
        ways.append(f"[filters] machine_types = {_toml(types)} (rows and columns of those types)")
    if isinstance(tags, list) and tags:
        ways.append(f"[job] tags = {_toml(tags)} (reference jobs)")
    if ways:
        lines.append(f"to keep {since}'s columns, pin them in the spec: " + ", or ".join(ways))
    return lines


def _changed(before: Sequence[str], after: Sequence[str]) -> dict[str, list[str]] | None:
    return None if list(before) == list(after) else {"from": list(before), "to": list(after)}


def _types_of(registry_tags: pl.DataFrame) -> dict[str, list[str]]:
    """tag -> the registry machine types that report it, sorted."""
    out: dict[str, list[str]] = {}
    for machine_type, tag in registry_tags.select("machine_type", "tag").iter_rows():
        out.setdefault(str(tag), []).append(str(machine_type))
    return {tag: sorted(set(types)) for tag, types in out.items()}


def _tag(column: str, known: Sequence[str]) -> str | None:
    """The registry tag a feature column is made of (``T30__mean``, ``T30__z``, ``T30``):
    the longest known tag it equals or starts with followed by ``__``."""
    for tag in known:
        if column == tag or column.startswith(f"{tag}__"):
            return tag
    return None


def _listed(names: Sequence[str]) -> str:
    shown = ", ".join(names[:SHOWN_NAMES])
    return shown + (f", +{len(names) - SHOWN_NAMES} more" if len(names) > SHOWN_NAMES else "")


def _names(names: Sequence[str]) -> str:
    return f" ({_listed(names)})" if names else ""


def _toml(values: Sequence[str]) -> str:
    return "[" + ", ".join(f'"{v}"' for v in values) + "]"
