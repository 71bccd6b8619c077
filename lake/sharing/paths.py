"""Where the sharing files live, from the settings (defaults under the lake root)."""

from __future__ import annotations

from pathlib import Path

from lake.sharing.enforce import SharingGate
from lake.sharing.keys import KeyRing
from lake.sharing.store import ContractStore
from maxlake.errors import ConfigError
from maxlake.settings import Settings

__all__ = ["contracts_dir", "keys_file", "sharing_gate"]


def _local_root(settings: Settings, what: str) -> Path:
    if "://" in settings.lake_root:
        raise ConfigError(
            f"MAXLAKE_LAKE_ROOT is {settings.lake_root!r}: "
            f"set MAXLAKE_{what.upper()} to a local path"
        )
    return Path(settings.lake_root)


def contracts_dir(settings: Settings) -> Path:
    """``MAXLAKE_CONTRACTS_DIR``, default ``<lake_root>/sharing/contracts``."""
    if settings.contracts_dir is not None:
        return settings.contracts_dir
    return _local_root(settings, "contracts_dir") / "sharing" / "contracts"


def keys_file(settings: Settings) -> Path:
    """``MAXLAKE_SHARING_SECRETS_FILE``, default ``<lake_root>/sharing/secrets.json``."""
    if settings.sharing_secrets_file is not None:
        return settings.sharing_secrets_file
    return _local_root(settings, "sharing_secrets_file") / "sharing" / "secrets.json"


def sharing_gate(settings: Settings) -> SharingGate:
    """The gate over the configured contracts, keys and group size."""
    return SharingGate(
        ContractStore(contracts_dir(settings)),
        KeyRing(keys_file(settings)),
        min_group_size=settings.sharing_min_group_size,
    )
