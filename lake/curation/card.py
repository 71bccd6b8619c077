"""The data card: a ``README.md`` in Hugging Face dataset-card form next to every version's splits.

The YAML header declares one ``configs`` entry whose ``data_files`` list each split's Parquet
file, so ``datasets.load_dataset(folder)`` loads every split without maxlake; ``dataset_info``
gives the columns and their types. The header also carries the license, the source, the label
definition, every feature's unit and the quality verdict (``maxlake`` key, ignored by other
readers: ``quality.passed`` false for a version published with ``--allow-failed-quality``,
with the failed checks and the per-split warnings); the Markdown body repeats them for people,
a failed verdict first. Written by the build into ``curated/<name>/v<N>/`` and by
``datasets pull`` into the target folder (naming the pulled files).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from lake.curation.errors import PullTargetTaken
from lake.curation.job import JobOutput
from lake.curation.manifest import Manifest
from lake.curation.published import published_manifest
from lake.curation.schema_change import schema_change_lines
from maxlake.errors import TerminalError

if TYPE_CHECKING:
    from lake.curation.area import CuratedArea

__all__ = [
    "CARD_FILE",
    "LABEL_FILE",
    "check_card_target",
    "edited_card",
    "hf_features",
    "label_info",
    "render_card",
    "stale_card_columns",
    "stored_card",
    "write_card",
]

CARD_FILE = "README.md"
LABEL_FILE = "label.json"
"""A job's optional extra file describing its label (definition, unit, cap, window, ...)."""

_HF_NAMES: dict[str, str] = {
    "halffloat": "float16",
    "float": "float32",
    "double": "float64",
    "date32[day]": "date32",
    "date64[ms]": "date64",
}
"""Arrow type names that Hugging Face's ``Value`` spells otherwise."""


def _hf_dtype(arrow_type: pa.DataType) -> str | None:
    """The Hugging Face ``Value`` dtype of a plain (not nested) Arrow type, as ``datasets``
    derives it from a Parquet schema: a time keeps its unit and zone (``timestamp[us,
    tz=UTC]``, ``duration[us]``, ``time64[us]``), a dictionary (a Polars categorical) its
    values' type; None for a type ``datasets`` has no ``Value`` for (a map, a union)."""
    if pa.types.is_dictionary(arrow_type):
        return _hf_dtype(arrow_type.value_type)
    if pa.types.is_timestamp(arrow_type):
        zone = f", tz={arrow_type.tz}" if arrow_type.tz else ""
        return f"timestamp[{arrow_type.unit}{zone}]"
    if pa.types.is_decimal(arrow_type):
        bits = 256 if pa.types.is_decimal256(arrow_type) else 128
        return f"decimal{bits}({arrow_type.precision}, {arrow_type.scale})"
    name = str(arrow_type)
    plain = (
        pa.types.is_null(arrow_type)
        or pa.types.is_boolean(arrow_type)
        or pa.types.is_integer(arrow_type)
        or pa.types.is_floating(arrow_type)
        or pa.types.is_temporal(arrow_type)
        or pa.types.is_binary(arrow_type)
        or pa.types.is_large_binary(arrow_type)
        or pa.types.is_string(arrow_type)
        or pa.types.is_large_string(arrow_type)
        or name in ("string_view", "binary_view")
    )
    if not plain or pa.types.is_interval(arrow_type):
        return None
    return _HF_NAMES.get(name, name)


def _hf_feature(arrow_type: pa.DataType) -> dict[str, Any] | None:
    """A column's type in the data card's ``dataset_info.features`` (without its name), in the
    YAML form ``datasets`` reads and writes: ``{"dtype": "int64"}``, ``{"list": "float64"}``
    (``length`` for a fixed-size list, ``large_list`` for a large one), ``{"struct": [{"name":
    ..., "dtype": ...}, ...]}``, nested as deep as the Arrow type; None when some part of it
    has no ``datasets`` type."""
    if pa.types.is_struct(arrow_type):
        fields = []
        for i in range(arrow_type.num_fields):
            child = arrow_type.field(i)
            inner = _hf_feature(child.type)
            if inner is None:
                return None
            fields.append({"name": child.name, **inner})
        return {"struct": fields}
    if (
        pa.types.is_list(arrow_type)
        or pa.types.is_large_list(arrow_type)
        or pa.types.is_fixed_size_list(arrow_type)
    ):
        inner = _hf_feature(arrow_type.value_type)
        if inner is None:
            return None
        key = "large_list" if pa.types.is_large_list(arrow_type) else "list"
        out: dict[str, Any] = {key: _simplified(inner)}
        if pa.types.is_fixed_size_list(arrow_type):
            out["length"] = arrow_type.list_size
        return out
    dtype = _hf_dtype(arrow_type)
    return None if dtype is None else {"dtype": dtype}


