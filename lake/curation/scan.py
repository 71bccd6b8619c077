"""Re-scan a published dataset version for the raw identifiers its contracts hide.

The build refuses to publish a set holding a raw identifier a contract pseudonymises
(:meth:`lake.sharing.SharingGate.check_output`). This is the same check run again later, by an
auditor or a data protection officer, on what a reader receives today: every split's values,
its Parquet statistics and metadata, the published manifest, the data card a pull writes and
the version's other files (opened and decoded as the build does: :mod:`lake.sharing.leaks`).
The identifiers are those the build looks for (:func:`lake.sharing.raw_identifiers`): of the
contract versions the manifest names and of every other company of the registry or the
contract store, with the machines of the registry version the set was built with and of the
live registry (:func:`scan_machines`), and the identifier values (part serials, lots) of the
rows in the silver versions the set was built from.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from lake.curation.area import CuratedArea
from lake.curation.card import LABEL_FILE, label_info, write_card
from lake.curation.manifest import Manifest, file_sha256
from lake.curation.published import published_manifest_bytes
from lake.delta import DeltaStore
from lake.registry_store import RegistryStore
from lake.sharing import ContractStore, raw_identifiers
from lake.sharing.leaks import (
    file_texts,
    frame_leaks,
    leaked_values,
    parquet_statistics,
    text_leaks,
    text_mentions,
)
from lake.tables import silver_table
from maxlake.errors import ConfigError, TerminalError
from schemas import Registry

__all__ = ["ScanReport", "scan_machines", "scan_version"]


@dataclass(frozen=True)
class ScanReport:
    """What :func:`scan_version` read and found.

    Attributes:
        dataset: ``name@vN``.
        contracts: the contract versions the set was built under (``id vN``).
        identifiers: how many distinct raw identifiers were looked for.
        scanned: every file checked (split files, the published manifest, the data card and
            the version's other files), in the order read.
        hits: ``(file, where, count)`` per place a raw identifier was found (``where``: a
            column, ``statistics`` or ``bytes``); empty when the set is clean.
        values: the raw identifiers found in files' bytes (the operator's to see: they are
            the lake's own ids).
    """

    dataset: str
    contracts: list[str]
    identifiers: int
    scanned: list[str] = field(default_factory=list)
    hits: list[tuple[str, str, int]] = field(default_factory=list)
    values: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """No raw identifier anywhere."""
        return not self.hits


def scan_version(
    area: CuratedArea,
    manifest: Manifest,
    *,
    contracts: ContractStore,
    store: DeltaStore,
    machines: pl.DataFrame,
) -> ScanReport:
    """Scan ``manifest``'s version for raw identifiers (see the module doc).

    Args:
        area: the curated area holding the version.
        manifest: its stored manifest (revoked and failed versions are scanned too).
        contracts: the contract store (the versions the manifest names are read from it).
        store: the lake (silver at the versions the set was built from).
        machines: the registry's machines (tenant, plant, line, machine).

    Raises:
        TerminalError: the version was built without contracts (nothing to check it against),
            or a stored file does not match its manifest hash.
    """
    ref = f"{manifest.name}@v{manifest.version}"
    if not manifest.contracts:
        raise TerminalError(
            f"{ref} was built without sharing contracts: nothing says which identifiers it "
            "must hide, and it is never served to another company"
        )
    used = [contracts.get(str(c["id"]), int(c["version"])) for c in manifest.contracts]
    frames = {
        kind: store.scan_at(silver_table(kind), version)
        for kind, version in manifest.source_versions.items()
        if version is not None
    }
    known = set(machines.get_column("tenant").to_list()) | {c.tenant for c in contracts.contracts()}
    others = sorted(known - {c.tenant for c in used})
    hidden = raw_identifiers(used, machines, frames, others=others)
    raw = sorted(set().union(*hidden.values()))
    report = ScanReport(ref, [f"{c.id} v{c.version}" for c in used], len(raw))
    stem = f"{manifest.name}-v{manifest.version}"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files: dict[str, str] = {}
        for split, info in manifest.splits.items():
            stored = area.local_file(manifest.name, manifest.version, info.file, info.sha256)
            if file_sha256(stored) != info.sha256:
                raise TerminalError(f"{ref}: {info.file} does not match the sha256 in its manifest")
            name = f"{stem}-{split}.parquet"
            path = folder / name
            shutil.copyfile(stored, path)
            files[split] = name
            report.scanned.append(name)
            for column, count in frame_leaks(pl.read_parquet(path), raw).items():
                report.hits.append((name, column, count))
            found = sum(1 for v in parquet_statistics(path) if text_leaks(v.encode(), raw))
            if found:
                report.hits.append((name, "statistics", found))
        _scan_bytes(report, f"{stem}.manifest.json", published_manifest_bytes(manifest), raw, True)
        card = write_card(folder, manifest, files, label=_label(area, manifest))
        _scan_bytes(report, card.name, card.read_bytes(), raw, True)
    for file in manifest.files:
        _scan_bytes(report, file, area.read_bytes(manifest.name, manifest.version, file), raw)
    return report


def scan_machines(
    manifest: Manifest, live: Registry, registries: RegistryStore | None
) -> tuple[pl.DataFrame, list[str]]:
    """The registry machines (tenant, plant, line, machine, machine_type) to look for in a
    version, and where they came from: the live registry's, and those of the registry version
    the set was built with (``manifest.registry_version``, read from ``registries``), so a
    machine or company removed or renamed since the build is still looked for. A build from
    a registry file (no version recorded) is scanned with the live registry alone.

    Raises:
        TerminalError: the manifest names a registry version ``registries`` does not hold.
    """
    tables = [pl.from_arrow(live.machines())]
    sources = ["the live registry"]
    version = manifest.registry_version
    if version is not None and registries is not None:
        try:
            built = registries.get(version).registry
        except ConfigError as exc:
            raise TerminalError(
                f"{manifest.name}@v{manifest.version} was built with registry version "
                f"{version}, which this lake does not hold: {exc}"
            ) from exc
        tables.append(pl.from_arrow(built.machines()))
        sources.append(f"registry version {version} (the build's)")
    frames = [t for t in tables if isinstance(t, pl.DataFrame)]
    return pl.concat(frames, how="vertical_relaxed").unique(maintain_order=True), sources


def _scan_bytes(
    report: ScanReport, name: str, data: bytes, raw: list[str], prose: bool = False
) -> None:
    report.scanned.append(name)
    if prose:
        found = text_mentions(data, raw)
    else:
        texts = file_texts(data)
        if texts is None:
            report.hits.append((name, "a form the check cannot read", 1))
            return
        seen = {v for text in texts for v in leaked_values(text, raw)}
        found = [v for v in raw if v in seen]
    if found:
        report.hits.append((name, "bytes", len(found)))
        report.values.extend(v for v in found if v not in report.values)


def _label(area: CuratedArea, manifest: Manifest) -> Mapping[str, object]:
    try:
        return label_info(
            {LABEL_FILE: area.read_bytes(manifest.name, manifest.version, LABEL_FILE)}
        )
    except FileNotFoundError:
        return {}
