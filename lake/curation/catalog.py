"""The dataset catalog: list, show, pull and load published dataset versions.

Datasets live under ``<curated area>/<name>/v<N>/``, a local folder or an object-store prefix
(see :mod:`lake.curation.area`).
Every name, version and split a caller passes is validated against a strict pattern before it
touches a path, so ``../x``, absolute paths or a NUL byte fail with an error that shows the valid
form; an unknown name, version or split fails with the list of what exists.
"""

from __future__ import annotations

import filecmp
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

from lake.curation.area import CuratedArea
from lake.curation.card import (
    LABEL_FILE,
    check_card_target,
    edited_card,
    label_info,
    write_card,
)
from lake.curation.errors import (
    DatasetNotFound,
    FailedQualityRefused,
    InvalidDatasetRef,
    PullTargetTaken,
    VersionRevoked,
)
from lake.curation.manifest import Manifest, file_sha256
from lake.curation.published import published_manifest_bytes
from lake.curation.spec import NAME_PATTERN
from maxlake.errors import TerminalError
from maxlake.settings import Settings

__all__ = [
    "DatasetSummary",
    "edited_pull_files",
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
LakeRoot = str | Path | Settings | CuratedArea | None
"""A lake root (its ``curated`` folder), settings (``MAXLAKE_CURATED_DIR``), a curated area,
or None for ``Settings()``."""


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
        warnings: failed advisory output checks of the ``latest`` version (published anyway;
            :func:`lake.curation.warnings.warning_lines` says each in words).
    """

    name: str
    versions: tuple[int, ...]
    latest: int | None
    description: str
    purpose: str
    failed_quality: tuple[int, ...] = ()
    warnings: int = 0


def parse_ref(ref: str) -> tuple[str, int | None]:
    """Split ``NAME[@VERSION]`` (``pm@3``, ``pm@v3``, ``pm``) into a checked name and version."""
    name, sep, version = ref.partition("@")
    return _check_name(name), _check_version(version) if sep else None


def list_datasets(lake_root: LakeRoot = None) -> list[DatasetSummary]:
    """Every dataset with at least one published version, by name."""
    area = _area(lake_root)
    out: list[DatasetSummary] = []
    for name in area.names():
        versions = area.versions(name)
        if not versions:
            continue
        manifests = {v: area.manifest(name, v) for v in versions}
        newest = manifests[versions[-1]]
        active = [v for v in versions if manifests[v].status == "active"]
        latest = active[-1] if active else None
        warned = manifests[latest].quality.get("warnings") if latest is not None else None
        out.append(
            DatasetSummary(
                name=name,
                versions=tuple(versions),
                latest=latest,
                description=str(newest.spec.get("description", "")),
                purpose=str(newest.spec.get("purpose", "")),
                failed_quality=tuple(v for v in versions if not manifests[v].quality_passed),
                warnings=len(warned or ()),
            )
        )
    return out


def show(
    name: str,
    version: int | str | None = None,
    *,
    lake_root: LakeRoot = None,
    newest_if_none_active: bool = False,
) -> Manifest:
    """The manifest of one version, revoked or not (default: the newest active one).

    Args:
        name: dataset name.
        version: ``N`` or ``vN``; None for the newest active version.
        lake_root: see :data:`LakeRoot`.
        newest_if_none_active: with ``version`` None and every version revoked, return the
            newest one (its ``status`` and ``status_reason`` say so) instead of raising.

    Raises:
        DatasetNotFound: no such dataset or version, or no active version (the message lists
            each version with its status).
    """
    area = _area(lake_root)
    return _version(area, name, version, active_only=False, newest=newest_if_none_active)


def pull(
    name: str,
    version: int | str | None,
    split: str,
    dest: str | Path,
    format: Literal["parquet", "arrow"] = "parquet",
    *,
    lake_root: LakeRoot = None,
    allow_failed_quality: bool = False,
    overwrite: bool = False,
) -> Path:
    """Copy one split (checked against the manifest's sha256) and the published manifest
    (:mod:`lake.curation.published`) into ``dest``.

    Files are named ``<name>-v<N>-<split>.parquet`` (or ``.arrow``, an Arrow IPC file) and
    ``<name>-v<N>.manifest.json``. A split file already there with the same bytes is left as
    it is (not rewritten); one with other bytes (edited, or not this split at all) is replaced
    only with ``overwrite``, else nothing is pulled. A Parquet pull
    also (re)writes the data card ``README.md`` listing every split of this version pulled into
    ``dest`` so far, so ``datasets.load_dataset(dest)`` reads them (one dataset per folder);
    a ``README.md`` in ``dest`` that is not a data card, or is another dataset's card, is never
    replaced. Like the split file, the manifest and this dataset's card are left as they are
    when identical to what the pull writes, and replaced only with ``overwrite`` when they hold
    other content (:func:`edited_pull_files`: a card the user added notes to, say); a card
    a pull wrote (listing fewer splits, or another version) is replaced.

    Returns:
        The path of the split file written.

    Raises:
        TerminalError: the stored split does not match its manifest hash (corrupt or altered),
            or ``dest`` holds a ``README.md`` that is not a data card or is the card of another
            dataset (nothing written).
        PullTargetTaken: ``dest`` already holds the split file's name, the manifest's or this
            dataset's card with other content and ``overwrite`` is False (nothing written);
            also for the ``README.md`` cases above.
        FailedQualityRefused: the version failed its output checks and
            ``allow_failed_quality`` is False.
    """
    if format not in ("parquet", "arrow"):
        raise InvalidDatasetRef("format", format, "'parquet' or 'arrow'")
    area = _area(lake_root)
    manifest = _readable(area, name, version, allow_failed_quality)
    source = _split_file(area, manifest, split)
    if file_sha256(source) != manifest.splits[split].sha256:
        where = area.describe(manifest.name, f"v{manifest.version}", manifest.splits[split].file)
        raise TerminalError(f"{where} does not match the sha256 in its manifest; not pulled")
    out_dir = Path(dest)
    check_card_target(out_dir, manifest.name, writes_card=format == "parquet")
    stem = f"{manifest.name}-v{manifest.version}"
    edited = edited_pull_files(out_dir, manifest, area, format=format)
    if edited and not overwrite:
        raise PullTargetTaken(
            f"{' and '.join(str(p) for p in edited)} exist{'s' if len(edited) == 1 else ''} "
            f"with other content than the pull of {manifest.name}@v{manifest.version} wrote "
            "(edited, or written by an older maxlake); nothing pulled: --overwrite replaces "
            "them (copy your notes elsewhere first), or pull into another folder with --out DIR"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{stem}-{split}.{format}"
    tmp = out_dir / f".{target.name}.tmp"
    if format == "parquet":
        shutil.copyfile(source, tmp)
    else:
        parquet = pq.ParquetFile(source)
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, parquet.schema_arrow) as w:
            for batch in parquet.iter_batches(batch_size=65_536):
                w.write_batch(batch)
    if target.is_file() and filecmp.cmp(tmp, target, shallow=False):
        tmp.unlink()
    elif target.exists() and not overwrite:
        tmp.unlink()
        raise PullTargetTaken(
            f"{target} exists with other content than {manifest.name}@v{manifest.version} "
            f"split {split} (edited, or another file of that name); nothing pulled: "
            "--overwrite replaces it, or pull into another folder with --out DIR"
        )
    else:
        os.replace(tmp, target)
    manifest_file = out_dir / f"{stem}.manifest.json"
    published = published_manifest_bytes(manifest)
    if not (manifest_file.is_file() and manifest_file.read_bytes() == published):
        manifest_file.write_bytes(published)
    if format == "parquet":
        pulled = {
            name: f"{stem}-{name}.parquet"
            for name in manifest.splits
            if (out_dir / f"{stem}-{name}.parquet").is_file()
        }
        write_card(out_dir, manifest, pulled, label=_label_file(area, manifest))
    return target


def edited_pull_files(
    dest: str | Path,
    manifest: Manifest,
    lake_root: LakeRoot = None,
    *,
    format: Literal["parquet", "arrow"] = "parquet",
) -> list[Path]:
    """The files a :func:`pull` of ``manifest``'s version into ``dest`` would rewrite that hold
    other content than a pull wrote: the ``<name>-v<N>.manifest.json`` and, for a Parquet pull,
    this dataset's data card ``README.md`` (:func:`edited_card`). A pull refuses them unless
    ``overwrite``; the split file itself is compared by :func:`pull`."""
    area = _area(lake_root)
    out_dir = Path(dest)
    found = []
    manifest_file = out_dir / f"{manifest.name}-v{manifest.version}.manifest.json"
    if manifest_file.is_file() and manifest_file.read_bytes() != published_manifest_bytes(manifest):
        found.append(manifest_file)
    card = edited_card(out_dir, area, manifest) if format == "parquet" else None
    if card is not None:
        found.append(card)
    return found


def load(
    name: str,
    version: int | str | None = None,
    split: str = "train",
    *,
    lake_root: LakeRoot = None,
    allow_failed_quality: bool = False,
) -> pl.DataFrame:
    """One split in memory (default: the newest active version's ``train``).

    Raises:
        DatasetNotFound: no such dataset, version or split, or no active version when
            ``version`` is None (the message lists the versions and their status).
        VersionRevoked: ``version`` was revoked (a ``TerminalError``).
        FailedQualityRefused: the version failed its output checks and
            ``allow_failed_quality`` is False.
    """
    area = _area(lake_root)
    manifest = _readable(area, name, version, allow_failed_quality)
    return pl.read_parquet(_split_file(area, manifest, split))


def iter_batches(
    name: str,
    version: int | str | None = None,
    split: str = "train",
    batch_rows: int = 100_000,
    *,
    lake_root: LakeRoot = None,
    allow_failed_quality: bool = False,
) -> Iterator[pl.DataFrame]:
    """One split as frames of at most ``batch_rows`` rows, in file order, for sets larger
    than memory (only one batch is held at a time). Failed-quality versions as :func:`load`."""
    if batch_rows < 1:
        raise InvalidDatasetRef("batch_rows", batch_rows, "a positive integer")
    area = _area(lake_root)
    manifest = _readable(area, name, version, allow_failed_quality)
    return _batches(_split_file(area, manifest, split), batch_rows)


def _batches(path: Path, batch_rows: int) -> Iterator[pl.DataFrame]:
    parquet = pq.ParquetFile(path)
    for batch in parquet.iter_batches(batch_size=batch_rows):
        frame = pl.from_arrow(batch)
        assert isinstance(frame, pl.DataFrame)
        yield frame


def _area(lake_root: LakeRoot) -> CuratedArea:
    return CuratedArea.of(Settings() if lake_root is None else lake_root)


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


def _version(
    area: CuratedArea,
    name: str,
    version: int | str | None,
    *,
    active_only: bool,
    newest: bool = False,
) -> Manifest:
    """The manifest of ``name`` at ``version`` (None: the newest active one, or with
    ``newest`` the newest one when none is active)."""
    name = _check_name(name)
    wanted = None if version is None else _check_version(version)
    versions = area.versions(name)
    if not versions:
        raise DatasetNotFound("dataset", name, [n for n in area.names() if area.versions(n)])
    if wanted is None:
        seen: list[Manifest] = []
        for candidate in reversed(versions):
            manifest = area.manifest(name, candidate)
            if manifest.status == "active":
                return manifest
            seen.append(manifest)
        if newest:
            return seen[0]
        raise DatasetNotFound(
            f"active version of {name}",
            "latest",
            [f"v{m.version} ({m.status})" for m in reversed(seen)],
            suggest=False,
        )
    if wanted not in versions:
        raise DatasetNotFound(
            f"version of {name}", f"v{wanted}", [f"v{v}" for v in versions], suggest=False
        )
    manifest = area.manifest(name, wanted)
    if active_only and manifest.status != "active":
        raise VersionRevoked(f"{name}@v{wanted}", manifest.status, manifest.status_reason)
    return manifest


def _readable(
    area: CuratedArea, name: str, version: int | str | None, allow_failed: bool
) -> Manifest:
    """An active version's manifest; a failed-quality one only when ``allow_failed``."""
    manifest = _version(area, name, version, active_only=True)
    if not manifest.quality_passed and not allow_failed:
        raise FailedQualityRefused(f"{manifest.name}@v{manifest.version}", manifest.quality_failed)
    return manifest


def _label_file(area: CuratedArea, manifest: Manifest) -> dict[str, object]:
    try:
        data = area.read_bytes(manifest.name, manifest.version, LABEL_FILE)
    except FileNotFoundError:
        return {}
    return label_info({LABEL_FILE: data})


def _split_file(area: CuratedArea, manifest: Manifest, split: str) -> Path:
    """A local file with the bytes of ``split`` (see :meth:`CuratedArea.local_file`)."""
    if not isinstance(split, str) or not _NAME.fullmatch(split):
        raise InvalidDatasetRef("split", split, f"a split name matching {NAME_PATTERN}")
    if split not in manifest.splits:
        where = f"split of {manifest.name}@v{manifest.version}"
        raise DatasetNotFound(where, split, sorted(manifest.splits))
    info = manifest.splits[split]
    return area.local_file(manifest.name, manifest.version, info.file, info.sha256)
