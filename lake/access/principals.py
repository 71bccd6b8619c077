"""Principals, their tokens (stored as salted scrypt hashes only) and their dataset grants.

A principal is a model team, a data engineer or a plant. Its token is shown once, when the
principal is added, and has the form ``mxl_<key id>_<secret>``: the key id (public, random)
says which stored hash to check, so a request costs one scrypt, not one per principal; the
secret is 256 random bits. The store keeps the key id, a random salt and
``scrypt(secret, salt, n=2**14, r=8, p=1)``, never the token: a copy of the file does not let
anyone call the service.

Everything lives in one JSON file (``principals.json`` in the access folder, a local folder or
a prefix of the lake's object store), rewritten atomically (under an exclusive lock locally, by
a conditional put on an object store), so the CLI and running servers can share it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

from lake.access._jsonfile import private_json
from lake.access.errors import PrincipalError
from lake.access.tokens import ProfileToken, TokenStore, format_time, new_key_id
from lake.location import LakeLocation
from maxlake.errors import did_you_mean

__all__ = [
    "PRINCIPAL_KINDS",
    "PRINCIPAL_PATTERN",
    "AccessStore",
    "Principal",
]

PRINCIPAL_KINDS = ("model_team", "data_engineer", "plant")
PRINCIPAL_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
PrincipalKind = Literal["model_team", "data_engineer", "plant"]

_FILE = "principals.json"
_NAME = re.compile(PRINCIPAL_PATTERN)
_DATASET = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_TOKEN = re.compile(r"^mxl_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
_T = TypeVar("_T")
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32, "maxmem": 64 * 1024 * 1024}


@dataclass(frozen=True)
class Principal:
    """Who may call the dataset service.

    Attributes:
        name: unique name (:data:`PRINCIPAL_PATTERN`).
        kind: model_team, data_engineer or plant.
        tenant: the company it belongs to, if any (informational).
        key_id: public half of the token.
        salt: hex salt of the hash.
        token_hash: hex scrypt hash of the token's secret.
        created_at: RFC 3339 UTC.
        grants: dataset names it may read.
    """

    name: str
    kind: str
    tenant: str | None
    key_id: str
    salt: str = field(repr=False)
    token_hash: str = field(repr=False)
    created_at: str = ""
    grants: tuple[str, ...] = field(default_factory=tuple)

    def may_read(self, dataset: str) -> bool:
        """Whether the principal holds a grant for ``dataset``."""
        return dataset in self.grants

    def public(self) -> dict[str, Any]:
        """The principal without its hash and salt (for listings)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "tenant": self.tenant,
            "key_id": self.key_id,
            "created_at": self.created_at,
            "grants": list(self.grants),
        }


