"""Registry documents as flat entries: merging a partial document, diffing two versions.

A registry document is flattened into one entry per identified thing, keyed by the path of
``(collection, id)`` pairs, e.g. ``("tenants", "acme", "plants", "p1", "lines", "l1",
"machines", "m1")`` -> ``{"machine_type": "press"}``. Merging a partial document updates or adds
entries (it never removes); a diff lists the entries added, removed and changed. A change that
re-types existing rows (a tag's unit, a machine's type) is flagged as a *re-type*: the registry
store refuses it unless the change carries a migration note.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from schemas.errors import RegistryError

__all__ = ["Change", "diff_documents", "flatten", "merge_documents", "unflatten"]

Key = tuple[str, ...]
Entries = dict[Key, dict[str, Any]]

_ID_FIELD = {
    "units": "symbol",
    "tenants": "id",
    "plants": "id",
    "lines": "id",
    "machines": "id",
    "tags": "tag",
    "alarms": "code",
    "dimensions": "name",
}
_CHILDREN: Mapping[str, tuple[str, ...]] = {
    "units": (),
    "machine_types": ("tags", "alarms", "defect_codes", "dimensions"),
    "tags": (),
    "dimensions": (),
    "alarms": (),
    "defect_codes": (),
    "tenants": ("plants",),
    "plants": ("lines",),
    "lines": ("machines",),
    "machines": (),
}
_TOP = ("units", "machine_types", "tenants")
_LABEL = {
    "units": "unit",
    "machine_types": "machine type",
    "tags": "tag",
    "alarms": "alarm",
    "defect_codes": "defect code",
    "dimensions": "dimension",
    "tenants": "tenant",
    "plants": "plant",
    "lines": "line",
    "machines": "machine",
}
_RETYPING = {"tags": "unit", "machines": "machine_type"}


@dataclass(frozen=True, slots=True)
class Change:
    """One entry added (``+``), removed (``-``) or changed (``~``) between two documents.

    Attributes:
        op: ``+``, ``-`` or ``~``.
        key: the entry's flat key.
        before: its attributes before (empty for ``+``).
        after: its attributes after (empty for ``-``).
    """

    op: Literal["+", "-", "~"]
    key: Key
    before: Mapping[str, Any]
    after: Mapping[str, Any]

    @property
    def label(self) -> str:
        """E.g. ``machine acme/p1/l1/m1`` or ``tag cnc_mill/spindle_temp``."""
        return f"{_LABEL[self.key[-2]]} {'/'.join(self.key[1::2])}"

    @property
    def retypes(self) -> str | None:
        """The re-typed field (``unit`` of a tag, ``machine_type`` of a machine), or None."""
        field = _RETYPING.get(self.key[-2])
        if self.op == "~" and field and self.before.get(field) != self.after.get(field):
            return field
        return None

    def __str__(self) -> str:
        if self.op == "+":
            return f"+ {self.label} {_attrs(self.after)}".rstrip()
        if self.op == "-":
            return f"- {self.label}"
        fields = sorted(set(self.before) | set(self.after))
        moved = [
            f"{f} {self.before.get(f)!r} -> {self.after.get(f)!r}"
            for f in fields
            if self.before.get(f) != self.after.get(f)
        ]
        return f"~ {self.label}: {', '.join(moved)}"


def _attrs(values: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={v!r}" for k, v in values.items())


def flatten(doc: Mapping[str, Any], *, source: str = "<registry>") -> Entries:
    """One entry per identified thing of ``doc`` (a whole or partial registry document).

    Raises:
        RegistryError: an entry without its id, or a collection of the wrong shape.
    """
    out: Entries = {}
    unknown = sorted(set(doc) - {*_TOP, "version"})
    if unknown:
        raise RegistryError(source, unknown[0], f"unknown key (known: version, {', '.join(_TOP)})")
    for coll in _TOP:
        if coll in doc:
            _flatten(coll, doc[coll], (), coll, out, source)
    return out


def _flatten(coll: str, value: Any, prefix: Key, where: str, out: Entries, source: str) -> None:
    items: list[tuple[str, dict[str, Any], str]] = []
    if coll == "machine_types":
        if not isinstance(value, dict):
            raise RegistryError(source, where, "must be a table of machine types")
        items = [
            (name, _table(body, f"{where}.{name}", source), f"{where}.{name}")
            for name, body in value.items()
        ]
    elif coll == "defect_codes":
        if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
            raise RegistryError(source, where, "must be an array of strings")
        items = [(code, {}, f"{where}[{i}]") for i, code in enumerate(value)]
    else:
        if not isinstance(value, list):
            raise RegistryError(source, where, "must be an array of tables")
        id_field = _ID_FIELD[coll]
        for i, raw in enumerate(value):
            body = _table(raw, f"{where}[{i}]", source)
            ident = body.get(id_field)
            if not isinstance(ident, str) or not ident:
                raise RegistryError(
                    source, f"{where}[{i}].{id_field}", "missing (every entry needs its id)"
                )
            items.append((ident, body, f"{where}[{i}]"))
    for ident, body, loc in items:
        key = (*prefix, coll, ident)
        attrs = {
            k: v for k, v in body.items() if k not in _CHILDREN[coll] and k != _ID_FIELD.get(coll)
        }
        out[key] = {**out.get(key, {}), **attrs}
        for child in _CHILDREN[coll]:
            if child in body:
                _flatten(child, body[child], key, f"{loc}.{child}", out, source)


def _table(value: Any, where: str, source: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RegistryError(source, where, f"expected a table, got {type(value).__name__}")
    return value


def unflatten(entries: Entries) -> dict[str, Any]:
    """The registry document of ``entries`` (inverse of :func:`flatten`, order kept)."""
    doc: dict[str, Any] = {"version": 1}
    nodes: dict[Key, dict[str, Any]] = {}
    for key, attrs in entries.items():
        coll, ident = key[-2], key[-1]
        parent = doc if len(key) == 2 else nodes.get(key[:-2])
        if parent is None:
            continue
        if coll == "defect_codes":
            parent.setdefault("defect_codes", []).append(ident)
            continue
        if coll == "machine_types":
            node = dict(attrs)
            parent.setdefault("machine_types", {})[ident] = node
        else:
            node = {_ID_FIELD[coll]: ident, **attrs}
            parent.setdefault(coll, []).append(node)
        nodes[key] = node
    return doc


def merge_documents(
    base: Mapping[str, Any], partial: Mapping[str, Any], *, source: str = "<partial>"
) -> dict[str, Any]:
    """``base`` with every entry of ``partial`` added or updated (attributes merged); nothing
    is removed. The result is a document to validate with ``schemas.registry.parse_registry``."""
    merged = flatten(base)
    for key, attrs in flatten(partial, source=source).items():
        merged[key] = {**merged.get(key, {}), **attrs}
    return unflatten(merged)


def diff_documents(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Change]:
    """Entries removed, changed and added from ``before`` to ``after``, in document order."""
    old, new = flatten(before), flatten(after)
    changes = [Change("-", k, v, {}) for k, v in old.items() if k not in new]
    for key, attrs in new.items():
        if key not in old:
            changes.append(Change("+", key, {}, attrs))
        elif old[key] != attrs:
            changes.append(Change("~", key, old[key], attrs))
    return changes
