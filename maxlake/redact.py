"""Secrets never reach a log line: a logging filter that masks every registered secret.

Any code that holds a secret (the :class:`~maxlake.settings.Settings` SASL password and token,
the local broker's generated passwords, pseudonym keys) registers its value with
:func:`register_secret`; :func:`install` puts a :class:`SecretMask` on every handler of the root
logger, so a record is masked at every level, whatever logger emitted it (kafka-python's DEBUG
dump of its client configuration included) and whatever its arguments, traceback or stack hold.
The command line installs it before any command runs.
"""

from __future__ import annotations

import logging
import threading

__all__ = ["MASK", "SecretMask", "install", "mask", "register_secret"]

MASK = "**********"
_MIN_CHARS = 4
_lock = threading.Lock()
_secrets: set[str] = set()


def register_secret(value: str | bytes | None) -> None:
    """Mask ``value`` (and its hex form when bytes) in every log record from now on.

    Values shorter than 4 characters are ignored (they would mask ordinary words).
    """
    if value is None:
        return
    values = [value.hex(), value.decode("latin-1")] if isinstance(value, bytes) else [value]
    with _lock:
        _secrets.update(v for v in values if len(v) >= _MIN_CHARS)


def mask(text: str) -> str:
    """``text`` with every registered secret replaced by :data:`MASK`."""
    with _lock:
        found = [s for s in _secrets if s in text]
    for secret in sorted(found, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


class SecretMask(logging.Filter):
    """Rewrites a record's message, traceback and stack text with the secrets masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        return True


def install(logger: logging.Logger | None = None) -> SecretMask:
    """Add one :class:`SecretMask` to every handler of ``logger`` (default: the root logger)."""
    target = logger or logging.getLogger()
    existing = next(
        (f for h in target.handlers for f in h.filters if isinstance(f, SecretMask)), None
    )
    found = existing or SecretMask()
    for handler in target.handlers:
        if found not in handler.filters:
            handler.addFilter(found)
    return found