class AccessStore:
    """Principals and grants in ``<root>/principals.json`` (``root`` a folder or a location)."""

    def __init__(self, root: str | Path | LakeLocation) -> None:
        self.location = LakeLocation.of(str(root) if isinstance(root, Path) else root)
        self.files = self.location.files()
        self._verified: dict[str, str] = {}

    def add(
        self, name: str, kind: PrincipalKind | str, *, tenant: str | None = None
    ) -> tuple[Principal, str]:
        """Create a principal; returns it and its token (the only time the token exists).

        Raises:
            PrincipalError: bad name or kind, or the name is taken.
        """
        if not _NAME.fullmatch(name):
            raise PrincipalError(f"principal name {name!r} does not match {PRINCIPAL_PATTERN}")
        if kind not in PRINCIPAL_KINDS:
            raise PrincipalError(f"kind {kind!r} is not one of {', '.join(PRINCIPAL_KINDS)}")
        key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        salt = secrets.token_bytes(16)
        principal = Principal(
            name=name,
            kind=kind,
            tenant=tenant,
            key_id=key_id,
            salt=salt.hex(),
            token_hash=_hash(secret, salt).hex(),
            created_at=datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        )

        def add(table: dict[str, Principal]) -> None:
            if name in table:
                raise PrincipalError(f"principal {name!r} exists (remove it first)")
            table[name] = principal

        self._change(add)
        return principal, f"mxl_{key_id}_{secret}"

    def list(self) -> list[Principal]:
        """Every principal, by name."""
        return sorted(self._read().values(), key=lambda p: p.name)

    def get(self, name: str) -> Principal:
        """One principal by name."""
        table = self._read()
        if name not in table:
            raise PrincipalError(
                f"no principal {name!r} (known: {', '.join(sorted(table)) or 'none'})"
            )
        return table[name]

    def remove(self, name: str) -> None:
        """Delete a principal: its token stops working at once."""

        def remove(table: dict[str, Principal]) -> None:
            if name not in table:
                raise PrincipalError(f"no principal {name!r}")
            del table[name]

        self._change(remove)
        self.tokens.remove_principal(name)

    def grant(self, name: str, dataset: str) -> Principal:
        """Let ``name`` read ``dataset`` (every version the service serves)."""
        _check_dataset(dataset)

        def grant(table: dict[str, Principal]) -> Principal:
            principal = _existing(table, name)
            table[name] = replace(principal, grants=tuple(sorted({*principal.grants, dataset})))
            return table[name]

        return self._change(grant)

    def revoke(self, name: str, dataset: str) -> Principal:
        """Withdraw ``name``'s grant for ``dataset``."""
        _check_dataset(dataset)

        def revoke(table: dict[str, Principal]) -> Principal:
            principal = _existing(table, name)
            if dataset not in principal.grants:
                held = ", ".join(principal.grants) or "none"
                raise PrincipalError(
                    f"principal {name!r} has no grant for {dataset!r}"
                    f"{did_you_mean(dataset, principal.grants)} (its grants: {held})"
                )
            table[name] = replace(
                principal, grants=tuple(g for g in principal.grants if g != dataset)
            )
            return table[name]

        return self._change(revoke)

    @staticmethod
    def key_id(token: str) -> str | None:
        """The public key id of a well-formed token (``mxl_<key id>_<secret>``), or None."""
        match = _TOKEN.fullmatch(token)
        return match.group(1) if match else None

    def authenticate(self, token: str) -> Principal | None:
        """The principal a token belongs to, or None (unknown, malformed, removed or expired).

        A verified token is remembered in memory against the stored hash, so later requests
        cost one file read, not one scrypt; removing or re-adding the principal changes the
        hash and ends that. A profile token (:meth:`issue_profile_token`) past its expiry is
        refused; :meth:`expired_at` tells that case apart.
        """
        principal, profile = self._verify(token)
        if principal is None or (profile is not None and profile.expired()):
            return None
        return principal

    def expired_at(self, token: str) -> str | None:
        """When ``token`` expired, if it is a genuine profile token past its expiry, else None."""
        principal, profile = self._verify(token)
        if principal is None or profile is None or not profile.expired():
            return None
        return profile.expires_at

    def issue_profile_token(
        self, name: str, expires_at: datetime, *, replace: bool = False
    ) -> tuple[ProfileToken, str, tuple[str, ...]]:
        """A new expiring token for principal ``name`` (for a Delta Sharing profile file).

        Returns:
            The stored token record, the token (the only time it exists) and, with
            ``replace``, the key ids of the principal's earlier profile tokens, now refused.

        Raises:
            PrincipalError: no such principal, or ``expires_at`` is not in the future.
        """
        self.get(name)
        now = datetime.now(UTC)
        if expires_at <= now:
            raise PrincipalError(f"expiry {format_time(expires_at)} is not in the future")
        key_id, secret = new_key_id(), secrets.token_urlsafe(32)
        salt = secrets.token_bytes(16)
        record = ProfileToken(
            key_id=key_id,
            principal=name,
            salt=salt.hex(),
            token_hash=_hash(secret, salt).hex(),
            created_at=format_time(now),
            expires_at=format_time(expires_at),
        )
        dropped = self.tokens.add(record, replace=replace)
        return record, f"mxl_{key_id}_{secret}", tuple(dropped)

    @property
    def tokens(self) -> TokenStore:
        """The principals' profile tokens (same folder)."""
        return TokenStore(self.location)

    def _verify(self, token: str) -> tuple[Principal | None, ProfileToken | None]:
        """The principal whose (main or profile) token this is, and the profile token if any."""
        match = _TOKEN.fullmatch(token)
        if match is None:
            return None, None
        key_id, secret = match.groups()
        table = self._read()
        principal = next((p for p in table.values() if p.key_id == key_id), None)
        profile = None
        if principal is None:
            profile = self.tokens.get(key_id)
            principal = table.get(profile.principal) if profile is not None else None
        if principal is None:
            return None, None
        salt, stored = (profile or principal).salt, (profile or principal).token_hash
        fingerprint = hashlib.sha256(token.encode()).hexdigest()
        if self._verified.get(fingerprint) != stored:
            computed = _hash(secret, bytes.fromhex(salt))
            if not hmac.compare_digest(computed, bytes.fromhex(stored)):
                return None, None
            self._verified[fingerprint] = stored
        return principal, profile

    @property
    def uri(self) -> str:
        """The principals file (a path or a URI)."""
        return self.location.uri(_FILE)

    def _read(self) -> dict[str, Principal]:
        try:
            raw = self.files.read_bytes(_FILE)
        except FileNotFoundError:
            return {}
        return self._parse(raw)

    def _parse(self, raw: bytes | None) -> dict[str, Principal]:
        if raw is None:
            return {}
        try:
            doc = json.loads(raw)
            return {
                name: Principal(**{**entry, "grants": tuple(entry.get("grants", ()))})
                for name, entry in cast(dict[str, dict[str, Any]], doc["principals"]).items()
            }
        except (ValueError, KeyError, TypeError) as exc:
            raise PrincipalError(f"{self.uri}: not a principals file: {exc}") from exc

    def _change(self, edit: Callable[[dict[str, Principal]], _T]) -> _T:
        """Read-modify-write the file without losing a concurrent change; ``edit`` changes the
        table in place (it may run again when another writer got in first) and may raise."""
        result: list[_T] = []

        def change(current: bytes | None) -> bytes:
            table = self._parse(current)
            result[:] = [edit(table)]
            doc = {
                "principals": {n: {**asdict(p), "grants": list(p.grants)} for n, p in table.items()}
            }
            return private_json(doc)

        self.files.update(_FILE, change)
        return result[0]


def _hash(secret: str, salt: bytes) -> bytes:
    return hashlib.scrypt(secret.encode(), salt=salt, **_SCRYPT)


def _existing(table: dict[str, Principal], name: str) -> Principal:
    if name not in table:
        raise PrincipalError(f"no principal {name!r} (known: {', '.join(sorted(table)) or 'none'})")
    return table[name]


def _check_dataset(dataset: str) -> None:
    if not _DATASET.fullmatch(dataset):
        raise PrincipalError(f"dataset name {dataset!r} does not match {_DATASET.pattern}")
