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

import json
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

from lake.access._jsonfile import private_json
from lake.access.errors import PrincipalError
from lake.location import LakeLocation

__all__ = ["ProfileToken", "TokenStore", "format_time", "new_key_id"]

_FILE = "tokens.json"
_T = TypeVar("_T")


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
    """Profile tokens in ``<root>/tokens.json`` (rewritten atomically, without losing a
    concurrent change: under a lock locally, by a conditional put on an object store)."""

    def __init__(self, root: str | Path | LakeLocation) -> None:
        self.location = LakeLocation.of(str(root) if isinstance(root, Path) else root)
        self.files = self.location.files()

    @property
    def uri(self) -> str:
        """The tokens file (a path or a URI)."""
        return self.location.uri(_FILE)

    def add(self, token: ProfileToken, *, replace: bool = False) -> list[str]:
        """Store ``token``; with ``replace``, drop the principal's earlier tokens.

        Returns:
            The key ids dropped.
        """

        def add(table: dict[str, ProfileToken]) -> list[str]:
            dropped = []
            if replace:
                dropped = [k for k, t in table.items() if t.principal == token.principal]
                for key_id in dropped:
                    del table[key_id]
            table[token.key_id] = token
            return dropped

        return self._change(add)

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

        def remove(table: dict[str, ProfileToken]) -> int:
            gone = [k for k, t in table.items() if t.principal == principal]
            for key_id in gone:
                del table[key_id]
            return len(gone)

        return self._change(remove)

    def _read(self) -> dict[str, ProfileToken]:
        try:
            return self._parse(self.files.read_bytes(_FILE))
        except FileNotFoundError:
            return {}

    def _parse(self, raw: bytes | None) -> dict[str, ProfileToken]:
        if raw is None:
            return {}
        try:
            doc = cast(dict[str, dict[str, Any]], json.loads(raw)["tokens"])
            return {key: ProfileToken(**entry) for key, entry in doc.items()}
        except (ValueError, KeyError, TypeError) as exc:
            raise PrincipalError(f"{self.uri}: not a profile tokens file: {exc}") from exc

    def _change(self, edit: Callable[[dict[str, ProfileToken]], _T]) -> _T:
        result: list[_T] = []

        def change(current: bytes | None) -> bytes:
            table = self._parse(current)
            result[:] = [edit(table)]
            return private_json({"tokens": {k: asdict(t) for k, t in table.items()}})

        self.files.update(_FILE, change)
        return result[0]


def new_key_id() -> str:
    """A random public key id (16 hex characters)."""
    return secrets.token_hex(8)
