"""The base of the errors of the streams package (producer, spool, topics, workers, imports)."""

from maxlake.errors import MaxlakeError

__all__ = ["StreamsError"]


class StreamsError(MaxlakeError):
    """Base of the errors of the streams package; combine with a retry marker of
    :mod:`maxlake.errors` (``TransientError``, ``TerminalError``, ``ConfigError``)."""
