"""Backward-compatibility check between two JSON Schema documents of an event schema.

"Compatible" means every message valid under the old document stays valid under the new one
and keeps all its fields, so plants running old producers are not broken and downstream tables
lose no columns. Adding an optional field or widening a type or an enum is compatible;
removing or renaming a field, changing a type, making a field required and narrowing an enum,
a pattern, a length or a numeric range are not.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from maxlake.errors import ConfigError
from schemas.events import EVENT_SCHEMAS
from schemas.json_schema import schema_file_name

__all__ = ["Incompatibility", "check_against_baseline", "check_compatibility"]

_UPPER_BOUNDS = ("maxLength", "maximum", "maxItems")
_LOWER_BOUNDS = ("minLength", "minimum", "minItems")


@dataclass(frozen=True, slots=True)
class Incompatibility:
    """One breaking difference: where (a JSON path such as ``$.readings[*].value``) and what."""

    path: str
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


def check_compatibility(old: dict[str, Any], new: dict[str, Any]) -> list[Incompatibility]:
    """All breaking differences from ``old`` to ``new`` (empty when compatible).

    Pure function over JSON Schema documents; recurses through ``properties``, ``items`` and
    same-length ``anyOf``/``oneOf`` lists.
    """
    found: list[Incompatibility] = []
    _compare(old, new, "$", found)
    return found


def _types(schema: dict[str, Any]) -> set[str] | None:
    declared = schema.get("type")
    if declared is None:
        return None
    types = {declared} if isinstance(declared, str) else set(declared)
    if "number" in types:
        types.add("integer")
    return types


def _allowed_values(schema: dict[str, Any]) -> list[Any] | None:
    if "const" in schema:
        return [schema["const"]]
    values = schema.get("enum")
    return list(values) if isinstance(values, list) else None


def _compare(old: Any, new: Any, path: str, found: list[Incompatibility]) -> None:
    if not isinstance(old, dict) or not isinstance(new, dict):
        return
    old_types, new_types = _types(old), _types(new)
    if old_types is not None and new_types is not None and not old_types <= new_types:
        was, now = json.dumps(old["type"]), json.dumps(new["type"])
        found.append(Incompatibility(path, f"type changed from {was} to {now}"))
    old_values, new_values = _allowed_values(old), _allowed_values(new)
    if new_values is not None:
        if old_values is None:
            found.append(Incompatibility(path, f"values restricted to {json.dumps(new_values)}"))
        else:
            dropped = [v for v in old_values if v not in new_values]
            if dropped:
                found.append(Incompatibility(path, f"enum narrowed: {json.dumps(dropped)} removed"))
    if "pattern" in new and new.get("pattern") != old.get("pattern"):
        found.append(
            Incompatibility(
                path, f"pattern changed from {old.get('pattern')!r} to {new['pattern']!r}"
            )
        )
    for key in (*_UPPER_BOUNDS, *_LOWER_BOUNDS):
        if key not in new:
            continue
        upper = key in _UPPER_BOUNDS
        if key not in old or (new[key] < old[key] if upper else new[key] > old[key]):
            verb = "decreased" if upper else "increased"
            found.append(Incompatibility(path, f"{key} {verb} from {old.get(key)} to {new[key]}"))
    _compare_objects(old, new, path, found)
    if "items" in old:
        _compare(old["items"], new.get("items", {}), f"{path}[*]", found)
    for key in ("anyOf", "oneOf"):
        branches_old, branches_new = old.get(key), new.get(key)
        if isinstance(branches_old, list) and isinstance(branches_new, list):
            if len(branches_old) == len(branches_new):
                for i, (o, n) in enumerate(zip(branches_old, branches_new, strict=True)):
                    _compare(o, n, f"{path}.{key}[{i}]", found)
            else:
                found.append(
                    Incompatibility(path, f"{key} changed from {len(branches_old)} to "
                                    f"{len(branches_new)} alternatives")
                )  # fmt: skip


def _compare_objects(
    old: dict[str, Any], new: dict[str, Any], path: str, found: list[Incompatibility]
) -> None:
    old_props: dict[str, Any] = old.get("properties", {})
    new_props: dict[str, Any] = new.get("properties", {})
    for name, sub in old_props.items():
        if name not in new_props:
            found.append(Incompatibility(f"{path}.{name}", "field removed (or renamed)"))
        else:
            _compare(sub, new_props[name], f"{path}.{name}", found)
    old_required = set(old.get("required", []))
    for name in new.get("required", []):
        if name in old_required:
            continue
        what = "optional field became required" if name in old_props else "new required field"
        found.append(Incompatibility(f"{path}.{name}", what))


def check_against_baseline(baseline_dir: Path) -> list[Incompatibility]:
    """Compare every current event schema with its published document in ``baseline_dir``.

    A kind without a baseline document is new and so compatible; a baseline document whose
    kind no longer has an event schema is reported as removed.

    Raises:
        ConfigError: when the directory is missing or a document is not valid JSON.
    """
    if not baseline_dir.is_dir():
        raise ConfigError(f"baseline directory {baseline_dir} does not exist")
    found: list[Incompatibility] = []
    expected = set()
    for kind, event_schema in EVENT_SCHEMAS.items():
        name = schema_file_name(kind, event_schema.version)
        expected.add(name)
        path = baseline_dir / name
        if not path.exists():
            continue
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"baseline {path}: not a readable JSON document ({exc})") from exc
        found.extend(
            Incompatibility(f"{name}:{i.path}", i.problem)
            for i in check_compatibility(old, event_schema.json_schema())
        )
    for stale in sorted(p.name for p in baseline_dir.glob("*.schema.json")):
        if stale not in expected:
            found.append(Incompatibility(stale, "event schema removed"))
    return found
