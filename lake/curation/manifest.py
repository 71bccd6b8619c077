"""The dataset manifest and the content hash.

Every dataset version is a folder ``curated/<name>/v<N>/`` holding one file per split, the
job's extra files and ``manifest.json``. The manifest is what makes a version reproducible and
auditable: the spec and its hash, the Delta version of every source table, row counts and label
distributions per split, the features with their units, the output quality checks and the
content hash.

The content hash is the sha256 over, in split-name order, each split's name and the sha256 of
its canonical bytes, then each extra file's name and sha256. A split's canonical bytes are its
Arrow IPC stream: rows in the job's order, columns rechunked, Polars' oldest Arrow compat level
(plain ``large_string`` instead of string views), record batches of :data:`IPC_BATCH_ROWS`.
It depends on the data only, not on how Parquet encoded it or how the frame was chunked.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

from maxlake.errors import TerminalError

__all__ = [
    "IPC_BATCH_ROWS",
    "MANIFEST_FILE",
    "MANIFEST_FORMAT",
    "Manifest",
    "SourceInfo",
    "SplitInfo",
    "content_hash",
    "file_sha256",
    "frame_sha256",
    "label_distribution",
]

MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = 1
IPC_BATCH_ROWS = 65_536
_DISTINCT_LABELS_MAX = 50


@dataclass(frozen=True)
class SourceInfo:
    """One source table as the build read it.

    Attributes:
        table: table name under the lake root (``silver/telemetry``).
        version: the Delta version read; None when the table did not exist (read as empty).
        pinned: whether the spec pinned this version (else it was the latest at build time).
        rows: rows left after the spec's filters.
    """

    table: str
    version: int | None
    pinned: bool
    rows: int


@dataclass(frozen=True)
class SplitInfo:
    """One split file.

    Attributes:
        file: file name inside the version folder.
        rows: number of rows.
        sha256: sha256 of the file's bytes (checked by ``pull``).
        content_sha256: sha256 of the split's canonical Arrow IPC bytes.
        labels: label column -> distribution (see :func:`label_distribution`).
    """

    file: str
    rows: int
    sha256: str
    content_sha256: str
    labels: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Manifest:
    """What ``manifest.json`` holds; see the module docstring."""

    name: str
    version: int
    created_at: str
    status: str
    spec: Mapping[str, Any]
    spec_hash: str
    job: str
    sources: Mapping[str, SourceInfo]
    splits: Mapping[str, SplitInfo]
    features: list[Mapping[str, str]]
    label_columns: list[str]
    key_columns: list[str]
    files: Mapping[str, str]
    quality: Mapping[str, Any]
    content_hash: str
    registry_hash: str
    maxlake_version: str
    format: int = MANIFEST_FORMAT
    contracts: list[Mapping[str, Any]] = field(default_factory=list)
    """Sharing contracts the build applied: ``{"id", "version", "sha256"}`` each."""
    sharing: Mapping[str, Any] | None = None
    """How sharing was enforced (``lake.sharing.SharedInputs.record``); None = not enforced."""
    status_reason: str = ""
    """Why the status is not ``active`` (for example the revoked contract)."""
    label_contracts: list[Mapping[str, Any]] = field(default_factory=list)
    """The job's declared labels (``lake.curation.job.LabelInfo`` as dicts)."""
    job_meta: Mapping[str, Any] = field(default_factory=dict)
    """Facts the job reported (``JobOutput.meta``), for example its split cut instants."""
    registry_version: int | None = None
    """The live registry version the build used (None: a registry file, or an older build)."""
    schema_change: Mapping[str, Any] | None = None
    """The feature columns against the previous version of the name
    (:func:`lake.curation.schema_change.schema_change`; ``previous_version`` 0 for a first
    version); None in manifests written before the comparison existed."""

    @property
    def quality_passed(self) -> bool:
        """Whether every blocking output check passed (False: published with
        ``--allow-failed-quality``; refused to readers unless they ask for it)."""
        return self.quality.get("success") is not False

    @property
    def quality_failed(self) -> list[str]:
        """Names of the failed blocking output checks."""
        return [str(name) for name in self.quality.get("failed", [])]

    @property
    def source_versions(self) -> dict[str, int | None]:
        """Kind -> Delta version read, for :meth:`DatasetSpec.pinned`."""
        return {kind: s.version for kind, s in self.sources.items()}

    @property
    def rows(self) -> int:
        """Rows over all splits."""
        return sum(s.rows for s in self.splits.values())

    @property
    def enforced(self) -> bool:
        """Whether the build applied sharing contracts (only such versions are served)."""
        return bool(self.sharing and self.sharing.get("enforced"))

    def to_json(self) -> bytes:
        """Pretty, key-sorted JSON (stable for diffs)."""
        return (json.dumps(asdict(self), indent=2, sort_keys=True) + "\n").encode("utf-8")

    def write(self, folder: Path) -> Path:
        """Write ``manifest.json`` into ``folder`` atomically (temp file + rename)."""
        path = folder / MANIFEST_FILE
        tmp = folder / f".{MANIFEST_FILE}.tmp"
        tmp.write_bytes(self.to_json())
        os.replace(tmp, path)
        return path

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        """Read ``folder/manifest.json``.

        Raises:
            TerminalError: the file is missing or not a manifest this version understands.
        """
        path = folder / MANIFEST_FILE
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise TerminalError(f"{path}: not a readable dataset manifest: {exc}") from exc
        return cls.parse(data, str(path))

    @classmethod
    def parse(cls, data: bytes, where: str) -> Manifest:
        """The manifest in ``data`` (the bytes of a ``manifest.json``; ``where`` names it in
        errors).

        Raises:
            TerminalError: not a manifest this version understands.
        """
        try:
            doc = json.loads(data)
        except ValueError as exc:
            raise TerminalError(f"{where}: not a readable dataset manifest: {exc}") from exc
        if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT:
            found = doc.get("format") if isinstance(doc, dict) else None
            raise TerminalError(
                f"{where}: manifest format {found!r} is not {MANIFEST_FORMAT}: "
                "written by another maxlake version?"
            )
        try:
            doc["sources"] = {k: SourceInfo(**v) for k, v in doc["sources"].items()}
            doc["splits"] = {k: SplitInfo(**v) for k, v in doc["splits"].items()}
            return cls(**doc)
        except (TypeError, KeyError, AttributeError) as exc:
            raise TerminalError(f"{where}: not a readable dataset manifest: {exc}") from exc


