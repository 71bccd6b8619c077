"""Suite files: versioned JSON documents, one per event kind, read without Great Expectations.

A suite file ``<kind>.json`` holds a ``suite_version`` (semver) and a list of expectations.
Each expectation has a stable ``name`` (what quarantine rows and reports show), a ``level``
(``drop``: failing rows go to quarantine; ``warn``: failing rows are kept and counted;
``batch``: one verdict for the whole batch), the Great Expectations class name and its
keyword arguments. A string argument of the form ``"$registry.<name>"`` is replaced at load
time by a list drawn from the asset registry (see :data:`REGISTRY_PLACEHOLDERS`).

This module checks the structure only; :mod:`quality._gx` checks the class names and
arguments against Great Expectations when the gateway builds the suites.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, cast, get_args

from quality.errors import SuiteError
from schemas import EventKind

__all__ = [
    "COLUMN_KWARGS",
    "LEVELS",
    "PLACEHOLDER_PREFIX",
    "REGISTRY_PLACEHOLDERS",
    "ExpectationSpec",
    "Level",
    "SuiteSpec",
    "default_suites_dir",
    "load_suite",
    "load_suites",
    "resolve_placeholders",
]

Level = Literal["drop", "warn", "batch"]
LEVELS: tuple[Level, ...] = get_args(Level)

PLACEHOLDER_PREFIX = "$registry."
REGISTRY_PLACEHOLDERS = (
    "machine_keys",
    "machine_types",
    "machine_type_tags",
    "machine_type_alarm_codes",
    "alarm_codes",
    "defect_codes",
    "tenants",
)
"""Registry lists a suite argument may name as ``"$registry.<name>"``.

