"""Suite files: versioned JSON documents, one per event kind, read without Great Expectations.

A suite file ``<kind>.json`` holds a ``suite_version`` (semver) and a list of expectations.
Each expectation has a stable ``name`` (what quarantine rows and reports show), a ``level``
(``drop``: failing rows go to quarantine; ``warn``: failing rows are kept and counted;
``batch``: one verdict for the whole batch), the Great Expectations class name and its
keyword arguments. A string argument of the form ``"$registry.<name>"`` is replaced at load
time by a list drawn from the asset registry (see :data:`REGISTRY_PLACEHOLDERS`).

This module checks the structure only (pydantic models :class:`SuiteFile` and
:class:`ExpectationEntry`, published for editors as ``quality/suite.schema.json``);
:mod:`quality._gx` checks the class names and arguments against Great Expectations when the
gateway builds the suites.
"""

from __future__ import annotations

import json
import string
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from maxlake.errors import validation_location
from quality.errors import SuiteError
from schemas import EventKind

__all__ = [
    "COLUMN_KWARGS",
    "LEVELS",
    "PLACEHOLDER_PREFIX",
    "REGISTRY_PLACEHOLDERS",
    "ExpectationEntry",
    "ExpectationSpec",
    "Level",
    "SuiteFile",
    "SuiteSpec",
    "default_suites_dir",
    "load_suite",
    "load_suites",
    "resolve_placeholders",
    "suite_json_schema",
    "suite_schema_path",
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

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
SEMVER_PATTERN = r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$"
SCHEMA_ID = "urn:maxlake:quality-suite"


class ExpectationEntry(BaseModel):
    """One entry of a suite file's ``expectations`` array, as written."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[
        str,
        Field(
            pattern=NAME_PATTERN,
            description="stable snake_case name shown in quarantine rows, reports and metrics",
        ),
    ]
    level: Annotated[
        Level,
        Field(
            description="drop: failing rows go to quarantine; warn: kept and counted; "
            "batch: one verdict for the whole batch"
        ),
    ]
    expectation: Annotated[
        str,
        Field(
            min_length=1, description="Great Expectations class, e.g. ExpectColumnValuesToBeInSet"
        ),
    ]
    kwargs: Annotated[
        dict[str, Any],
        Field(
            description='keyword arguments of the class; "$registry.<name>" strings are '
            "replaced by registry lists (result_format is set by the gateway)"
        ),
    ] = {}
    description: Annotated[str, Field(description="why the expectation exists")] = ""
    reason: Annotated[
        str | None,
        Field(
            pattern=NAME_PATTERN, description="quarantine reason of a failing row (default: name)"
        ),
    ] = None
    detail: Annotated[
        str,
        Field(description="str.format template of the quarantine detail over the row's columns"),
    ] = ""

    @field_validator("kwargs")
    @classmethod
    def _no_result_format(cls, value: dict[str, Any]) -> dict[str, Any]:
        if "result_format" in value:
            raise ValueError("'result_format' is set by the gateway at run time; remove it")
        return value

    @field_validator("detail")
    @classmethod
    def _template(cls, value: str) -> str:
        try:
            list(string.Formatter().parse(value))
        except ValueError as exc:
            raise ValueError(f"not a str.format template: {exc}") from None
        return value


class SuiteFile(BaseModel):
    """A suite file ``<kind>.json``, as written."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    suite_version: Annotated[
        str,
        Field(pattern=SEMVER_PATTERN, description="semver, bumped on every change, e.g. 1.2.0"),
    ]
    description: str = ""
    expectations: Annotated[
        list[ExpectationEntry],
        Field(min_length=1, description="the entries; drop reasons follow this order"),
    ]


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
        """Columns the ``detail`` template names, in order (not the expectation's own
        arguments, such as ``{max_value}``, which it may name too)."""
        fields = (f for _, f, _, _ in string.Formatter().parse(self.detail) if f)
        names = dict.fromkeys(f.split(".")[0].split("[")[0] for f in fields)
        return tuple(n for n in names if n not in self.kwargs)

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
        SuiteError: naming the file and the exact location (``expectations[2].level``) of the
            first problem: unknown or missing keys, a bad ``suite_version``, a duplicate or
            malformed name, an unknown level.
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
    try:
        model = SuiteFile.model_validate(doc)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        raise SuiteError(
            where, validation_location(err["loc"], root="file"), _problem(err)
        ) from None
    seen: set[str] = set()
    for i, entry in enumerate(model.expectations):
        if entry.name in seen:
            raise SuiteError(where, f"expectations[{i}].name", f"duplicate name {entry.name!r}")
        seen.add(entry.name)
    specs = tuple(
        ExpectationSpec(
            e.name,
            e.level,
            e.expectation,
            MappingProxyType(dict(e.kwargs)),
            e.description,
            e.reason or e.name,
            e.detail,
        )
        for e in model.expectations
    )
    return SuiteSpec(kind, model.suite_version, path, model.description, specs)


def suite_json_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of a suite file, as published in ``quality/suite.schema.json``."""
    schema = SuiteFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = SCHEMA_ID
    return schema


def suite_schema_path() -> Path:
    """Where the suite files' JSON Schema is published (inside the installed package)."""
    return Path(str(files("quality") / "suite.schema.json"))


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


def _problem(err: Any) -> str:
    """The problem of one pydantic error, in the terms of the suite file."""
    kind, value, loc = err["type"], err.get("input"), err["loc"]
    field = str(loc[-1]) if loc else ""
    if kind == "extra_forbidden":
        model = SuiteFile if len(loc) == 1 else ExpectationEntry
        return f"unknown key (allowed: {', '.join(model.model_fields)})"
    if kind == "missing":
        return "is required"
    if kind == "string_pattern_mismatch" and field == "suite_version":
        return f"must be a semver string like 1.2.0, got {value!r}"
    if kind == "string_pattern_mismatch":
        return f"must be snake_case matching {NAME_PATTERN}, got {value!r}"
    if kind == "literal_error":
        return f"unknown level {value!r}; valid levels: {', '.join(LEVELS)}"
    if kind == "too_short" and field == "expectations":
        return "must be a non-empty array"
    if kind == "value_error":
        return str(err.get("ctx", {}).get("error", err["msg"]))
    return f"{err['msg'][:1].lower()}{err['msg'][1:]}, got {value!r}"
