"""Errors raised by the schemas package.

Decoding never raises for bad *messages* (those become :class:`schemas.Rejection` values); these
exceptions are for bad *configuration*: an unknown event kind asked for by name, a kind module
that does not declare one event schema, or an asset registry file that does not hold together.
"""

from __future__ import annotations

from maxlake.errors import ConfigError, MaxlakeError

__all__ = ["EventSchemaModuleError", "RegistryError", "SchemasError", "UnknownKindError"]


class SchemasError(MaxlakeError):
    """Base of the errors of the schemas package (event kinds, event schemas, the registry)."""


class UnknownKindError(SchemasError, ConfigError):
    """An event kind name that no event schema knows; the message lists the valid kinds."""

    def __init__(self, kind: object, valid: list[str]) -> None:
        super().__init__(f"unknown event kind {kind!r}; valid kinds: {', '.join(valid)}")
        self.kind = kind
        self.valid = valid


class EventSchemaModuleError(SchemasError, ConfigError):
    """A module of ``schemas/events`` does not declare exactly one event schema per kind."""


class RegistryError(SchemasError, ConfigError):
    """The asset registry file is unreadable or inconsistent; names the file and the entry."""

    def __init__(self, path: str, entry: str, problem: str) -> None:
        super().__init__(f"{path}: {entry}: {problem}")
        self.path = path
        self.entry = entry
        self.problem = problem