``machine_keys`` are ``tenant/plant/line/machine``, ``machine_type_tags`` are
``machine_type/tag`` and ``machine_type_alarm_codes`` are ``machine_type/code``: the same
shapes as the derived key columns of :mod:`quality.enrich`.
"""

COLUMN_KWARGS = ("column", "column_A", "column_B", "column_list")
"""Expectation arguments that name batch columns: only these columns are sent to GX."""

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
_SUITE_KEYS = frozenset({"suite_version", "description", "expectations"})
_ENTRY_KEYS = frozenset(
    {"name", "level", "expectation", "kwargs", "description", "reason", "detail"}
)


@dataclass(frozen=True, slots=True)
class ExpectationSpec:
    """One entry of a suite file.

    Attributes:
        name: stable snake_case name shown in quarantine rows, reports and metrics.
        level: ``drop``, ``warn`` or ``batch``.
        expectation: Great Expectations class name, e.g. ``ExpectColumnValuesToBeInSet``.
        kwargs: keyword arguments of that class, placeholders not yet resolved.
        description: why the expectation exists, for people reading reports.
        reason: the quarantine reason of a failing row (default ``name``), e.g.
            ``unknown_machine``.
        detail: a ``str.format`` template of the quarantine detail of a failing row over its
            row and derived columns, e.g. ``"machine {machine!r} ..."``; "" = ``failed <name>``.
    """

    name: str
    level: Level
    expectation: str
    kwargs: Mapping[str, Any]
    description: str
    reason: str = ""
    detail: str = ""

    def detail_columns(self) -> tuple[str, ...]:
        """Columns the ``detail`` template names, in order."""
        fields = (f for _, f, _, _ in string.Formatter().parse(self.detail) if f)
        return tuple(dict.fromkeys(f.split(".")[0].split("[")[0] for f in fields))

    def columns(self) -> tuple[str, ...]:
        """Batch columns this expectation reads, in argument order."""
        out: list[str] = []
        for key in COLUMN_KWARGS:
            value = self.kwargs.get(key)
            if isinstance(value, str):
                out.append(value)
            elif isinstance(value, list):
                out.extend(v for v in value if isinstance(v, str))
        return tuple(out)


@dataclass(frozen=True, slots=True)
class SuiteSpec:
    """A parsed suite file.

    Attributes:
        kind: the event kind, from the file name.
        suite_version: semver string, bumped on every change (see docs/QUALITY.md).
        path: the file it came from.
        description: free text.
        expectations: the entries in file order (drop reasons follow this order).
    """

    kind: EventKind
    suite_version: str
    path: Path
    description: str
    expectations: tuple[ExpectationSpec, ...]

    @property
    def suite_name(self) -> str:
        """Name of the GX suite and of the suite in verdicts: ``maxlake.<kind>``."""
        return f"maxlake.{self.kind.value}"

    def columns(self) -> tuple[str, ...]:
        """Every column the suite reads, each once, in first-use order."""
        return tuple(dict.fromkeys(c for e in self.expectations for c in e.columns()))


def default_suites_dir() -> Path:
    """The packaged ``quality/suites`` directory."""
    return Path(str(files("quality") / "suites"))


def load_suites(suites_dir: Path | None = None) -> dict[EventKind, SuiteSpec]:
    """Read the suite of every event kind from ``suites_dir`` (default: the packaged one).

    Raises:
        SuiteError: naming the directory when a kind has no ``<kind>.json`` or a file's
            name is not a kind, or naming the file and entry of the first invalid content.
    """
    folder = suites_dir if suites_dir is not None else default_suites_dir()
    if not folder.is_dir():
        raise SuiteError(str(folder), "directory", "suites directory does not exist")
    kinds = {k.value for k in EventKind}
    strays = sorted(p.name for p in folder.glob("*.json") if p.stem not in kinds)
    if strays:
        valid = ", ".join(f"{k}.json" for k in sorted(kinds))
        raise SuiteError(str(folder), ", ".join(strays), f"not a suite name; expected {valid}")
    missing = sorted(f"{k}.json" for k in kinds if not (folder / f"{k}.json").is_file())
    if missing:
        raise SuiteError(str(folder), ", ".join(missing), "missing: every event kind needs one")
    return {kind: load_suite(folder / f"{kind.value}.json") for kind in EventKind}


def load_suite(path: Path) -> SuiteSpec:
    """Read and check one suite file; the event kind is the file name's stem.

    Raises:
        SuiteError: naming the file and the entry (missing or unknown keys, a bad
            ``suite_version``, a duplicate or malformed name, an unknown level).
    """
    where = str(path)
    try:
        kind = EventKind(path.stem)
    except ValueError:
        valid = ", ".join(k.value for k in EventKind)
        raise SuiteError(where, "file name", f"stem must be an event kind ({valid})") from None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SuiteError(where, "file", f"cannot read: {exc.strerror or exc}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SuiteError(where, "file", f"not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise SuiteError(where, "file", "the top level must be a JSON object")
    _no_unknown_keys(where, "file", doc, _SUITE_KEYS)
    version = doc.get("suite_version")
    if not isinstance(version, str) or not _SEMVER.fullmatch(version):
        raise SuiteError(
            where, "suite_version", f"must be a semver string like 1.2.0, got {version!r}"
        )
    entries = doc.get("expectations")
    if not isinstance(entries, list) or not entries:
        raise SuiteError(where, "expectations", "must be a non-empty array")
    specs = tuple(_entry(where, i, e) for i, e in enumerate(entries))
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise SuiteError(where, f"expectation {spec.name!r}", "duplicate name")
        seen.add(spec.name)
    return SuiteSpec(kind, version, path, _text(where, "description", doc), specs)


def resolve_placeholders(
    spec: ExpectationSpec, values: Mapping[str, list[str]], *, path: str
) -> dict[str, Any]:
    """``spec.kwargs`` with every ``"$registry.<name>"`` string replaced by ``values[name]``.

    Raises:
        SuiteError: naming the file and expectation when a placeholder is unknown.
    """

    def resolve(value: Any) -> Any:
        if isinstance(value, str) and value.startswith(PLACEHOLDER_PREFIX):
            key = value.removeprefix(PLACEHOLDER_PREFIX)
            if key not in values:
                known = ", ".join(PLACEHOLDER_PREFIX + k for k in sorted(values))
                raise SuiteError(
                    path,
                    f"expectation {spec.name!r}",
                    f"unknown placeholder {value!r}; known: {known}",
                )
            return list(values[key])
        if isinstance(value, list):
            return [resolve(v) for v in value]
        if isinstance(value, dict):
            return {k: resolve(v) for k, v in value.items()}
        return value

    return {k: resolve(v) for k, v in spec.kwargs.items()}


def _entry(where: str, index: int, doc: Any) -> ExpectationSpec:
    entry = f"expectations[{index}]"
    if not isinstance(doc, dict):
        raise SuiteError(where, entry, f"expected an object, got {type(doc).__name__}")
    name = doc.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise SuiteError(
            where, entry, f"'name' must be snake_case matching {_NAME.pattern}, got {name!r}"
        )
    entry = f"expectation {name!r}"
    _no_unknown_keys(where, entry, doc, _ENTRY_KEYS)
    level = doc.get("level")
    if level not in LEVELS:
        raise SuiteError(
            where, entry, f"unknown level {level!r}; valid levels: {', '.join(LEVELS)}"
        )
    expectation = doc.get("expectation")
    if not isinstance(expectation, str) or not expectation:
        raise SuiteError(
            where,
            entry,
            "'expectation' must be a GX class name such as ExpectColumnValuesToBeInSet",
        )
    kwargs = doc.get("kwargs", {})
    if not isinstance(kwargs, dict):
        raise SuiteError(where, entry, "'kwargs' must be an object")
    if "result_format" in kwargs:
        raise SuiteError(
            where, entry, "'result_format' is set by the gateway at run time; remove it"
        )
    reason, detail = doc.get("reason", name), doc.get("detail", "")
    if not isinstance(reason, str) or not _NAME.fullmatch(reason):
        raise SuiteError(where, entry, f"'reason' must be snake_case, got {reason!r}")
    if not isinstance(detail, str):
        raise SuiteError(where, entry, "'detail' must be a string template")
    try:
        list(string.Formatter().parse(detail))
    except ValueError as exc:
        raise SuiteError(where, entry, f"'detail' is not a format template: {exc}") from None
    return ExpectationSpec(
        name,
        cast(Level, level),
        expectation,
        MappingProxyType(dict(kwargs)),
        _text(where, entry, doc),
        reason,
        detail,
    )


def _text(where: str, entry: str, doc: dict[str, Any]) -> str:
    value = doc.get("description", "")
    if not isinstance(value, str):
        raise SuiteError(where, entry, "'description' must be a string")
    return value


def _no_unknown_keys(where: str, entry: str, doc: dict[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise SuiteError(
            where,
            entry,
            f"unknown keys {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}",
        )
