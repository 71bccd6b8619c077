"""Short-lived file URLs signed by the server itself (HMAC-SHA256 over path, principal, expiry).

The query response hands out ``<endpoint>/files/<dataset>/v<N>/<split>.parquet?principal=..&
expires=..&signature=..``; the same server checks the signature and expiry before it serves
the file (and checks the principal's grant again). The key is ``MAXLAKE_SHARE_URL_KEY`` or a
random key per process, so URLs die with the process unless replicas share a key.

A whole folder is granted the same way with the signature in the path
(:meth:`UrlSigner.scope_grant`): ``/data-docs/<principal>/<expires>/<signature>/...`` signs a
scope once, so the relative links between the pages of a static site (the Data Docs) keep
working under one grant.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

__all__ = ["SignatureError", "SignedFile", "UrlSigner"]

_EXPIRES = re.compile(r"[0-9]{1,12}")
"""Unix seconds as ASCII digits: ``str.isdigit`` also takes ``²`` and ``٣``, and ``int`` refuses
the first and any text over 4,300 digits (a 500 before the signature was even checked)."""


class SignatureError(ValueError):
    """A file URL is unsigned, tampered with or expired (answered with 403)."""


@dataclass(frozen=True)
class SignedFile:
    """What a verified file URL grants: ``principal`` may fetch ``path`` until ``expires``."""

    path: str
    principal: str
    expires: int


class UrlSigner:
    """Signs and verifies file URLs with one key."""

    def __init__(self, key: bytes | None = None, *, ttl_s: int = 900) -> None:
        self._key = key or secrets.token_bytes(32)
        self.ttl_s = ttl_s

    def query(self, path: str, principal: str, *, now: float | None = None) -> tuple[str, int]:
        """The query string for ``path`` (the URL path) and its expiry in Unix milliseconds."""
        expires = int(now if now is not None else time.time()) + self.ttl_s
        params = {
            "principal": principal,
            "expires": str(expires),
            "signature": self._sign(path, principal, expires),
        }
        return urlencode(params), expires * 1000

    def scope_grant(
        self, scope: str, principal: str, *, now: float | None = None
    ) -> tuple[str, int]:
        """``<principal>/<expires>/<signature>/``: path segments granting ``principal`` every
        file of ``scope`` (any string naming what is granted) until they expire; also the
        expiry in Unix milliseconds."""
        expires = int(now if now is not None else time.time()) + self.ttl_s
        return f"{principal}/{expires}/{self._sign(scope, principal, expires)}/", expires * 1000

    def verify_scope(
        self,
        scope: str,
        principal: str,
        expires: str,
        signature: str,
        *,
        now: float | None = None,
    ) -> SignedFile:
        """The grant of :meth:`scope_grant` segments.

        Raises:
            SignatureError: the signature does not match or the prefix expired.
        """
        return self.verify(
            scope,
            {"principal": principal, "expires": expires, "signature": signature},
            now=now,
        )

    def verify(
        self, path: str, query: Mapping[str, str], *, now: float | None = None
    ) -> SignedFile:
        """The grant of a file URL.

        Raises:
            SignatureError: a parameter is missing, the signature does not match, or the URL
                expired.
        """
        principal, expires_text, signature = (
            query.get("principal"),
            query.get("expires", ""),
            query.get("signature", ""),
        )
        if principal is None or not _EXPIRES.fullmatch(expires_text) or not signature:
            raise SignatureError("the file URL is not signed; ask for it again with a query")
        expires = int(expires_text)
        expected = self._sign(path, principal, expires)
        if not hmac.compare_digest(expected, signature):
            raise SignatureError("the file URL's signature does not match; it was altered")
        if (now if now is not None else time.time()) >= expires:
            raise SignatureError("the file URL expired; query the table again for a fresh one")
        return SignedFile(path, principal, expires)

    def _sign(self, path: str, principal: str, expires: int) -> str:
        message = f"{path}\n{principal}\n{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()
