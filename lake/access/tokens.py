"""Expiring tokens of a principal, issued for Delta Sharing profile files.

A principal's own token (shown once at ``access principal add``) never expires. A profile token
is a second kind: issued by ``maxlake access profile``, valid until its ``expires_at``, stored
like the principal's token (key id, salt, scrypt hash, never the token) in ``tokens.json`` of
the access folder. Removing the principal ends its profile tokens too (the token names the
principal, and authentication looks the principal up afterwards).

Rotation: issue a new profile with ``replace=True``; every earlier profile token of that
principal stops working at once.
"""

from __future__ import annotations

import fcntl
import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from lake.access._jsonfile import write_private_json
from lake.access.errors import PrincipalError

__all__ = ["ProfileToken", "TokenStore", "format_time", "new_key_id"]

_FILE = "tokens.json"


def format_time(moment: datetime) -> str:
    """RFC 3339 / ISO 8601 UTC with a ``Z`` and milliseconds (``2026-12-30T14:00:00.000Z``)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class ProfileToken:
    """One issued profile token (its hash, not the token).

    Attributes:
        key_id: public half of the token (16 hex characters).
        principal: the principal it authenticates as.
        salt: hex salt of the hash.
        token_hash: hex scrypt hash of the secret.
        created_at: RFC 3339 UTC.
        expires_at: RFC 3339 UTC; the token is refused from then on.
    """

    key_id: str
    principal: str
    salt: str
    token_hash: str
    created_at: str
    expires_at: str

    def expired(self, now: datetime | None = None) -> bool:
        """Whether ``now`` (default: the current time) is at or past ``expires_at``."""
        moment = now or datetime.now(UTC)
        return moment >= datetime.fromisoformat(self.expires_at.replace("Z", "+00:00"))


class TokenStore:
    """Profile tokens in ``<root>/tokens.json`` (rewritten atomically under a lock)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @property
    def path(self) -> Path:
        """The tokens file."""
        return self.root / _FILE

    def add(self, token: ProfileToken, *, replace: bool = False) -> list[str]:
        """Store ``token``; with ``replace``, drop the principal's earlier tokens.

        Returns:
            The key ids dropped.
        """
        with self._locked() as table:
            dropped = []
            if replace:
                dropped = [k for k, t in table.items() if t.principal == token.principal]
                for key_id in dropped:
                    del table[key_id]
            table[token.key_id] = token
            return dropped

    def get(self, key_id: str) -> ProfileToken | None:
        """The token with ``key_id``, or None."""
        return self._read().get(key_id)

    def of(self, principal: str) -> list[ProfileToken]:
        """The tokens of ``principal``, oldest first."""
        return sorted(
            (t for t in self._read().values() if t.principal == principal),
            key=lambda t: t.created_at,
        )

    def remove_principal(self, principal: str) -> int:
        """Drop every token of ``principal``; returns how many."""
        with self._locked() as table:
            gone = [k for k, t in table.items() if t.principal == principal]
            for key_id in gone:
                del table[key_id]
            return len(gone)

    def _read(self) -> dict[str, ProfileToken]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        try:
            doc = cast(dict[str, dict[str, Any]], json.loads(raw)["tokens"])
            return {key: ProfileToken(**entry) for key, entry in doc.items()}
        except (ValueError, KeyError, TypeError) as exc:
            raise PrincipalError(f"{self.path}: not a profile tokens file: {exc}") from exc

    @contextmanager
    def _locked(self) -> Iterator[dict[str, ProfileToken]]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".tokens.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            table = self._read()
            yield table
            write_private_json(self.path, {"tokens": {k: asdict(t) for k, t in table.items()}})


def new_key_id() -> str:
    """A random public key id (16 hex characters)."""
    return secrets.token_hex(8)
