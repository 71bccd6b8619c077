"""Errors of the local broker manager."""

from maxlake.errors import ConfigError, TerminalError, TransientError


class BrokerAlreadyRunning(TerminalError):
    """``start`` found a live broker of this home directory."""


class BrokerNotRunning(TerminalError):
    """``stop`` found no live broker of this home directory."""


class BrokerStartFailed(TransientError):
    """The broker process exited or did not answer in time; the message has the log's tail."""


class BrokerJarsMissing(ConfigError):
    """The Kafka jars were not fetched yet."""


class S3ServerFailed(TransientError):
    """The local S3 server (moto) could not be started."""
