"""Contracts, keys and builds for the sharing tests (a real lake under tmp_path)."""

from __future__ import annotations

from pathlib import Path

from lake import DeltaStore
from lake.curation import Manifest, build_dataset
from lake.sharing import ContractStore, KeyRing, SharingGate
from tests.unit.lake.curation.test_build_helpers import JOBS, registry, spec

PURPOSE = "predictive-maintenance-research"


def contract_toml(
    cid: str = "nw-pm",
    *,
    tenant: str = "northwind-auto",
    purposes: str = '["predictive-maintenance-*"]',
    pseudonymise: str = '["tenant", "plant", "line", "machine", "part_serial", "lot"]',
    extra_share: str = "",
    suppress_rare: bool = False,
    extra_deid: str = "",
) -> bytes:
    """A contract file releasing telemetry and inspections of ``tenant``."""
    return (
        f'id = "{cid}"\n'
        f'tenant = "{tenant}"\n'
        f"purposes = {purposes}\n"
        "[share]\n"
        'kinds = ["telemetry", "inspection"]\n'
        f"{extra_share}"
        "[deidentify]\n"
        f"pseudonymise = {pseudonymise}\n"
        f"suppress_rare = {'true' if suppress_rare else 'false'}\n"
        f"{extra_deid}"
    ).encode()


class Sharing:
    """A contract store and key file under ``root``."""

    def __init__(self, root: Path, *, min_group_size: int = 2) -> None:
        self.store = ContractStore(root / "contracts")
        self.keys = KeyRing(root / "keys.json")
        self.gate = SharingGate(self.store, self.keys, min_group_size=min_group_size)

    def add(self, data: bytes) -> None:
        """Add a contract version and make sure its key exists."""
        contract = self.store.add(data)
        self.keys.ensure(contract.id)


def build(store: DeltaStore, sharing: Sharing | None, name: str = "spindle") -> Manifest:
    """Build the test spec of ``tag_means`` under ``sharing``."""
    return build_dataset(
        store,
        spec(name),
        registry=registry(),
        jobs=JOBS,
        sharing=sharing.gate if sharing else None,
        allow_failed_quality=True,
    )
