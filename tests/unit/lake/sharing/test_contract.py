"""Contract files, the versioned store, revocations and pseudonym keys."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lake.sharing import (
    ContractError,
    ContractNotFound,
    ContractStore,
    KeyRing,
    Pseudonymiser,
    SecretError,
    parse_contract,
)
from lake.sharing.contract import schema_text
from tests.unit.lake.sharing.helpers import contract_toml


def test_a_valid_contract_parses_with_its_defaults() -> None:
    contract = parse_contract(contract_toml(), source="c.toml")
    assert contract.id == "nw-pm"
    assert contract.kinds == ("inspection", "telemetry")
    assert contract.tags is None
    assert contract.covers("predictive-maintenance-research")
    assert not contract.covers("quality-research")
    assert contract.emptied_columns("machine_event") == ("alarm_text",)


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (('id = "nw-pm"', 'id = "NW PM"'), "id"),
        (('kinds = ["telemetry", "inspection"]', 'kinds = ["video"]'), "share.kinds"),
        (('"lot"]', '"recipe"]'), "deidentify.pseudonymise"),
        (
            ("[share]\n", '[share]\nconfidential_columns = ["telemetry.tenant"]\n'),
            "share.confidential_columns",
        ),
        (("[share]\n", '[share]\nstart = "2026-01-01T00:00:00"\n'), "share.start"),
        (("[share]\n", "[share]\ncolour = 1\n"), "share.colour"),
        (('purposes = ["predictive-maintenance-*"]', "purposes = []"), "purposes"),
    ],
)
def test_invalid_contracts_name_the_key(change: tuple[str, str], key: str) -> None:
    text = contract_toml().decode().replace(*change)
    with pytest.raises(ContractError, match=key.replace(".", r"\.")):
        parse_contract(text.encode(), source="c.toml")


def test_versions_are_numbered_and_revocation_takes_the_contract_out_of_force(
    tmp_path: Path,
) -> None:
    store = ContractStore(tmp_path)
    assert store.add(contract_toml()).version == 1
    assert store.add(contract_toml(extra_share='tags = ["spindle_temp"]\n')).version == 2
    in_force = store.in_force("northwind-auto", "predictive-maintenance-x")
    assert in_force is not None
    assert (in_force.version, in_force.tags) == (2, ("spindle_temp",))

    store.revoke("nw-pm", 2, reason="too broad")
    assert store.is_revoked("nw-pm", 2)
    assert not store.is_revoked("nw-pm", 1)
    assert store.in_force("northwind-auto", "predictive-maintenance-x") is None
    assert [c.version for c in store.contracts()] == [1, 2]


def test_ids_are_unique_across_tenants_and_lookups_list_what_exists(tmp_path: Path) -> None:
    store = ContractStore(tmp_path)
    store.add(contract_toml())
    with pytest.raises(ContractError, match="belongs to tenant"):
        store.add(contract_toml(tenant="ironbridge-steel"))
    with pytest.raises(ContractNotFound, match="nw-pm"):
        store.get("nope")
    with pytest.raises(ContractNotFound):
        store.revoke("nw-pm", 5)


def test_keys_are_private_random_and_never_shown(tmp_path: Path) -> None:
    keys = KeyRing(tmp_path / "keys.json")
    assert keys.ensure("a")
    assert not keys.ensure("a")
    keys.ensure("b")
    assert keys.key("a") != keys.key("b")
    assert len(keys.key("a")) == 32
    assert "key=***" in repr(Pseudonymiser("a", keys.key("a")))

    os.chmod(keys.path, 0o644)
    with pytest.raises(SecretError, match="chmod 600") as err:
        keys.key("a")
    assert keys.path.read_text().split('"a": "')[1][:64] not in str(err.value)
    os.chmod(keys.path, 0o600)
    with pytest.raises(SecretError, match="no pseudonym key"):
        keys.key("c")


def test_pseudonyms_are_deterministic_scoped_and_contract_specific() -> None:
    key = bytes(range(32))
    a = Pseudonymiser("c1", key)
    machine = ("t", "p", "l", "cnc-101")
    assert a.pseudonym("machine", machine) == a.pseudonym("machine", machine)
    assert a.pseudonym("machine", machine) != a.pseudonym("machine", ("t", "p2", "l", "cnc-101"))
    assert a.pseudonym("machine", machine) != Pseudonymiser("c2", key).pseudonym("machine", machine)
    assert a.pseudonym("machine", machine) != Pseudonymiser("c1", key[::-1]).pseudonym(
        "machine", machine
    )
    assert a.pseudonym("lot", ("t", "L1")).startswith("lot_")


def test_the_published_json_schema_is_current() -> None:
    published = Path(__file__).parents[4] / "docs" / "schemas" / "sharing-contract.schema.json"
    assert published.read_text() == schema_text(), "regenerate with lake.sharing.contract"


def test_errors_name_the_exact_location() -> None:
    text = contract_toml().decode().replace('"inspection"]', '"inspection", 7]')
    with pytest.raises(ContractError, match=r"c\.toml: share\.kinds\[2\]: .*got 7"):
        parse_contract(text.encode(), source="c.toml")
