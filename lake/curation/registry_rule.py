"""Which asset registry a dataset build uses: one rule for ``datasets build`` and ``maxlake demo``.

A set's feature columns follow the registry (every tag of the machine types the spec selects),
so two builds of one set with two registries publish different columns. Every build that the
command line starts therefore takes its registry from the same place, in this order:

1. ``--registry FILE`` (``datasets build`` only);
2. ``MAXLAKE_REGISTRY_FILE``;
3. the newest version of the live registry under the lake root (``maxlake registry history``;
   version 0, the packaged ``alliance.toml``, while no change was stored).

The live registry is what the workers validate with, so a tag added with ``registry add-tag``
reaches the next build of every set that does not pin its tags, whoever starts it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from lake.curation.area import CuratedArea
from lake.registry_store import FixedRegistry, LiveRegistry, registry_source
from maxlake.settings import Settings
from schemas import Registry

__all__ = ["BuildRegistry", "build_registry"]


@dataclass(frozen=True)
class BuildRegistry:
    """The registry a build uses and what to record about it.

    Attributes:
        registry: the registry.
        version: the live registry version (None for a registry file).
        described: where it came from, for a progress line (``live registry v3``,
            ``registry file alliance.toml (MAXLAKE_REGISTRY_FILE)``).
        notes: one line per live-registry version stored since the set's newest version was
            built (``v4 2026-12-01T14:10:00+00:00 maxlake import cmapss: import NASA C-MAPSS:
            fd001``); empty for a registry file or a set's first version.
    """

    registry: Registry
    version: int | None
    described: str
    notes: list[str] = field(default_factory=list)


def build_registry(
    settings: Settings, area: CuratedArea, name: str, *, registry_file: Path | None = None
) -> BuildRegistry:
    """The registry to build the set ``name`` with, by the rule of the module docstring.

    Raises:
        RegistryError: the file or the newest stored version is invalid.
    """
    source = registry_source(settings, registry_file=registry_file)
    version, registry = source.snapshot()
    if isinstance(source, FixedRegistry):
        path = registry_file or settings.registry_file
        why = "--registry" if registry_file is not None else "MAXLAKE_REGISTRY_FILE"
        return BuildRegistry(registry, None, f"registry file {path} ({why})")
    described = f"live registry v{version}" + (", the packaged seed" if version == 0 else "")
    return BuildRegistry(registry, version, described, _notes(source, area, name))


def _notes(source: LiveRegistry, area: CuratedArea, name: str) -> list[str]:
    """One line per live-registry version newer than the one the newest version of ``name``
    was built with; for a version built before manifests recorded it, the registry versions
    stored after it was built."""
    versions = area.versions(name)
    if not versions:
        return []
    previous = area.manifest(name, versions[-1])
    built = datetime.fromisoformat(previous.created_at)
    notes = []
    for version in source.store.versions()[1:]:
        if previous.registry_version is not None and version <= previous.registry_version:
            continue
        entry = source.store.get(version)
        if previous.registry_version is None and datetime.fromisoformat(entry.at) <= built:
            continue
        notes.append(f"v{entry.version} {entry.at} {entry.author}: {entry.reason}")
    return notes
