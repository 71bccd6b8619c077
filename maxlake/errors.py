"""The root of every exception maxlake raises on purpose, and the "did you mean" hint of a
misspelled name.

Each package has its base (``SchemasError``, ``LakeError`` with ``CurationError``,
``SharingError`` and ``AccessError`` below it, ``QualityError``, ``StreamsError``,
``InfraError``) to catch everything one package raises. Every concrete error also carries one
marker: callers that loop (the ingest worker, the producer's resend loop) decide whether to retry
or to give up by it: a :class:`TransientError` may succeed when tried again, a
:class:`TerminalError` (and its :class:`ConfigError`) will not. A concrete error names both,
domain first: ``class CommitConflict(LakeError, TransientError)``.
"""

import difflib
from collections.abc import Sequence

BROKER_START_HINT = (
    "start it with `maxlake broker start` or point MAXLAKE_BOOTSTRAP_SERVERS at a running one "
    "(see `maxlake config`); a broker that listens with TLS or SASL also needs "
    "MAXLAKE_KAFKA_SECURITY_PROTOCOL and its settings (docs/SECURITY.md)"
)
"""The next step after a Kafka broker did not answer (ends a ``maxlake: error:`` line)."""


ERROR_CODES: dict[str, tuple[int, str]] = {
    "invalid": (
        400,
        "the request is malformed: a name, version, split or option (409: the pull's --out "
        "folder holds another set)",
    ),
    "unauthenticated": (401, "no token, or a token this lake does not know"),
    "denied": (
        403,
        "the principal has no grant, or the version is not served to it (built without "
        "contracts, failed its output checks)",
    ),
    "revoked": (403, "the version was revoked (a contract it was built under was revoked)"),
    "not_found": (404, "no such dataset, version, split, share or file"),
    "throttled": (429, "too many requests from this client; wait and retry"),
    "error": (500, "the lake failed on the request (its log has the cause)"),
}
"""The one catalogue of the codes of a refused dataset read: code -> (HTTP status, meaning).

The same code is the ``maxlake: error: <code>: ...`` prefix of the command line
(``datasets show``, ``pull``, ``scan``), the ``error.outcome`` of the dataset service's JSON
body and the ``outcome`` column of ``ops/audit`` (with ``allowed`` for a read that went ahead).
"""


class MaxlakeError(Exception):
    """Base class of all maxlake errors; the message is meant for the user.

    Attributes:
        code: the error's code from :data:`ERROR_CODES` (``not_found``, ``denied``, ...) for
            a refused dataset read, else None; the command line prints it before the message.
    """

    code: str | None = None


class TransientError(MaxlakeError):
    """The operation may succeed when retried (broker unreachable, commit conflict)."""


class TerminalError(MaxlakeError):
    """Retrying cannot help (bad configuration, corrupt input, missing files)."""


class ConfigError(TerminalError):
    """A setting or a file the user supplied is invalid; the message names it."""


def exception_text(exc: BaseException) -> str:
    """``Class: message`` of ``exc``, the class named once even when the message starts with it
    (Kafka clients' messages often do), or the class alone when the message is empty."""
    name, text = type(exc).__name__, str(exc)
    if not text:
        return name
    return text if text.startswith(name) else f"{name}: {text}"


def validation_location(loc: tuple[int | str, ...], *, root: str = "document") -> str:
    """A pydantic error location as a path: ``("tenants", 2, "id")`` -> ``tenants[2].id``;
    the empty location (the whole document) -> ``root``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or root


def close_match(name: str, known: Sequence[str]) -> str | None:
    """The entry of ``known`` that ``name`` most likely misspells or abbreviates, if any
    (:func:`difflib.get_close_matches` at a similarity of 0.5, else the first entry that
    starts with ``name``)."""
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    close += [k for k in known if k.startswith(name) and k not in close]
    return close[0] if close else None


def did_you_mean(name: str, known: Sequence[str]) -> str:
    """``" (did you mean x?)"`` for the entry of ``known`` closest to ``name``
    (:func:`close_match`), or ``""`` when none is close: what every error about an unknown
    name puts right after the name."""
    match = close_match(name, known)
    return f" (did you mean {match}?)" if match else ""
