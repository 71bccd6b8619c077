"""The three reference sets ``maxlake demo`` builds from what it just ingested.

Imported by ``maxlake demo`` when it reaches this step (it imports the curation and sharing
packages).

Each set is built from a packaged demo spec (``lake/curation/specs/demo_*.toml``, sized for the
demo's ~16 hours of factory time) under per-tenant demo sharing contracts, and summarised in
one line (rows per split and what a row is). A set that cannot be published says why in its
line; the others are still built.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Final

from lake import DeltaStore
from lake.curation import CuratedArea, build_dataset, load_spec, one_line
from lake.curation.errors import UnchangedDataset
from lake.curation.jobs import JOBS
from lake.curation.registry_rule import build_registry
from lake.curation.warnings import warning_lines
from lake.sharing import ContractStore, KeyRing, contracts_dir, keys_file, sharing_gate
from maxlake.errors import MaxlakeError
from maxlake.settings import Settings
from schemas import load_registry

__all__ = [
    "DEMO_SPECS",
    "DemoSet",
    "build_demo_sets",
    "curated_lines",
    "ensure_demo_contracts",
]

DEMO_SPECS: Final = (
    "demo_predictive_maintenance.toml",
    "demo_part_quality.toml",
    "demo_anomaly_windows.toml",
)
"""The packaged specs the demo builds, in order."""
_DEMO_KINDS: Final = ("telemetry", "machine_event", "inspection")

Say = Callable[[str], None]
Progress = Callable[[str, Mapping[str, int]], None]


@dataclass(frozen=True)
class DemoSet:
    """One demo set's outcome.

    Attributes:
        name: the dataset name of the spec.
        line: the one-line summary (``name@vN: train N, validation N, test N <unit>``) or,
            when it was not published, ``name: not published: <why>``.
        version: the published version, or None.
        warnings: the version's output-check warnings in words, each ending with its check
            id in brackets (:func:`lake.curation.warnings.warning_lines`).
    """

    name: str
    line: str
    version: int | None
    warnings: tuple[str, ...] = ()


def curated_lines(built: Sequence[DemoSet]) -> list[str]:
    """The demo report's curated-sets block: a heading, one line per set and under it each of
    its warnings in words (with the check id), and what a one-class split means for the demo."""
    lines = ["curated datasets (rows per split; `maxlake datasets show NAME` for the summary)"]
    for demo_set in built:
        lines.append(f"  {demo_set.line}")
        lines += [f"    warning: {warning}" for warning in demo_set.warnings]
    if any("[split_label_classes:" in w for s in built for w in s.warnings):
        lines.append(
            "  (published anyway: a warning never stops a set. Each `make demo` on the same lake "
            "adds ~16 h of earlier factory time, so the next versions hold more failures)"
        )
    return lines


def demo_spec_paths() -> list[Path]:
    """The packaged demo spec files, in build order."""
    folder = files("lake.curation") / "specs"
    return [Path(str(folder / name)) for name in DEMO_SPECS]


def build_demo_sets(
    settings: Settings, *, say: Say = print, progress: Progress | None = None
) -> list[DemoSet]:
    """Build every demo set from the lake of ``settings``.

    Adds the demo sharing contracts the specs' purposes need (:func:`ensure_demo_contracts`)
    and builds each spec at the silver versions current now, with the registry that
    ``maxlake datasets build`` uses (:mod:`lake.curation.registry_rule`: the lake's live
    registry unless ``MAXLAKE_REGISTRY_FILE`` names a file), so a set's columns do not depend
    on which of the two built it. A build identical to the set's newest version (same content
    hash and spec, as ``datasets build`` decides) publishes nothing: its line ends
    ``unchanged: ...`` and names that version.

    Returns:
        one :class:`DemoSet` per spec, in :data:`DEMO_SPECS` order.
    """

    specs = [load_spec(path, jobs=JOBS) for path in demo_spec_paths()]
    ensure_demo_contracts(settings, sorted({s.purpose for s in specs}), say=say)
    store = DeltaStore.from_settings(settings)
    area = CuratedArea.of(settings)
    out = []
    for spec in specs:
        registry = build_registry(settings, area, spec.name)
        say(f"building the curated dataset {spec.name!r} ({spec.job}, {registry.described})")
        try:
            manifest = build_dataset(
                store,
                spec,
                registry=registry.registry,
                progress=progress,
                sharing=sharing_gate(settings),
                out_root=area,
                registry_version=registry.version,
                registry_notes=registry.notes,
                publish_identical=False,
            )
        except UnchangedDataset as unchanged:
            same = unchanged.manifest
            line = (
                f"{one_line(same)}  unchanged: this build is identical to {same.name}@v"
                f"{same.version} (same content hash, same spec), nothing published"
            )
            out.append(DemoSet(spec.name, line, same.version, tuple(warning_lines(same))))
            continue
        except MaxlakeError as exc:
            out.append(DemoSet(spec.name, f"{spec.name}: not published: {exc}", None))
            continue
        out.append(
            DemoSet(spec.name, one_line(manifest), manifest.version, tuple(warning_lines(manifest)))
        )
    return out


def ensure_demo_contracts(settings: Settings, purposes: list[str], *, say: Say = print) -> None:
    """One demo sharing contract per simulated tenant covering ``purposes``, unless each is in
    force.

    The tenants are those of the packaged registry, which the demo simulates; a company
    onboarded on the lake gets no demo contract: its own contract decides what it shares.

    The contract (``<tenant>-demo``) shares telemetry, machine events and inspections,
    pseudonymises every identifier (the default) and turns rare-type suppression off: every
    machine type of the demo registry belongs to a single company, so suppression would empty
    every set (in a real alliance, keep it on).
    """

    store = ContractStore(contracts_dir(settings))
    keys = KeyRing(keys_file(settings))
    listed = ", ".join(f'"{p}"' for p in purposes)
    kinds = ", ".join(f'"{k}"' for k in _DEMO_KINDS)
    for tenant in load_registry().tenants:
        if all(store.in_force(tenant.id, p) is not None for p in purposes):
            continue
        contract = store.add(
            (
                f'id = "{tenant.id}-demo"\ntenant = "{tenant.id}"\n'
                f"purposes = [{listed}]\n"
                'description = "maxlake demo: machine health and part quality, pseudonymised"\n'
                f"[share]\nkinds = [{kinds}]\n"
                "[deidentify]\nsuppress_rare = false\n"
            ).encode(),
            source="maxlake demo",
        )
        keys.ensure(contract.id)
        say(f"sharing contract {contract.id} v{contract.version} for {', '.join(purposes)}")
