"""List pagination: ``maxResults`` and opaque ``pageToken`` values.

A page token is the base64url of the last item's key on the previous page; listings are sorted
by key, so the next page starts after it. Tokens carry no secret (every item is filtered by the
caller's grants anyway) and stay valid while the listing changes.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

__all__ = ["DEFAULT_PAGE", "MAX_PAGE", "Page", "PageError", "paginate"]

DEFAULT_PAGE = 100
MAX_PAGE = 1000
T = TypeVar("T")


class PageError(ValueError):
    """``maxResults`` or ``pageToken`` is malformed (answered with 400)."""


@dataclass(frozen=True)
class Page:
    """The items of one page (JSON objects) and the token of the next, if any."""

    items: list[dict[str, str]]
    next_token: str | None

    def body(self) -> dict[str, object]:
        """The protocol's list response body."""
        doc: dict[str, object] = {"items": self.items}
        if self.next_token is not None:
            doc["nextPageToken"] = self.next_token
        return doc


def paginate(
    items: Sequence[T],
    query: Mapping[str, str],
    *,
    key: Callable[[T], str],
    render: Callable[[T], dict[str, str]],
) -> Page:
    """One page of ``items`` (sorted by ``key`` here) as the query's parameters ask.

    Raises:
        PageError: ``maxResults`` is not an integer in 0..2**31-1, or ``pageToken`` is not one
            this server issued.
    """
    size = _max_results(query.get("maxResults"))
    ordered = sorted(items, key=key)
    after = _decode(query["pageToken"]) if query.get("pageToken") else None
    if after is not None:
        ordered = [i for i in ordered if key(i) > after]
    page, rest = ordered[:size], ordered[size:]
    token = None
    if rest:
        token = _encode(key(page[-1])) if page else query.get("pageToken") or _encode("")
    return Page([render(i) for i in page], token)


def _max_results(text: str | None) -> int:
    if text is None or text == "":
        return DEFAULT_PAGE
    try:
        value = int(text)
    except ValueError:
        raise PageError(f"maxResults {text!r} is not an integer") from None
    if not 0 <= value < 2**31:
        raise PageError(f"maxResults {value} must be non-negative")
    return min(value, MAX_PAGE)


def _encode(last: str) -> str:
    return base64.urlsafe_b64encode(f"after:{last}".encode()).decode().rstrip("=")


def _decode(token: str) -> str:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        text = ""
    if not text.startswith("after:"):
        raise PageError("pageToken is not a token this server issued (start again without it)")
    return text.removeprefix("after:")
