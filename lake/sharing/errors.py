"""Errors of sharing contracts, pseudonym keys and build-time enforcement."""

from __future__ import annotations

from collections.abc import Iterable

from lake.errors import LakeError
from maxlake.errors import ConfigError, TerminalError

__all__ = [
    "ContractConflict",
    "ContractError",
    "ContractNotFound",
    "DisclosureRefused",
    "IdentifierLeak",
    "SecretError",
    "SharingError",
    "UncheckableFile",
    "WithholdingResetError",
]


class SharingError(LakeError):
    """Base of the errors of sharing contracts, pseudonym keys and build-time enforcement."""


class ContractError(SharingError, ConfigError):
    """A contract file is invalid; the message names the file, the key and the valid values."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        super().__init__(f"{source}: {key}: {problem}")
        self.source = source
        self.key = key


class ContractNotFound(SharingError, TerminalError):
    """No contract (or version) of that id; lists the ids that exist."""

    def __init__(self, wanted: str, existing: Iterable[str]) -> None:
        super().__init__(f"no contract {wanted!r} (known: {', '.join(existing) or 'none'})")
        self.wanted = wanted


class ContractConflict(SharingError, TerminalError):
    """A tenant has more than one contract in force for the same purpose."""

    def __init__(self, tenant: str, purpose: str, ids: Iterable[str]) -> None:
        super().__init__(
            f"tenant {tenant!r} has several contracts in force for purpose {purpose!r} "
            f"({', '.join(ids)}); revoke all but one"
        )
        self.tenant = tenant


class SecretError(SharingError, ConfigError):
    """A pseudonym key is missing, malformed, or its file is readable by others.

    The message names the file and the contract, never the key.
    """


class IdentifierLeak(SharingError, TerminalError):
    """A built dataset still holds a raw identifier its contract pseudonymises; not published."""

    def __init__(
        self, dataset: str, column: str, count: int, *, file: bool = False, hint: str = ""
    ) -> None:
        where = f"file {column!r}" if file else f"column {column!r}"
        super().__init__(
            f"dataset {dataset!r}: {where} holds {count:,} raw identifier value(s) that "
            f"a contract pseudonymises; nothing was published{hint}"
        )
        self.dataset = dataset
        self.column = column


class UncheckableFile(IdentifierLeak):
    """An extra file of a built dataset is in a form the leak scan cannot read (not text, nor a
    gzip, bz2, xz, zip or Parquet file), so it cannot be shown to hold no raw identifier; not
    published."""

    def __init__(self, dataset: str, file: str, *, hint: str = "") -> None:
        SharingError.__init__(
            self,
            f"dataset {dataset!r}: file {file!r} is neither UTF-8 text (or UTF-16 with a "
            "byte-order mark) nor a gzip, bz2, xz, zip or Parquet file the identifier check "
            "can read, so it cannot be checked for raw identifiers; nothing was published "
            f"(write extra files as text, e.g. JSON or CSV){hint}",
        )
        self.dataset = dataset
        self.column = file


class DisclosureRefused(SharingError, TerminalError):
    """A build's disclosure report exceeds a contract's limit; nothing was published."""

    def __init__(self, dataset: str, reason: str) -> None:
        super().__init__(f"dataset {dataset!r} not published: {reason}")
        self.dataset = dataset
        self.reason = reason


class WithholdingResetError(SharingError, ConfigError):
    """An operator asked to reset the withholding of a column the set's last version did not
    withhold (nothing to reset); the message names the column and what was withheld."""