def _simplified(inner: dict[str, Any]) -> Any:
    """A list's item type as ``datasets`` shortens it: a plain type by its dtype name, a
    struct by its field list."""
    if list(inner) == ["dtype"]:
        return inner["dtype"]
    if list(inner) == ["struct"]:
        return inner["struct"]
    return inner


def hf_features(schema: pa.Schema) -> tuple[list[dict[str, Any]], list[str]]:
    """``dataset_info.features`` of a split's Parquet ``schema`` and the columns ``datasets``
    has no type for (``name (arrow type)``; then the card gives no features at all, since
    ``datasets`` refuses a partial list, and says why in its body)."""
    features, untyped = [], []
    for column in schema:
        feature = _hf_feature(column.type)
        if feature is None:
            untyped.append(f"{column.name} ({column.type})")
        else:
            features.append({"name": column.name, **feature})
    return features, untyped


def label_info(output: JobOutput | Mapping[str, bytes]) -> dict[str, Any]:
    """The label description a job wrote as :data:`LABEL_FILE` (``{}`` when it wrote none)."""
    files = output.files if isinstance(output, JobOutput) else output
    data = files.get(LABEL_FILE)
    if data is None:
        return {}
    info: dict[str, Any] = json.loads(data)
    return info


def write_card(
    folder: Path, manifest: Manifest, files: Mapping[str, str], *, label: Mapping[str, Any]
) -> Path:
    """Write ``README.md`` into ``folder`` for the split files ``files`` (split -> file name).

    Args:
        folder: where the split files are.
        manifest: the version's manifest.
        files: split name -> file name in ``folder``.
        label: the job's label description (its ``label.json``, if any).

    The column types come from the first split file's Parquet schema.
    """
    schema = pq.read_schema(folder / next(iter(files.values())))
    path = folder / CARD_FILE
    path.write_text(render_card(manifest, files, schema, label=label), encoding="utf-8")
    return path


def check_card_target(folder: Path, dataset: str, *, writes_card: bool = True) -> None:
    """Return when a pull of ``dataset`` may write into ``folder``: it holds no ``README.md``,
    or the data card of the same dataset (any version), which a Parquet pull replaces with one
    listing the splits pulled so far. A pull that ``writes_card=False`` (Arrow) leaves any other
    README alone, but not another dataset's card: its files would sit under a card that does
    not list them.

    Raises:
        PullTargetTaken: ``folder`` is a file, or ``folder/README.md`` is some other file (a
            project's README, say, when pulling into a repository checkout), or the data card of
            another dataset (whose split files it lists); nothing should be written.
    """
    if folder.exists() and not folder.is_dir():
        raise PullTargetTaken(
            f"{folder} is a file, not a folder; nothing pulled: give --out a folder (it is "
            "created when missing) such as the one this file is in"
        )
    path = folder / CARD_FILE
    if not path.is_file():
        return
    with path.open("rb") as head:
        start = head.read(65_536)
    if not (start.startswith(b"---\npretty_name: ") and b"\nmaxlake:\n" in start):
        if not writes_card:
            return
        raise PullTargetTaken(
            f"{path} exists and is not a maxlake data card; nothing pulled (a Parquet pull "
            "writes its data card README.md beside the split): pull into a folder of its own "
            "with --out DIR"
        )
    other = _card_dataset(start)
    if other is not None and other[0] != dataset:
        raise PullTargetTaken(
            f"{path} is the data card of {other[0]} v{other[1]}; pulling {dataset} there would "
            f"replace it, leaving {other[0]}'s split files under a card that does not list "
            f"them; nothing pulled: pull {dataset} into a folder of its own with --out DIR "
            f"(one dataset per folder), or remove {folder}'s {other[0]} files first"
        )


_CARD_DATASET = re.compile(rb'\nmaxlake:\n  dataset: ("(?:[^"\\\n]|\\.)*")\n  version: (\d+)\n')


def _card_dataset(head: bytes) -> tuple[str, int] | None:
    """Dataset name and version of a data card's ``maxlake`` block (None: not found)."""
    found = _CARD_DATASET.search(head)
    if found is None:
        return None
    return str(json.loads(found.group(1))), int(found.group(2))


_CARD_FILES = re.compile(
    rb'^ +- split: ("(?:[^"\\\n]|\\.)*")\n +path: ("(?:[^"\\\n]|\\.)*")$', re.MULTILINE
)