def file_sha256(path: Path) -> str:
    """sha256 (hex) of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


class _HashSink:
    """A write-only file object that hashes what is written to it."""

    def __init__(self) -> None:
        self.digest = hashlib.sha256()
        self.closed = False

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return len(data)

    def flush(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True


def frame_sha256(frame: pl.DataFrame) -> str:
    """sha256 of the canonical Arrow IPC bytes of ``frame`` (see the module docstring)."""
    table = frame.rechunk().to_arrow(compat_level=pl.CompatLevel.oldest())
    sink = _HashSink()
    stream = pa.PythonFile(sink, mode="w")
    with pa.ipc.new_stream(stream, table.schema) as writer:
        for batch in table.to_batches(max_chunksize=IPC_BATCH_ROWS):
            writer.write_batch(batch)
    return sink.digest.hexdigest()


def content_hash(split_hashes: Mapping[str, str], file_hashes: Mapping[str, str]) -> str:
    """The dataset's content hash from per-split and per-file hashes (order-independent)."""
    digest = hashlib.sha256()
    for kind, hashes in (("split", split_hashes), ("file", file_hashes)):
        for name in sorted(hashes):
            digest.update(f"{kind}\0{name}\0{hashes[name]}\n".encode())
    return digest.hexdigest()


def label_distribution(frame: pl.DataFrame, column: str) -> dict[str, Any]:
    """Counts per value for a categorical label, summary statistics for a numeric one.

    A label with at most 50 distinct values gets ``{"counts": {value: n}, "nulls": n}`` (values
    as JSON strings, sorted); one with more gets ``{"min", "max", "mean", "nulls"}``.
    """
    series = frame.get_column(column)
    nulls = series.null_count()
    values = series.drop_nulls()
    if values.n_unique() <= _DISTINCT_LABELS_MAX or not values.dtype.is_numeric():
        counts = values.value_counts(sort=False)
        pairs = sorted(
            (json.dumps(_plain(v)), int(n))
            for v, n in zip(
                counts.get_column(column).to_list(), counts.get_column("count"), strict=True
            )
        )
        return {"counts": dict(pairs), "nulls": nulls}
    return {
        "min": _plain(values.min()),
        "max": _plain(values.max()),
        "mean": values.mean(),
        "nulls": nulls,
    }


def _plain(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)
