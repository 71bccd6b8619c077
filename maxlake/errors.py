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


class MaxlakeError(Exception):
    """Base class of all maxlake errors; the message is meant for the user."""


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
