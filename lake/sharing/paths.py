"""Where the sharing files live, from the settings (defaults under the lake root)."""

from __future__ import annotations

from pathlib import Path

from lake.location import LakeLocation
from lake.sharing.enforce import SharingGate
from lake.sharing.keys import KeyRing
from lake.sharing.store import ContractStore
from maxlake.settings import Settings

__all__ = ["contracts_dir", "keys_file", "sharing_gate"]


def contracts_dir(settings: Settings) -> LakeLocation:
    """``MAXLAKE_CONTRACTS_DIR`` (a local path or an object-store URI), default
    ``<lake_root>/sharing/contracts`` (on the lake's object store when the lake root is one)."""
    return LakeLocation.area(settings, settings.contracts_dir, "sharing", "contracts")


def keys_file(settings: Settings) -> Path:
    """``MAXLAKE_SHARING_SECRETS_FILE``, default ``<lake_root>/sharing/secrets.json``.

    Pseudonym keys are secrets: they never live on an object store.

    Raises:
        LocationError: no keys file is set and the lake root is an object store.
    """
    if settings.sharing_secrets_file is not None:
        return settings.sharing_secrets_file
    return LakeLocation.from_settings(settings).local_path(
        "sharing", "secrets.json", setting="MAXLAKE_SHARING_SECRETS_FILE"
    )


def sharing_gate(settings: Settings) -> SharingGate:
    """The gate over the configured contracts, keys and group size."""
    return SharingGate(
        ContractStore(contracts_dir(settings)),
        KeyRing(keys_file(settings)),
        min_group_size=settings.sharing_min_group_size,
    )