def edited_card(folder: Path, area: CuratedArea, manifest: Manifest) -> Path | None:
    """``folder/README.md`` when it is a data card of ``manifest.name`` whose bytes differ from
    the card a pull writes for the version and split files it names (the user edited it, or an
    older maxlake wrote it), else None: no README there, another file or another dataset's card
    (:func:`check_card_target` refuses those), or the card exactly as a pull wrote it. A card
    whose version can no longer be read from ``area`` counts as edited (it cannot be checked).
    """
    path = folder / CARD_FILE
    if not path.is_file():
        return None
    text = path.read_bytes()
    found = _card_dataset(text[:65_536])
    if found is None or found[0] != manifest.name:
        return None
    try:
        written = (
            manifest if found[1] == manifest.version else area.manifest(manifest.name, found[1])
        )
        files = {json.loads(s): json.loads(f) for s, f in _CARD_FILES.findall(text)}
        first = next(s for s in written.splits if s in files)
        info = written.splits[first]
        schema = pq.read_schema(
            area.local_file(written.name, written.version, info.file, info.sha256)
        )
        try:
            label = label_info(
                {LABEL_FILE: area.read_bytes(written.name, written.version, LABEL_FILE)}
            )
        except FileNotFoundError:
            label = {}
        expected = render_card(written, files, schema, label=label).encode()
    except (TerminalError, OSError, StopIteration, KeyError, ValueError, pa.ArrowException):
        return path
    return None if expected == text else path


def stored_card(area: CuratedArea, manifest: Manifest) -> bytes:
    """The data card of a published version of ``area``, rendered again from what its
    manifest vouches for: the manifest itself, the first split file's Parquet schema and the
    job's ``label.json`` (checked against the manifest's sha256), which the manifest cannot hash
    (the card quotes the manifest). Byte for byte the ``README.md`` the build wrote, except for
    a version built before the column types were mapped (time columns before d47ee0f, lists and
    structs after it), whose stored card declares them ``string``: this one gives the types of
    today's :func:`hf_features`.

    Raises:
        TerminalError: ``label.json`` no longer matches its manifest hash.
    """
    files = {name: split.file for name, split in manifest.splits.items()}
    label: dict[str, Any] = {}
    if LABEL_FILE in manifest.files:
        data = area.read_bytes(manifest.name, manifest.version, LABEL_FILE)
        if hashlib.sha256(data).hexdigest() != manifest.files[LABEL_FILE]:
            where = area.describe(manifest.name, f"v{manifest.version}", LABEL_FILE)
            raise TerminalError(f"{where} does not match its manifest hash")
        label = label_info({LABEL_FILE: data})
    first = next(iter(manifest.splits.values()))
    path = area.local_file(manifest.name, manifest.version, first.file, first.sha256)
    schema = pq.read_schema(path)
    return render_card(manifest, files, schema, label=label).encode("utf-8")


def stale_card_columns(area: CuratedArea, manifest: Manifest) -> list[str] | None:
    """The columns whose type the stored data card of a published version gives as ``string``
    while today's card types them (``window_start (timestamp[us, tz=UTC])``): a version built
    before time, list and struct columns were typed. Empty when the stored card is current;
    None on an object store (the split's schema would have to be downloaded) or without a
    stored card.

    ``datasets pull`` and the service render the card again, with the real types; the stored
    file is kept as the build wrote it.
    """
    if not area.location.is_local:
        return None
    try:
        stored = area.read_bytes(manifest.name, manifest.version, CARD_FILE).decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    first = next(iter(manifest.splits.values()))
    schema = pq.read_schema(
        area.local_file(manifest.name, manifest.version, first.file, first.sha256)
    )
    features, _ = hf_features(schema)
    stale = []
    for feature in features:
        if feature.get("dtype") in ("string", "large_string"):
            continue
        declared = f'- name: {json.dumps(feature["name"])}\n      dtype: "string"\n'
        if declared in stored:
            stale.append(f"{feature['name']} ({schema.field(feature['name']).type})")
    return stale


