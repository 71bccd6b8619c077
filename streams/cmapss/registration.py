"""Registering the reference tenant: the registry change and the sharing contract.

The import registers the tenant, the machine type (with the NASA units it needs defined for
pint: ``psia``, ``lbm``, ``pps``) and every imported engine through the registry's normal path:
a new version of the live registry under ``<lake root>/registry`` (``RegistryStore.commit``,
the same as ``maxlake registry apply``), made only when something changes. The registry
additions are kept as a TOML fragment (``<lake root>/reference/cmapss/registry-fragment.toml``)
covering every sub-dataset imported into this lake (from their ``import.json`` records), and
the resulting registry is also written as one TOML file (``<lake root>/reference/
registry.toml``) for tools that take a fixed ``--registry FILE``.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

import tomli_w

from lake.location import LakeLocation
from lake.registry_store import RegistryStore
from lake.sharing import Contract, ContractStore, KeyRing, contracts_dir, keys_file
from maxlake.errors import ConfigError
from maxlake.settings import Settings
from schemas import parse_registry
from schemas.registry_diff import merge_documents
from streams.cmapss.assets import TENANT, registry_fragment

__all__ = [
    "CONTRACT_ID",
    "REFERENCE_DIR",
    "ensure_contract",
    "reference_dir",
    "reference_registry",
    "register",
]

REFERENCE_DIR = "reference"
"""Folder under the lake root for reference data: registry fragment and ground truth."""


def reference_dir(settings: Settings) -> Path:
    """``<lake root>/reference/cmapss`` (a local folder).

    Raises:
        ConfigError: the lake root is an object-store URI.
    """
    lake = LakeLocation.from_settings(settings)
    if not lake.is_local:
        raise ConfigError(
            f"the C-MAPSS import keeps its ground truth beside the lake and needs a local lake "
            f"root, got {lake.describe()!r}; set MAXLAKE_LAKE_ROOT to a folder"
        )
    return Path(lake.root) / REFERENCE_DIR / "cmapss"


def reference_registry(settings: Settings) -> Path:
    """The registry TOML file written by :func:`register` (the live registry's newest version)."""
    return reference_dir(settings).parent / "registry.toml"


def register(settings: Settings, *, reason: str = "import NASA C-MAPSS") -> Path:
    """Add the imported sub-datasets to the live registry; return :func:`reference_registry`.

    Raises:
        RegistryError: the result does not validate (nothing is stored then).
        RegistryConflict: another registry change was stored meanwhile (run it again).
    """
    folder = reference_dir(settings)
    subsets: dict[str, tuple[list[int], list[int]]] = {}
    for record_path in sorted(folder.glob("*/import.json")):
        record = json.loads(record_path.read_text())
        subsets[record["subset"]] = (record["train_engines"], record["test_engines"])
    fragment = registry_fragment(subsets)
    store = RegistryStore(LakeLocation.from_settings(settings))
    base = store.get()
    document = merge_documents(
        base.registry.document(), tomllib.loads(fragment), source="C-MAPSS registry fragment"
    )
    current = base
    if store.plan(document, base=base):
        current = store.commit(
            document,
            base=base,
            author="maxlake import cmapss",
            reason=f"{reason}: {', '.join(sorted(subsets))}",
        )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "registry-fragment.toml").write_text(fragment, encoding="utf-8")
    target = reference_registry(settings)
    staging = target.with_name(f".registry.{os.getpid()}.toml")
    staging.write_text(tomli_w.dumps(current.registry.document()), encoding="utf-8")
    parse_registry(staging.read_bytes(), source=str(staging))
    staging.replace(target)
    return target


CONTRACT_ID = "nasa-cmapss-public"
CONTRACT_PURPOSES = ("remaining-useful-life-*",)


def ensure_contract(settings: Settings) -> str:
    """The reference tenant's sharing contract (added once); returns ``<id> v<version>``.

    The data is public domain and shared as is: every identifier is released in clear (model
    teams match their predictions to the published ground truth by engine; the job needs the
    line to tell running engines apart), rare-type suppression is off (the turbofan type
    belongs to this tenant alone), and times and values are left exact (no time shift, no value
    or feature noise, no linkage limit). The contract defaults of value noise (1 % of a tag's
    registry range: 10 degR on T30) would bury the degradation signal: FD001's sensors move by
    about 0.1 % of their value over an engine's life (capped test RMSE 24.7-26.4 instead of
    14.4 under the former noise of 1 % of the value). A lake holding an older version with
    noise or a shift gets this one as its next version. Purposes: ``remaining-useful-life-*``.
    """
    store = ContractStore(contracts_dir(settings))
    purpose = CONTRACT_PURPOSES[0].rstrip("*") + "research"
    current = store.in_force(TENANT, purpose)
    if current is None or _altered(current):
        purposes = ", ".join(f'"{p}"' for p in CONTRACT_PURPOSES)
        current = store.add(
            (
                f'id = "{CONTRACT_ID}"\ntenant = "{TENANT}"\npurposes = [{purposes}]\n'
                'description = "NASA C-MAPSS: public-domain reference data, shared as is"\n'
                '[share]\nkinds = ["telemetry"]\n'
                '[deidentify]\nrelease = ["tenant", "plant", "line", "machine"]\n'
                "suppress_rare = false\ntime_shift_days = 0\nvalue_noise = 0\nfeature_noise = 0\n"
                "max_linkable_share = 1\n"
            ).encode(),
            source="maxlake import cmapss",
        )
        KeyRing(keys_file(settings)).ensure(current.id)
    return f"{current.id} v{current.version}"


def _altered(contract: Contract) -> bool:
    """Whether the reference contract in force changes times or values (an older version)."""
    return bool(
        contract.time_shift_days
        or contract.value_noise
        or contract.feature_noise
        or contract.max_linkable_share < 1
    )
