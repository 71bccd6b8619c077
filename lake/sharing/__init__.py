"""Sharing between companies: versioned contracts, keyed pseudonyms, build-time enforcement.

A tenant's contract (:mod:`lake.sharing.contract`) says what it releases for a purpose and in
which de-identified form; the :class:`ContractStore` keeps every version and the revocations;
the :class:`SharingGate` applies them when a dataset is built (see :mod:`lake.sharing.enforce`);
:func:`lake.curation.revoke_contract` takes a contract out of force and marks the versions
built under it.
"""

from lake.sharing.contract import PSEUDONYMISABLE, Contract, parse_contract
from lake.sharing.deid import Pseudonymiser, deidentify
from lake.sharing.enforce import SharedInputs, SharingGate
from lake.sharing.errors import (
    ContractConflict,
    ContractError,
    ContractNotFound,
    DisclosureRefused,
    IdentifierLeak,
    SecretError,
    UncheckableFile,
    WithholdingResetError,
)
from lake.sharing.keys import KeyRing
from lake.sharing.machines import raw_identifiers
from lake.sharing.paths import contracts_dir, keys_file, sharing_gate
from lake.sharing.store import ContractStore, Revocation
from lake.sharing.withholding import Withholding, withholding

__all__ = [
    "PSEUDONYMISABLE",
    "Contract",
    "ContractConflict",
    "ContractError",
    "ContractNotFound",
    "ContractStore",
    "DisclosureRefused",
    "IdentifierLeak",
    "KeyRing",
    "Pseudonymiser",
    "Revocation",
    "SecretError",
    "SharedInputs",
    "SharingGate",
    "UncheckableFile",
    "Withholding",
    "WithholdingResetError",
    "contracts_dir",
    "deidentify",
    "keys_file",
    "parse_contract",
    "raw_identifiers",
    "sharing_gate",
    "withholding",
]
