"""The dataset catalog: list, show, pull and load published dataset versions.

Datasets live under ``<lake_root>/curated/<name>/v<N>/`` (see :mod:`lake.curation.build`).
Every name, version and split a caller passes is validated against a strict pattern before it
touches a path, so ``../x``, absolute paths or a NUL byte fail with an error that shows the valid
form; an unknown name, version or split fails with the list of what exists.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from lake.curation.build import curated_root
from lake.curation.card import LABEL_FILE, label_info, write_card
from lake.curation.errors import DatasetNotFound, FailedQualityRefused, InvalidDatasetRef
from lake.curation.manifest import MANIFEST_FILE, Manifest, file_sha256
from lake.curation.published import published_manifest_bytes
from lake.curation.spec import NAME_PATTERN
from maxlake.errors import TerminalError
from maxlake.settings import Settings

__all__ = [
    "DatasetSummary",
    "iter_batches",
    "list_datasets",
    "load",
    "parse_ref",
    "pull",
    "show",
]

VERSION_FORM = "a positive integer N or 'vN' (e.g. 3 or v3)"
_NAME = re.compile(NAME_PATTERN)
_VERSION = re.compile(r"^v?([1-9][0-9]{0,8})$")
_VERSION_DIR = re.compile(r"^v([1-9][0-9]{0,8})$")


@dataclass(frozen=True)
class DatasetSummary:
    """One dataset in the catalog.

    Attributes:
        name: dataset name.
        versions: every published version, ascending.
        latest: the newest ``active`` version (None when all are revoked).
        description: from the newest version's spec.
        purpose: from the newest version's spec.
        failed_quality: versions published although their output checks failed (refused to
            readers unless they opt in).
    """

    name: str
    versions: tuple[int, ...]
    latest: int | None
    description: str
    purpose: str
    failed_quality: tuple[int, ...] = ()


def parse_ref(ref: str) -> tuple[str, int | None]:
    """Split ``NAME[@VERSION]`` (``pm@3``, ``pm@v3``, ``pm``) into a checked name and version."""
    name, sep, version = ref.partition("@")
    return _check_name(name), _check_version(version) if sep else None


def list_datasets(lake_root: str | Path | Settings | None = None) -> list[DatasetSummary]:
    """Every dataset with at least one published version, by name."""
    root = _root(lake_root)
    out: list[DatasetSummary] = []
    for name in _names(root):
        versions = _versions(root / name)
        if not versions:
            continue
        manifests = {v: Manifest.read(root / name / f"v{v}") for v in versions}
        newest = manifests[versions[-1]]
        active = [v for v in versions if manifests[v].status == "active"]
        out.append(
            DatasetSummary(
                name=name,
                versions=tuple(versions),
                latest=active[-1] if active else None,
                description=str(newest.spec.get("description", "")),
                purpose=str(newest.spec.get("purpose", "")),
                failed_quality=tuple(v for v in versions if not manifests[v].quality_passed),
            )
        )
    return out


def show(
    name: str, version: int | str | None = None, *, lake_root: str | Path | Settings | None = None
) -> Manifest:
    """The manifest of one version (default: the newest active one)."""
    return Manifest.read(_version_dir(_root(lake_root), name, version, active_only=False))


def pull(
    name: str,
    version: int | str | None,
    split: str,
    dest: str | Path,
    format: Literal["parquet", "arrow"] = "parquet",
    *,
    lake_root: str | Path | Settings | None = None,
    allow_failed_quality: bool = False,
) -> Path:
    """Copy one split (checked against the manifest's sha256) and the published manifest
    (:mod:`lake.curation.published`) into ``dest``.

    Files are named ``<name>-v<N>-<split>.parquet`` (or ``.arrow``, an Arrow IPC file) and
    ``<name>-v<N>.manifest.json``; existing files of those names are replaced. A Parquet pull
    also (re)writes the data card ``README.md`` listing every split of this version pulled into
    ``dest`` so far, so ``datasets.load_dataset(dest)`` reads them (one dataset per folder).

    Returns:
        The path of the split file written.

    Raises:
        TerminalError: the stored split does not match its manifest hash (corrupt or altered).
        FailedQualityRefused: the version failed its output checks and
            ``allow_failed_quality`` is False.
    """
    if format not in ("parquet", "arrow"):
        raise InvalidDatasetRef("format", format, "'parquet' or 'arrow'")
    folder = _readable(_root(lake_root), name, version, allow_failed_quality)
    manifest = Manifest.read(folder)
    source = _split_file(folder, manifest, split)
    if file_sha256(source) != manifest.splits[split].sha256:
        raise TerminalError(f"{source} does not match the sha256 in its manifest; not pulled")
    out_dir = Path(dest)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{manifest.name}-v{manifest.version}"
    target = out_dir / f"{stem}-{split}.{format}"
    tmp = out_dir / f".{target.name}.tmp"
    if format == "parquet":
        shutil.copyfile(source, tmp)
    else:
        parquet = pq.ParquetFile(source)
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, parquet.schema_arrow) as w:
            for batch in parquet.iter_batches(batch_size=65_536):
                w.write_batch(batch)
    os.replace(tmp, target)
    (out_dir / f"{stem}.manifest.json").write_bytes(published_manifest_bytes(manifest))
    if format == "parquet":
        pulled = {
            name: f"{stem}-{name}.parquet"
            for name in manifest.splits
            if (out_dir / f"{stem}-{name}.parquet").is_file()
        }
        write_card(out_dir, manifest, pulled, label=_label_file(folder))
    return target


def load(
    name: str,
    version: int | str | None = None,
    split: str = "train",
    *,
    lake_root: str | Path | Settings | None = None,
    allow_failed_quality: bool = False,
) -> pl.DataFrame:
    """One split in memory (default: the newest active version's ``train``).

    Raises:
        FailedQualityRefused: the version failed its output checks and
            ``allow_failed_quality`` is False.
    """
    folder = _readable(_root(lake_root), name, version, allow_failed_quality)
    return pl.read_parquet(_split_file(folder, Manifest.read(folder), split))


def iter_batches(
    name: str,
    version: int | str | None = None,
    split: str = "train",
    batch_rows: int = 100_000,
    *,
    lake_root: str | Path | Settings | None = None,
    allow_failed_quality: bool = False,
) -> Iterator[pl.DataFrame]:
    """One split as frames of at most ``batch_rows`` rows, in file order, for sets larger
    than memory (only one batch is held at a time). Failed-quality versions as :func:`load`."""
    if batch_rows < 1:
        raise InvalidDatasetRef("batch_rows", batch_rows, "a positive integer")
    folder = _readable(_root(lake_root), name, version, allow_failed_quality)
    path = _split_file(folder, Manifest.read(folder), split)
    return _batches(path, batch_rows)


def _batches(path: Path, batch_rows: int) -> Iterator[pl.DataFrame]:
    parquet = pq.ParquetFile(path)
    for batch in parquet.iter_batches(batch_size=batch_rows):
        frame = pl.from_arrow(batch)
        assert isinstance(frame, pl.DataFrame)
        yield frame


def _root(lake_root: str | Path | Settings | None) -> Path:
    return curated_root(Settings() if lake_root is None else lake_root)


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidDatasetRef("dataset name", name, f"a name matching {NAME_PATTERN}")
    return name


def _check_version(version: object) -> int:
    if isinstance(version, bool):
        raise InvalidDatasetRef("version", version, VERSION_FORM)
    if isinstance(version, int):
        if version < 1:
            raise InvalidDatasetRef("version", version, VERSION_FORM)
        return version
    match = _VERSION.fullmatch(version) if isinstance(version, str) else None
    if match is None:
        raise InvalidDatasetRef("version", version, VERSION_FORM)
    return int(match.group(1))


def _names(root: Path) -> list[str]:
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and _NAME.fullmatch(p.name))


def _versions(dataset_dir: Path) -> list[int]:
    """Published versions: ``v<N>`` folders with a manifest (staging folders are skipped)."""
    if not dataset_dir.is_dir():
        return []
    found = []
    for entry in dataset_dir.iterdir():
        match = _VERSION_DIR.fullmatch(entry.name)
        if match and (entry / MANIFEST_FILE).is_file():
            found.append(int(match.group(1)))
    return sorted(found)


def _status(folder: Path) -> str:
    return Manifest.read(folder).status


def _version_dir(root: Path, name: str, version: int | str | None, *, active_only: bool) -> Path:
    name = _check_name(name)
    wanted = None if version is None else _check_version(version)
    dataset_dir = root / name
    versions = _versions(dataset_dir)
    if not versions:
        raise DatasetNotFound("dataset", name, _names_with_versions(root))
    if wanted is None:
        active = [v for v in versions if _status(dataset_dir / f"v{v}") == "active"]
        if not active:
            raise DatasetNotFound(
                f"active version of {name}", "latest", [f"v{v}" for v in versions]
            )
        wanted = active[-1]
    if wanted not in versions:
        raise DatasetNotFound(f"version of {name}", f"v{wanted}", [f"v{v}" for v in versions])
    folder = dataset_dir / f"v{wanted}"
    if not folder.resolve().is_relative_to(root.resolve()):
        raise InvalidDatasetRef("dataset", f"{name}@v{wanted}", "a folder inside the catalog")
    if active_only:
        status = _status(folder)
        if status != "active":
            raise TerminalError(f"{name}@v{wanted} is {status}; it can no longer be read")
    return folder


def _readable(root: Path, name: str, version: int | str | None, allow_failed: bool) -> Path:
    """An active version's folder; a failed-quality one only when ``allow_failed``."""
    folder = _version_dir(root, name, version, active_only=True)
    manifest = Manifest.read(folder)
    if not manifest.quality_passed and not allow_failed:
        raise FailedQualityRefused(f"{manifest.name}@v{manifest.version}", manifest.quality_failed)
    return folder


def _names_with_versions(root: Path) -> list[str]:
    return [n for n in _names(root) if _versions(root / n)]


def _label_file(folder: Path) -> dict[str, object]:
    path = folder / LABEL_FILE
    return label_info({LABEL_FILE: path.read_bytes()}) if path.is_file() else {}


def _split_file(folder: Path, manifest: Manifest, split: str) -> Path:
    if not isinstance(split, str) or not _NAME.fullmatch(split):
        raise InvalidDatasetRef("split", split, f"a split name matching {NAME_PATTERN}")
    if split not in manifest.splits:
        where = f"split of {manifest.name}@v{manifest.version}"
        raise DatasetNotFound(where, split, sorted(manifest.splits))
    return folder / manifest.splits[split].file
