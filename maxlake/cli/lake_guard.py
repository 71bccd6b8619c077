"""Read-only commands on a lake that is not there: say so instead of reporting a healthy void."""

from __future__ import annotations

from pathlib import Path

from lake.location import LakeLocation
from maxlake.errors import ConfigError
from maxlake.settings import Settings


def require_lake(settings: Settings) -> None:
    """Return when anything is stored under ``MAXLAKE_LAKE_ROOT``.

    Raises:
        ConfigError: the root is missing or empty; the message names it and the next step.
    """
    location = LakeLocation.from_settings(settings)
    if location.is_local and Path(location.root).is_file():
        raise ConfigError(
            f"MAXLAKE_LAKE_ROOT {location.root} is a file, not a folder: a lake is a folder "
            "of tables; check MAXLAKE_LAKE_ROOT (`maxlake config`)"
        )
    folders, files = location.files().list("")
    if folders or files:
        return
    raise ConfigError(
        f"no lake at {location.describe()}: nothing is stored there yet; check "
        "MAXLAKE_LAKE_ROOT (`maxlake config`), or create the lake by running a worker "
        "(`maxlake worker`) or `maxlake demo`"
    )
