"""The event schema of every kind, found in this package, lookup by kind name, JSON Schema export.

Each module of this package (its name not starting with ``_``) declares one kind: an
:class:`~schemas.event_schema.EventSchema` subclass whose ``kind`` is a declared
:class:`~schemas.kinds.EventKind` (a new kind: ``kind = EventKind.declare("energy")``).
Importing this package imports every module of it and builds :data:`EVENT_SCHEMAS` from the
subclasses found; nothing else lists the kinds (docs/EXTENDING.md, "Add an event kind").
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType, ModuleType

from schemas.errors import EventSchemaModuleError, UnknownKindError
from schemas.event_schema import EventSchema
from schemas.json_schema import schema_file_name
from schemas.kinds import EventKind

__all__ = ["EVENT_SCHEMAS", "event_schema_for", "export_json_schemas"]


def _schema_classes(module: ModuleType) -> list[type[EventSchema]]:
    """The event schema classes ``module`` defines (not the ones it imports)."""
    return [
        value
        for value in vars(module).values()
        if inspect.isclass(value)
        and issubclass(value, EventSchema)
        and value.__module__ == module.__name__
    ]


def _discover() -> dict[EventKind, EventSchema]:
    """One event schema per kind from the modules of this package, in ``EventKind`` order.

    Raises:
        EventSchemaModuleError: a module defines no event schema or more than one, or one
            without a kind, two modules declare the same kind, or a declared kind has no
            module.
    """
    found: dict[EventKind, EventSchema] = {}
    where: dict[EventKind, str] = {}
    for info in pkgutil.iter_modules(__path__, prefix=f"{__name__}."):
        if info.name.rpartition(".")[2].startswith("_"):
            continue
        module = importlib.import_module(info.name)
        classes = _schema_classes(module)
        if len(classes) != 1:
            names = ", ".join(c.__name__ for c in classes) or "none"
            raise EventSchemaModuleError(
                f"{module.__file__}: a kind module defines exactly one EventSchema subclass, "
                f"found {names}; move shared code to a module whose name starts with '_'"
            )
        [cls] = classes
        kind = getattr(cls, "kind", None)
        if not isinstance(kind, EventKind):
            raise EventSchemaModuleError(
                f"{module.__file__}: {cls.__name__} has no kind; "
                'set kind = EventKind.declare("<kind>") in its class body'
            )
        if kind in found:
            raise EventSchemaModuleError(
                f"{module.__file__}: kind {kind.value!r} is already declared by {where[kind]}; "
                "give the new kind its own name with EventKind.declare"
            )
        found[kind], where[kind] = cls(), info.name
    missing = [kind.value for kind in EventKind if kind not in found]
    if missing:
        raise EventSchemaModuleError(
            f"event kind(s) {', '.join(missing)} declared but no module of {__name__} "
            "defines their event schema"
        )
    return {kind: found[kind] for kind in EventKind}


EVENT_SCHEMAS: Mapping[EventKind, EventSchema] = MappingProxyType(_discover())
"""The current (v1) event schema of every kind, in ``EventKind`` order."""


def event_schema_for(kind: EventKind | str) -> EventSchema:
    """The event schema of ``kind``.

    Raises:
        UnknownKindError: (a ``ConfigError``) listing the valid kinds.
    """
    try:
        return EVENT_SCHEMAS[EventKind(kind)]
    except ValueError:
        raise UnknownKindError(kind, [k.value for k in EventKind]) from None


def export_json_schemas(out_dir: Path) -> list[Path]:
    """Write ``<kind>.v<version>.schema.json`` for every event schema; returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, event_schema in EVENT_SCHEMAS.items():
        path = out_dir / schema_file_name(kind, event_schema.version)
        text = json.dumps(event_schema.json_schema(), indent=2, sort_keys=False) + "\n"
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
