"""The lake location: a root that is a local path or an object-store URI, plus storage options.

Every file maxlake keeps goes through one :class:`LakeLocation`: Delta tables are opened by
:class:`lake.delta.DeltaStore` on ``location.uri(name)`` with ``location.storage_options``, and
plain files (manifests, registry, contracts, principals, audit exports) are read and written
through :meth:`LakeLocation.files`, a :class:`LakeFiles` that works the same on a local folder
and on ``s3://``, ``gs://`` or ``az://`` (through obstore, which wraps the same Rust
``object_store`` crate as delta-rs, so one set of storage options serves both).

Secrets (pseudonym keys) never live on an object store: :meth:`LakeLocation.local_path` raises
:class:`~lake.errors.LocationError` for a remote root, naming the setting to point elsewhere.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal, cast

import obstore
from obstore.exceptions import AlreadyExistsError, NotFoundError, PreconditionError
from obstore.store import from_url

from lake.errors import LocationError
from maxlake.locations import OBJECT_STORE_SCHEMES, is_object_store, normalize_location

if TYPE_CHECKING:
    from maxlake.settings import Settings

__all__ = ["OBJECT_STORE_SCHEMES", "LakeFiles", "LakeLocation"]

_CLIENT_OPTIONS = {
    "allow_http",
    "allow_invalid_certificates",
    "connect_timeout",
    "timeout",
    "proxy_url",
    "pool_idle_timeout",
}
_DELTA_ONLY_OPTIONS = {"aws_s3_allow_unsafe_rename", "aws_s3_locking_provider"}
_PREFIX = {"s3": "aws_", "s3a": "aws_", "gs": "google_", "az": "azure_", "abfs": "azure_"}
_UPDATE_ATTEMPTS = 20

WriteMode = Literal["overwrite", "create"]


@dataclass(frozen=True)
class LakeLocation:
    """Where the lake lives.

    Attributes:
        root: a local folder (relative or absolute) or an object-store URI such as
            ``s3://bucket/lake``; no trailing slash.
        storage_options: delta-rs/object_store options (``AWS_ENDPOINT_URL``, ``AWS_REGION``,
            credentials, ...); empty for a local root or for credentials from the environment.
    """

    root: str
    storage_options: Mapping[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        try:
            root = normalize_location(str(self.root), what="lake root")
        except ValueError as exc:
            raise LocationError(str(exc)) from exc
        object.__setattr__(self, "root", root)
        object.__setattr__(self, "storage_options", dict(self.storage_options))

    @classmethod
    def of(
        cls, root: str | Path | LakeLocation, storage_options: Mapping[str, str] | None = None
    ) -> LakeLocation:
        """``root`` as a location (a location is returned as it is)."""
        if isinstance(root, LakeLocation):
            return root
        return cls(str(root), storage_options or {})

    @classmethod
    def from_settings(cls, settings: Settings) -> LakeLocation:
        """``MAXLAKE_LAKE_ROOT`` with ``MAXLAKE_LAKE_STORAGE_OPTIONS``."""
        options = {k: v.get_secret_value() for k, v in settings.lake_storage_options.items()}
        return cls(settings.lake_root, options)

    @classmethod
    def area(cls, settings: Settings, configured: str | None, *parts: str) -> LakeLocation:
        """A file area that may live apart from the lake (contracts, principals, curated sets).

        Args:
            settings: the lake root and its storage options.
            configured: the area's setting (a local path or an object-store URI, reached with
                the lake's storage options); None = ``parts`` under the lake root.
            parts: the default folder under the lake root.
        """
        lake = cls.from_settings(settings)
        if configured is None:
            return lake.child(*parts)
        return cls(configured, lake.storage_options)

    @classmethod
    def file_of(cls, settings: Settings, path: str | Path) -> tuple[LakeLocation, str]:
        """The folder and name of a file given as a local path or an object-store URI (reached
        with the lake's storage options), for :meth:`files`.

        Raises:
            LocationError: the path is empty or an unsupported URI.
        """
        try:
            text = normalize_location(str(path), what="file")
        except ValueError as exc:
            raise LocationError(str(exc)) from exc
        folder, _, name = text.rpartition("/")
        if not folder:
            folder = "/" if text.startswith("/") else "."
        return cls.area(settings, folder), name

    @property
    def is_local(self) -> bool:
        """Whether the root is a local folder."""
        return not is_object_store(self.root)

    def uri(self, *parts: str) -> str:
        """The URI (or local path) of ``parts`` joined under the root."""
        return "/".join([self.root, *(p.strip("/") for p in parts if p)])

    def child(self, *parts: str) -> LakeLocation:
        """The location of the folder ``parts`` under the root, with the same storage options."""
        return LakeLocation(self.uri(*parts), self.storage_options)

    def local_path(self, *parts: str, setting: str) -> Path:
        """The local path of ``parts`` under the root.

        Args:
            parts: path segments under the root.
            setting: the environment variable that points the file elsewhere, named in the
                error.

        Raises:
            LocationError: the root is an object store.
        """
        if not self.is_local:
            raise LocationError(
                f"{'/'.join(parts)} cannot live under the object-store lake root {self.root!r}: "
                f"set {setting} to a local path"
            )
        return Path(self.root, *parts)

    def files(self) -> LakeFiles:
        """Plain files under the root."""
        return LakeFiles(self)

    def describe(self) -> str:
        """The root for messages and logs (never the storage options)."""
        return self.root


class LakeFiles:
    """Small plain files under a lake root, by ``/``-separated path relative to the root.

    Writes are atomic (a reader sees the old or the new content, never a mix). Local files are
    written with mode 0600 through a temporary file and ``os.replace``; object-store puts are
    atomic by themselves.
    """

    def __init__(self, location: LakeLocation) -> None:
        self.location = location
        self._store: Any = None

    def read_bytes(self, path: str) -> bytes:
        """The content of ``path``.

        Raises:
            FileNotFoundError: there is no such file.
        """
        return self._read(path)[0]

    def exists(self, path: str) -> bool:
        """Whether file ``path`` exists."""
        if self.location.is_local:
            return self._local(path).is_file()

        try:
            obstore.head(self._obstore(), self._key(path))
        except (FileNotFoundError, NotFoundError):
            return False
        return True

    def write_bytes(self, path: str, data: bytes, *, mode: WriteMode = "overwrite") -> None:
        """Write ``data`` to ``path`` atomically.

        Args:
            path: relative path; parent folders are created as needed.
            data: the full content.
            mode: ``create`` refuses to replace an existing file.

        Raises:
            FileExistsError: ``mode="create"`` and the file exists.
        """
        if self.location.is_local:
            self._write_local(path, data, exclusive=mode == "create")
            return

        try:
            obstore.put(self._obstore(), self._key(path), data, mode=mode)
        except (AlreadyExistsError, PreconditionError) as exc:
            raise FileExistsError(self.location.uri(path)) from exc

    def put_file(self, path: str, source: Path) -> None:
        """Copy the local file ``source`` to ``path`` atomically, streamed (large files are
        multipart uploads on an object store); an existing file is replaced."""
        if self.location.is_local:
            with open(source, "rb") as data:
                self._write_local(path, data, exclusive=False)
            return

        obstore.put(self._obstore(), self._key(path), source)

    def chunks(self, path: str, *, size: int = 1 << 20) -> Iterator[bytes]:
        """The content of ``path`` in pieces (about ``size`` bytes each), without holding the
        whole file.

        Raises:
            FileNotFoundError: there is no such file (raised on the first piece).
        """
        if self.location.is_local:
            with open(self._local(path), "rb") as handle:
                while block := handle.read(size):
                    yield block
            return

        try:
            result = obstore.get(self._obstore(), self._key(path))
        except (FileNotFoundError, NotFoundError) as exc:
            raise FileNotFoundError(self.location.uri(path)) from exc
        for block in result.stream(min_chunk_size=size):
            yield bytes(block)

    def update(self, path: str, change: Callable[[bytes | None], bytes]) -> bytes:
        """Read-modify-write ``path`` without losing a concurrent writer's change.

        ``change`` gets the current content (None when the file does not exist) and returns
        the new content; it may be called again when another writer got in first. Local files
        are updated under an exclusive ``flock``; object-store files by a conditional put
        (ETag match, or create-if-absent) retried on conflict.

        Returns:
            The content written.

        Raises:
            LocationError: the object store kept refusing the conditional put (20 attempts).
        """
        if self.location.is_local:
            with self._locked(path):
                try:
                    current: bytes | None = self._local(path).read_bytes()
                except FileNotFoundError:
                    current = None
                new = change(current)
                self._write_local(path, new, exclusive=False)
                return new

        for attempt in range(_UPDATE_ATTEMPTS):
            put_mode: Any
            try:
                data, etag = self._read(path)
                current, put_mode = data, {"e_tag": etag}
            except FileNotFoundError:
                current, put_mode = None, "create"
            new = change(current)
            try:
                obstore.put(self._obstore(), self._key(path), new, mode=put_mode)
            except (AlreadyExistsError, PreconditionError):
                time.sleep(0.02 * (attempt + 1))
                continue
            return new
        raise LocationError(
            f"{self.location.uri(path)}: {_UPDATE_ATTEMPTS} conditional writes in a row lost "
            "to other writers; retry later"
        )

    def list(self, prefix: str = "") -> tuple[list[str], list[str]]:
        """The folders and files directly under ``prefix``, by name, sorted."""
        if self.location.is_local:
            folder = self._local(prefix)
            if not folder.is_dir():
                return [], []
            entries = sorted(folder.iterdir())
            return (
                [e.name for e in entries if e.is_dir()],
                [e.name for e in entries if e.is_file()],
            )

        key = self._key(prefix).rstrip("/")
        listed = obstore.list_with_delimiter(self._obstore(), key or None)
        folders = sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in listed["common_prefixes"])
        files = sorted(o["path"].rsplit("/", 1)[-1] for o in listed["objects"])
        return folders, files

    def delete(self, path: str) -> None:
        """Remove file ``path``; a missing file is not an error."""
        if self.location.is_local:
            self._local(path).unlink(missing_ok=True)
            return

        try:
            obstore.delete(self._obstore(), self._key(path))
        except (FileNotFoundError, NotFoundError):
            return

    def _read(self, path: str) -> tuple[bytes, str | None]:
        if self.location.is_local:
            return self._local(path).read_bytes(), None

        try:
            result = obstore.get(self._obstore(), self._key(path))
        except (FileNotFoundError, NotFoundError) as exc:
            raise FileNotFoundError(self.location.uri(path)) from exc
        return bytes(result.bytes()), result.meta["e_tag"]

    def _local(self, path: str) -> Path:
        return Path(self.location.root, *[p for p in path.split("/") if p])

    def _key(self, path: str) -> str:
        return "/".join(p for p in path.split("/") if p)

    def _write_local(self, path: str, data: bytes | BinaryIO, *, exclusive: bool) -> None:
        target = self._local(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            if isinstance(data, bytes):
                handle.write(data)
            else:
                shutil.copyfileobj(data, handle, 1 << 20)
            handle.flush()
            os.fsync(handle.fileno())
        if exclusive:
            try:
                os.link(tmp, target)
            finally:
                tmp.unlink()
        else:
            os.replace(tmp, target)

    @contextmanager
    def _locked(self, path: str) -> Iterator[None]:
        target = self._local(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target.with_name(f".{target.name}.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _obstore(self) -> Any:
        if self._store is None:
            config, client = _obstore_options(self.location)
            self._store = from_url(
                self.location.root, config=cast(Any, config), client_options=cast(Any, client)
            )
        return self._store


def _obstore_options(location: LakeLocation) -> tuple[dict[str, str], dict[str, Any]]:
    """delta-rs storage options split into obstore's store config and client options."""
    scheme = location.root.split("://", 1)[0]
    prefix = _PREFIX.get(scheme, "azure_")
    config: dict[str, str] = {}
    client: dict[str, Any] = {}
    for key, value in location.storage_options.items():
        name = key.lower()
        if name in _DELTA_ONLY_OPTIONS:
            continue
        bare = name.removeprefix(prefix)
        if bare in _CLIENT_OPTIONS:
            client[bare] = value.lower() == "true" if bare.startswith("allow_") else value
        else:
            config[name if name.startswith(prefix) else prefix + name] = value
    return config, client
