"""Errors of principals, grants and the audit table."""

from __future__ import annotations

from lake.errors import LakeError
from maxlake.errors import ConfigError, TerminalError

__all__ = ["AccessDenied", "AccessError", "PrincipalError"]


class AccessError(LakeError):
    """Base of the errors of principals, grants, profile tokens and the audit table."""


class PrincipalError(AccessError, ConfigError):
    """A principal or grant request is invalid (bad name, unknown principal, taken name)."""


class AccessDenied(AccessError, TerminalError):
    """A read was refused (no or bad token, no grant, revoked, not served); already audited.

    Attributes:
        outcome: the audit outcome, also its ``code`` (:data:`maxlake.errors.ERROR_CODES`).
    """

    def __init__(self, outcome: str, detail: str) -> None:
        super().__init__(detail)
        self.outcome = outcome
        self.code = outcome
