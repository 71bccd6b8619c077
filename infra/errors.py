"""Errors of the local infrastructure: the broker manager, its security set-up, local S3."""

from maxlake.errors import ConfigError, MaxlakeError, TerminalError, TransientError


class InfraError(MaxlakeError):
    """Base of the errors of the infra package."""


class BrokerAlreadyRunning(InfraError, TerminalError):
    """``start`` found a live broker of this home directory."""


class BrokerNotRunning(InfraError, TerminalError):
    """``stop`` found no live broker of this home directory."""


class BrokerStartFailed(InfraError, TransientError):
    """The broker process exited or did not answer in time; the message has the log's tail."""


class BrokerJarsMissing(InfraError, ConfigError):
    """The Kafka jars were not fetched yet."""


class S3ServerFailed(InfraError, TransientError):
    """The local S3 server (moto) could not be started."""
