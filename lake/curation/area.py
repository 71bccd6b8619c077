"""The curated area: published dataset versions under one location, a local folder or an
object-store prefix (``MAXLAKE_CURATED_DIR``, default ``<lake_root>/curated``).

Layout: ``<area>/<name>/v<N>/`` holds one Parquet file per split, the job's extra files, the
data card ``README.md`` and ``manifest.json``. A version exists for readers only once its
``manifest.json`` does, and the manifest is always written last:

* a build reserves ``N`` first (:meth:`CuratedArea.reserve`): on a local folder by creating
  ``<name>/.building-v<N>`` (an atomic ``mkdir``), which is also where the build writes; on
  an object store by a create-if-absent put of the marker object ``<name>/.building-v<N>``,
  the build writing into a local temporary folder;
* :meth:`CuratedArea.publish` renames the local staging folder to ``v<N>``, or uploads every
  file and then ``manifest.json`` (create-if-absent) and removes the marker.

So two builds never get the same number, a reader never sees half a version, and a crashed
build leaves a gap in the numbers. Files are read through :class:`lake.location.LakeFiles`;
a split needed as a local file (Parquet readers, the HTTP server) is the file itself on a
local area and, on an object store, a copy in a local cache named by its sha256
(:meth:`CuratedArea.local_file`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lake.curation.manifest import MANIFEST_FILE, Manifest
from lake.curation.spec import NAME_PATTERN
from lake.location import LakeLocation
from maxlake.errors import TerminalError
from maxlake.settings import Settings

__all__ = ["CURATED_DIR", "CuratedArea", "Staging"]

CURATED_DIR = "curated"
"""Folder of the curated datasets under the lake root."""

DEFAULT_CACHE = Path(".maxlake/curated-cache")
_NAME = re.compile(NAME_PATTERN)
_VERSION_DIR = re.compile(r"^v([1-9][0-9]{0,8})$")
_STAGING = re.compile(r"^\.building-v([1-9][0-9]{0,8})$")


@dataclass(frozen=True)
class Staging:
    """A reserved version being built.

    Attributes:
        name: dataset name.
        version: the reserved version number.
        folder: the local folder the build writes into.
    """

    name: str
    version: int
    folder: Path


class CuratedArea:
    """Published dataset versions under one location (see the module docstring).

    Args:
        location: the curated folder itself (not the lake root).
        cache_dir: local folder of verified copies of split files read from an object store.
    """

    def __init__(self, location: str | Path | LakeLocation, *, cache_dir: Path = DEFAULT_CACHE):
        self.location = LakeLocation.of(location)
        self.files = self.location.files()
        self.cache_dir = cache_dir

    @classmethod
    def of(cls, lake_root: str | Path | LakeLocation | Settings | CuratedArea) -> CuratedArea:
        """The curated area of a lake: from settings ``MAXLAKE_CURATED_DIR`` (a local path or
        an object-store URI) or ``<lake_root>/curated``; for a lake root, ``<root>/curated``."""
        if isinstance(lake_root, CuratedArea):
            return lake_root
        if isinstance(lake_root, Settings):
            where = LakeLocation.area(lake_root, lake_root.curated_dir, CURATED_DIR)
            return cls(where, cache_dir=lake_root.curated_cache_dir)
        return cls(LakeLocation.of(lake_root).child(CURATED_DIR))

    def describe(self, *parts: str) -> str:
        """The URI or path of ``parts`` under the area, for messages."""
        return self.location.uri(*parts)

    def names(self) -> list[str]:
        """Dataset folders (valid names only), sorted."""
        folders, _ = self.files.list()
        return [n for n in folders if _NAME.fullmatch(n)]

    def versions(self, name: str) -> list[int]:
        """Published versions of ``name`` (``v<N>`` with a manifest), ascending."""
        folders, _ = self.files.list(name)
        found = []
        for entry in folders:
            match = _VERSION_DIR.fullmatch(entry)
            if match and self.files.exists(f"{name}/{entry}/{MANIFEST_FILE}"):
                found.append(int(match.group(1)))
        return sorted(found)

    def manifest(self, name: str, version: int) -> Manifest:
        """The stored manifest of ``name`` v``version``.

        Raises:
            TerminalError: it is missing or unreadable.
        """
        path = f"{name}/v{version}/{MANIFEST_FILE}"
        try:
            data = self.files.read_bytes(path)
        except OSError as exc:
            raise TerminalError(f"{self.describe(path)}: not a readable dataset manifest") from exc
        return Manifest.parse(data, self.describe(path))

    def rewrite_manifest(self, manifest: Manifest) -> None:
        """Replace a published version's manifest atomically (a status change)."""
        self.files.write_bytes(
            f"{manifest.name}/v{manifest.version}/{MANIFEST_FILE}", manifest.to_json()
        )

    def read_bytes(self, name: str, version: int, file: str) -> bytes:
        """A (small) file of a published version.

        Raises:
            FileNotFoundError: there is no such file.
        """
        return self.files.read_bytes(f"{name}/v{version}/{file}")

    def local_file(self, name: str, version: int, file: str, sha256: str) -> Path:
        """A local file holding the bytes of a published version's ``file``.

        On a local area, the file itself. On an object store, a copy in ``cache_dir`` named
        by the sha256 of its bytes: taken from the cache when one named ``sha256`` exists,
        else downloaded (streamed) and named by the sha256 of what arrived, so a caller that
        checks the bytes against ``sha256`` sees a stored file that changed. Cache folders are
        created with mode 0700 and files with 0600 (they hold the sets' data).
        """
        if self.location.is_local:
            return Path(self.location.root, name, f"v{version}", file)
        cached = self.cache_dir / sha256[:2] / sha256
        if cached.is_file():
            return cached
        self.cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = self.cache_dir / f".{uuid.uuid4().hex}.{os.getpid()}.{threading.get_ident()}.tmp"
        digest = hashlib.sha256()
        try:
            with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
                for block in self.files.chunks(f"{name}/v{version}/{file}"):
                    digest.update(block)
                    out.write(block)
            actual = self.cache_dir / digest.hexdigest()[:2] / digest.hexdigest()
            actual.parent.mkdir(mode=0o700, exist_ok=True)
            os.replace(tmp, actual)
        finally:
            tmp.unlink(missing_ok=True)
        return actual

    def reserve(self, name: str) -> Staging:
        """Reserve the next free version of ``name`` and a local folder to build it in."""
        while True:
            folders, files = self.files.list(name)
            taken = [0]
            for entry in (*folders, *files):
                match = _VERSION_DIR.fullmatch(entry) or _STAGING.fullmatch(entry)
                if match:
                    taken.append(int(match.group(1)))
            version = max(taken) + 1
            marker = f"{name}/.building-v{version}"
            try:
                if self.location.is_local:
                    folder = Path(self.location.root, marker)
                    folder.parent.mkdir(parents=True, exist_ok=True)
                    folder.mkdir()
                    return Staging(name, version, folder)
                self.files.write_bytes(marker, b"", mode="create")
            except FileExistsError:
                continue
            folder = Path(tempfile.mkdtemp(prefix=f"maxlake-{name}-v{version}-"))
            return Staging(name, version, folder)

    def publish(self, staging: Staging) -> None:
        """Make a staged version visible: every file first, ``manifest.json`` last.

        Raises:
            TerminalError: the version already exists (a published version is never replaced).
        """
        final = f"{staging.name}/v{staging.version}"
        if self.files.exists(f"{final}/{MANIFEST_FILE}"):
            raise TerminalError(
                f"{self.describe(final)} already exists; a published version is never replaced"
            )
        if self.location.is_local:
            staging.folder.rename(Path(self.location.root, final))
            return
        names = sorted(p.name for p in staging.folder.iterdir() if p.name != MANIFEST_FILE)
        for file in names:
            self.files.put_file(f"{final}/{file}", staging.folder / file)
        manifest = (staging.folder / MANIFEST_FILE).read_bytes()
        try:
            self.files.write_bytes(f"{final}/{MANIFEST_FILE}", manifest, mode="create")
        except FileExistsError as exc:
            raise TerminalError(
                f"{self.describe(final)} already exists; a published version is never replaced"
            ) from exc
        self.files.delete(f"{staging.name}/.building-v{staging.version}")
        shutil.rmtree(staging.folder, ignore_errors=True)

    def abandon(self, staging: Staging) -> None:
        """Drop a staged version that will not be published (its number may be taken again)."""
        shutil.rmtree(staging.folder, ignore_errors=True)
        if self.location.is_local:
            return
        final = f"{staging.name}/v{staging.version}"
        if not self.files.exists(f"{final}/{MANIFEST_FILE}"):
            for file in self.files.list(final)[1]:
                self.files.delete(f"{final}/{file}")
        self.files.delete(f"{staging.name}/.building-v{staging.version}")

    def published(self) -> Iterator[tuple[str, int, dict[str, Any]]]:
        """Every published version as (name, version, stored manifest JSON object)."""
        for name in self.names():
            for version in self.versions(name):
                try:
                    doc = json.loads(self.read_bytes(name, version, MANIFEST_FILE))
                except (OSError, ValueError):
                    continue
                if isinstance(doc, dict):
                    yield name, version, doc
