"""Per-contract pseudonym keys, held in one JSON file outside the repository.

The file maps contract id -> key (64 hex characters, 32 random bytes)::

    {"northwind-pm": "4f1c...e9"}

It must be readable by its owner only (mode 0600): a key is what turns pseudonyms back into
names (by trying every known name), so whoever holds it can re-identify the contract's rows.
Keys never appear in logs, errors, manifests or the audit table.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import stat
from pathlib import Path

from lake.sharing.errors import SecretError
from maxlake.redact import register_secret

__all__ = ["KeyRing"]

_KEY = re.compile(r"^[0-9a-f]{64}$")


class KeyRing:
    """The pseudonym keys of the file at ``path``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def key(self, contract_id: str) -> bytes:
        """The key of ``contract_id``.

        Raises:
            SecretError: the file is missing, readable by others, malformed, or has no key.
        """
        keys = self._load()
        value = keys.get(contract_id)
        if value is None:
            raise SecretError(
                f"{self.path}: no pseudonym key for contract {contract_id!r} "
                "(`maxlake contracts add` creates one)"
            )
        register_secret(value)
        return bytes.fromhex(value)

    def ensure(self, contract_id: str) -> bool:
        """Create a random key for ``contract_id`` unless one exists; True when created."""
        keys = self._load() if self.path.exists() else {}
        if contract_id in keys:
            return False
        keys[contract_id] = secrets.token_hex(32)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(keys, fh, indent=2, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)
        return True

    def _load(self) -> dict[str, str]:
        try:
            mode = self.path.stat().st_mode
        except OSError as exc:
            raise SecretError(
                f"{self.path}: cannot read the pseudonym key file: {exc.strerror}"
            ) from exc
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SecretError(
                f"{self.path}: the pseudonym key file is accessible by group or others "
                f"(mode {stat.S_IMODE(mode):o}); run chmod 600 on it"
            )
        try:
            doc = json.loads(self.path.read_bytes())
        except (OSError, ValueError) as exc:
            raise SecretError(f"{self.path}: not a JSON object of contract keys") from exc
        if not isinstance(doc, dict):
            raise SecretError(f"{self.path}: not a JSON object of contract keys")
        for cid, value in doc.items():
            if not isinstance(value, str) or not _KEY.fullmatch(value):
                raise SecretError(f"{self.path}: the key of {cid!r} is not 64 hex characters")
        return {str(k): str(v) for k, v in doc.items()}
