"""The live asset registry: versioned under the lake root, every change with who, when and why.

Layout under the lake root::

    registry/v000001.json, v000002.json, ...   one immutable file per version

Each file holds the whole registry document plus the change's author, time (UTC), reason, the
migration note of a change that re-types rows, and the version it was based on. Version 0 is
the packaged seed (``schemas/registry/alliance.toml``), used while no version is stored. A new
version is created with an exclusive create, so two concurrent changes cannot both become
version N: the second fails with :class:`RegistryConflict` and is re-run on top of the first.

All file access goes through the lake location's ``LakeFiles`` (``lake/location.py``), in the
``_read``/``_create``/``_list`` methods of :class:`RegistryStore`: the registry works on a local
lake root and on an object store (create-only puts) alike.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lake.errors import LakeError
from lake.location import LakeLocation
from maxlake.errors import ConfigError, MaxlakeError, TransientError
from maxlake.settings import Settings
from schemas import Registry, RegistryError, load_registry, parse_registry
from schemas.registry_diff import Change, diff_documents

__all__ = [
    "FixedRegistry",
    "LiveRegistry",
    "RegistryConflict",
    "RegistryStore",
    "RegistryVersion",
    "RetypeRefused",
    "registry_source",
]

logger = logging.getLogger(__name__)

REGISTRY_DIR = "registry"
_FILE = re.compile(r"^v([0-9]{6,9})\.json$")
_FORMAT = "maxlake.registry.version/1"


class RegistryConflict(LakeError, TransientError):
    """Another change became the version this one wanted to create; re-run it."""

    def __init__(self, version: int) -> None:
        super().__init__(
            f"registry version {version} was created by another change meanwhile; "
            "run the command again to apply yours on top of it"
        )
        self.version = version


class RetypeRefused(LakeError, ConfigError):
    """A change re-types existing rows (a tag's unit, a machine's type) without a migration note."""

    def __init__(self, changes: list[Change]) -> None:
        lines = "; ".join(f"{c.label} changes {c.retypes}" for c in changes)
        super().__init__(
            f"refused: {lines}. Rows already in the lake keep the old meaning. Add a new tag "
            "(or machine id) instead, or pass a migration note (--migration '...') that says "
            "how old and new rows are told apart"
        )
        self.changes = changes


@dataclass(frozen=True)
class RegistryVersion:
    """One version of the registry and the change that made it.

    Attributes:
        version: 0 for the packaged seed, then 1, 2, ...
        registry: the validated registry.
        author: who made the change ("" for the seed).
        at: when, ISO 8601 UTC ("" for the seed).
        reason: why.
        migration: the migration note of a re-typing change, else None.
        parent: the version this one was based on (None for the seed).
    """

    version: int
    registry: Registry
    author: str = ""
    at: str = ""
    reason: str = ""
    migration: str | None = None
    parent: int | None = None


class RegistryStore:
    """The registry versions under one lake root (local folder or object store)."""

    def __init__(self, lake: str | Path | LakeLocation, *, seed: Path | None = None) -> None:
        """Args:
        lake: the lake root, or its location (with object-store options).
        seed: the version-0 registry file (default: the packaged ``alliance.toml``).
        """
        self.location = LakeLocation.of(str(lake) if isinstance(lake, Path) else lake)
        self.files = self.location.files()
        self.folder = self.location.uri(REGISTRY_DIR)
        self.seed = seed

    # ------------------------------------------------------------------ file access
    def _list(self) -> list[int]:
        _, names = self.files.list(REGISTRY_DIR)
        return sorted(int(m.group(1)) for n in names if (m := _FILE.match(n)))

    def _read(self, version: int) -> bytes:
        return self.files.read_bytes(f"{REGISTRY_DIR}/v{version:06d}.json")

    def _create(self, version: int, data: bytes) -> bool:
        """Write a new version file; False when it exists already."""
        try:
            self.files.write_bytes(f"{REGISTRY_DIR}/v{version:06d}.json", data, mode="create")
        except FileExistsError:
            return False
        return True

    # ------------------------------------------------------------------ API
    def latest_version(self) -> int:
        """The newest version number; 0 when only the packaged seed exists."""
        versions = self._list()
        return versions[-1] if versions else 0

    def versions(self) -> list[int]:
        """Every version number, 0 (the seed) first."""
        return [0, *self._list()]

    def get(self, version: int | None = None) -> RegistryVersion:
        """One version (default the newest).

        Raises:
            ConfigError: no such version.
            RegistryError: the stored file is unreadable or invalid.
        """
        wanted = self.latest_version() if version is None else version
        if wanted == 0:
            registry = load_registry(self.seed)
            return RegistryVersion(0, registry, reason="packaged seed")
        if wanted not in self._list():
            raise ConfigError(
                f"registry version {wanted} does not exist (versions 0..{self.latest_version()})"
            )
        source = f"{self.folder}/v{wanted:06d}.json"
        try:
            doc = json.loads(self._read(wanted))
        except (OSError, ValueError) as exc:
            raise RegistryError(source, "file", f"cannot read: {exc}") from exc
        if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
            raise RegistryError(source, "format", f"expected {_FORMAT!r}")
        return RegistryVersion(
            version=wanted,
            registry=parse_registry(doc["registry"], source=f"{source}#registry"),
            author=str(doc.get("author", "")),
            at=str(doc.get("at", "")),
            reason=str(doc.get("reason", "")),
            migration=doc.get("migration"),
            parent=doc.get("parent"),
        )

    def history(self) -> list[RegistryVersion]:
        """Every version, oldest first."""
        return [self.get(v) for v in self.versions()]

    def plan(self, document: Mapping[str, Any], *, base: RegistryVersion) -> list[Change]:
        """The changes from ``base`` to ``document`` (validated first).

        Raises:
            RegistryError: ``document`` is not a valid registry (location named).
        """
        parse_registry(document, source="<new version>")
        return diff_documents(base.registry.document(), document)

    def commit(
        self,
        document: Mapping[str, Any],
        *,
        base: RegistryVersion,
        author: str,
        reason: str,
        migration: str | None = None,
    ) -> RegistryVersion:
        """Store ``document`` as version ``base.version + 1``.

        Raises:
            RegistryError: ``document`` is invalid.
            RetypeRefused: it re-types rows and ``migration`` is empty.
            ConfigError: ``reason`` or ``author`` is empty, or nothing changes.
            RegistryConflict: another change created that version first (transient).
        """
        if not reason.strip() or not author.strip():
            raise ConfigError("a registry change needs an author and a reason (--reason '...')")
        registry = parse_registry(document, source="<new version>")
        normal = registry.document()
        changes = diff_documents(base.registry.document(), normal)
        if not changes:
            raise ConfigError(f"nothing to change: the document equals version {base.version}")
        retyping = [c for c in changes if c.retypes]
        if retyping and not (migration and migration.strip()):
            raise RetypeRefused(retyping)
        version = base.version + 1
        entry = {
            "format": _FORMAT,
            "version": version,
            "parent": base.version,
            "author": author,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "reason": reason,
            "migration": migration or None,
            "changes": [str(c) for c in changes],
            "registry": normal,
        }
        data = json.dumps(entry, indent=1, ensure_ascii=False).encode("utf-8")
        if not self._create(version, data):
            raise RegistryConflict(version)
        return self.get(version)


class LiveRegistry:
    """The newest registry version, re-checked at most every ``poll_s`` seconds.

    A worker calls :meth:`current` before each batch; a new version is therefore used at most
    ``poll_s`` seconds (plus one batch) after it was stored. Thread-safe.
    """

    def __init__(
        self,
        store: RegistryStore,
        *,
        poll_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.poll_s = poll_s
        self._clock = clock
        self._lock = threading.Lock()
        self._current = store.get()
        self._checked = clock()

    def current(self) -> RegistryVersion:
        """The newest version known; looks for a newer one when ``poll_s`` has passed.

        A version that cannot be read (storage hiccup) is logged and the known one kept; the
        next poll tries again.
        """
        with self._lock:
            now = self._clock()
            if now - self._checked >= self.poll_s:
                self._checked = now
                try:
                    latest = self.store.latest_version()
                    if latest != self._current.version:
                        self._current = self.store.get(latest)
                        logger.info("asset registry version %d in use", latest)
                except (OSError, MaxlakeError) as exc:
                    logger.warning(
                        "registry poll failed, keeping version %d: %s", self._current.version, exc
                    )
            return self._current

    def snapshot(self) -> tuple[int | None, Registry]:
        """``(version, registry)`` of :meth:`current`."""
        current = self.current()
        return current.version, current.registry


class FixedRegistry:
    """A registry that never changes (a file given with ``--registry``); version None."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def snapshot(self) -> tuple[int | None, Registry]:
        """``(None, registry)``: a file has no registry version."""
        return None, self.registry


def registry_source(
    settings: Settings, *, registry_file: Path | None = None
) -> LiveRegistry | FixedRegistry:
    """The registry a worker or a replay validates with.

    ``registry_file`` (or ``settings.registry_file``) fixes it to one TOML file; otherwise it
    is the live registry under ``settings.lake_root``, polled every ``settings.registry_poll_s``.

    Raises:
        RegistryError: the file or the newest stored version is invalid.
    """
    path = registry_file or settings.registry_file
    if path is not None:
        return FixedRegistry(load_registry(path))
    store = RegistryStore(LakeLocation.from_settings(settings))
    return LiveRegistry(store, poll_s=settings.registry_poll_s)