def render_card(
    manifest: Manifest,
    files: Mapping[str, str],
    schema: pa.Schema,
    *,
    label: Mapping[str, Any],
) -> str:
    """The card's text (deterministic: no build time in it)."""
    spec = manifest.spec
    card = spec.get("card") or {}
    units = {f["name"]: f["unit"] for f in manifest.features}
    features, untyped = hf_features(schema)
    header: dict[str, Any] = {
        "pretty_name": f"{manifest.name} v{manifest.version}",
        "license": card.get("license", "other"),
        "configs": [
            {
                "config_name": "default",
                "data_files": [
                    {"split": split, "path": file} for split, file in sorted(files.items())
                ],
            }
        ],
        "dataset_info": {
            **({"features": features} if not untyped else {}),
            "splits": [
                {"name": split, "num_examples": manifest.splits[split].rows}
                for split in sorted(files)
            ],
        },
        "maxlake": {
            "dataset": manifest.name,
            "version": manifest.version,
            "content_hash": manifest.content_hash,
            "purpose": spec.get("purpose", ""),
            "job": manifest.job,
            "source": card.get("source", ""),
            "label_columns": manifest.label_columns,
            "key_columns": manifest.key_columns,
            "label": dict(label),
            "feature_units": units,
            "source_versions": {k: s.version for k, s in sorted(manifest.sources.items())},
            "contracts": published_manifest(manifest)["contracts"],
            "quality": _quality(manifest),
            "schema_change": published_manifest(manifest).get("schema_change"),
        },
    }
    lines = ["---", *_yaml(header, 0), "---", ""]
    lines += [f"# {manifest.name} v{manifest.version}", ""]
    if spec.get("description"):
        lines += [str(spec["description"]), ""]
    if not manifest.quality_passed:
        lines += [
            f"**Quality: FAILED** output checks {', '.join(manifest.quality_failed)}. This "
            "version was published with `--allow-failed-quality` and is refused to readers by "
            "default: do not train or evaluate on it without knowing why it failed.",
            "",
        ]
    lines += [
        f"Built by maxlake (job `{manifest.job}`, purpose `{spec.get('purpose', '')}`), content "
        f"hash `{manifest.content_hash}`.",
        "",
        f"- Quality: {'passed' if manifest.quality_passed else 'FAILED'}"
        + "".join(f"; {d}" for d in _quality(manifest)["details"]),
        f"- License: {card.get('license', 'other')}",
        f"- Source: {card.get('source', '') or 'see the manifest'}",
        f"- Label: {', '.join(manifest.label_columns)}"
        + (f": {label.get('definition')}" if label.get("definition") else ""),
        "",
        "| split | file | rows |",
        "|---|---|---|",
        *(
            f"| {split} | {file} | {manifest.splits[split].rows} |"
            for split, file in sorted(files.items())
        ),
        "",
        *_schema_section(manifest),
        "| feature | unit | meaning |",
        "|---|---|---|",
        *(f"| {f['name']} | {f['unit']} | {f['description']} |" for f in manifest.features),
        "",
        'Load it without maxlake: `datasets.load_dataset("<this folder>")`.'
        if not untyped
        else "Hugging Face `datasets` has no type for the column(s) "
        f"{', '.join(untyped)}, so `datasets.load_dataset` cannot read these files; read the "
        "Parquet files with Polars or PyArrow, which keep every type.",
        "",
    ]
    return "\n".join(lines)


def _schema_section(manifest: Manifest) -> list[str]:
    """The feature-schema change against the previous version, as the published manifest
    keeps it (a bullet list and a blank line; nothing when the columns did not change, so the
    cards of a first and a later version differ in figures only)."""
    change = published_manifest(manifest).get("schema_change")
    if not isinstance(change, Mapping) or not change.get("changed"):
        return []
    lines = schema_change_lines(change, manifest.name)
    return ["Feature schema:", "", *(f"- {line}" for line in lines), ""]


def _quality(manifest: Manifest) -> dict[str, Any]:
    """The card's quality verdict: passed, the failed blocking checks and the per-split
    warnings and their details (what the published manifest keeps)."""
    kept = published_manifest(manifest)["quality"]
    return {
        "passed": manifest.quality_passed,
        "failed": list(manifest.quality_failed),
        "warnings": list(kept.get("warnings", [])),
        "details": list(kept.get("details", [])),
    }


def _yaml(value: Any, indent: int) -> list[str]:
    """A small YAML writer: mappings, lists and JSON scalars (strings JSON-quoted)."""
    pad = " " * indent
    out: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(item, Mapping | list) and item:
                out.append(f"{pad}{key}:")
                out += _yaml(item, indent + 2)
            else:
                out.append(f"{pad}{key}: {_scalar(item)}")
        return out
    for item in value:
        if isinstance(item, Mapping) and item:
            nested = _yaml(item, indent + 2)
            out.append(f"{pad}- {nested[0].lstrip()}")
            out += nested[1:]
        else:
            out.append(f"{pad}- {_scalar(item)}")
    return out


def _scalar(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return json.dumps(value, ensure_ascii=False)
