"""The live registry under the lake root: versions with who/when/why, merges, diffs, refusals
of silent re-typing, conflicts between concurrent changes, and polling by workers."""

from __future__ import annotations

from pathlib import Path

import pytest

from lake.registry_store import (
    LiveRegistry,
    RegistryConflict,
    RegistryStore,
    RetypeRefused,
)
from maxlake.errors import ConfigError
from schemas import RegistryError
from schemas.registry_diff import diff_documents, merge_documents

_NEW_MACHINE = {
    "tenants": [
        {
            "id": "northwind-auto",
            "plants": [
                {
                    "id": "stuttgart",
                    "lines": [
                        {
                            "id": "block-l1",
                            "machines": [{"id": "cnc-104", "machine_type": "cnc_mill"}],
                        }
                    ],
                }
            ],
        }
    ]
}


def test_empty_store_serves_the_packaged_seed_as_version_0(tmp_path: Path) -> None:
    store = RegistryStore(tmp_path)
    seed = store.get()
    assert (seed.version, store.versions()) == (0, [0])
    assert seed.registry.tenant("northwind-auto") is not None
    with pytest.raises(ConfigError, match="registry version 3 does not exist"):
        store.get(3)


def test_a_merged_change_becomes_version_1_with_author_reason_and_diff(tmp_path: Path) -> None:
    store = RegistryStore(tmp_path)
    seed = store.get()
    doc = merge_documents(seed.registry.document(), _NEW_MACHINE)
    changes = store.plan(doc, base=seed)
    assert [str(c) for c in changes] == [
        "+ machine northwind-auto/stuttgart/block-l1/cnc-104 machine_type='cnc_mill'"
    ]
    v1 = store.commit(doc, base=seed, author="ines@plant", reason="cnc-104 commissioned")
    assert (v1.version, v1.parent, v1.author, v1.reason) == (
        1,
        0,
        "ines@plant",
        "cnc-104 commissioned",
    )
    assert v1.at.endswith("+00:00")
    assert v1.registry.machine_type_of("northwind-auto", "stuttgart", "block-l1", "cnc-104") == (
        "cnc_mill"
    )
    assert (
        store.get(0).registry.machine_type_of("northwind-auto", "stuttgart", "block-l1", "cnc-104")
        is None
    )
    assert (tmp_path / "registry" / "v000001.json").is_file()
    assert [v.version for v in store.history()] == [0, 1]
    with pytest.raises(ConfigError, match="nothing to change"):
        store.commit(doc, base=v1, author="a", reason="again")


def test_merging_keeps_names_and_adds_children_in_order() -> None:
    base = {
        "tenants": [
            {
                "id": "t",
                "name": "T",
                "industry": "x",
                "plants": [
                    {
                        "id": "p",
                        "name": "P",
                        "lines": [
                            {
                                "id": "l",
                                "name": "L",
                                "machines": [{"id": "m1", "machine_type": "a"}],
                            }
                        ],
                    }
                ],
            }
        ]
    }
    partial = {
        "tenants": [
            {
                "id": "t",
                "plants": [
                    {
                        "id": "p",
                        "lines": [{"id": "l", "machines": [{"id": "m2", "machine_type": "a"}]}],
                    }
                ],
            }
        ]
    }
    merged = merge_documents(base, partial)
    line = merged["tenants"][0]["plants"][0]["lines"][0]
    assert line == {
        "id": "l",
        "name": "L",
        "machines": [{"id": "m1", "machine_type": "a"}, {"id": "m2", "machine_type": "a"}],
    }
    assert [str(c) for c in diff_documents(merged, base)] == ["- machine t/p/l/m2"]


def test_a_partial_entry_without_its_id_is_named() -> None:
    with pytest.raises(RegistryError, match=r"p.toml: tenants\[0\].plants\[1\].id: missing"):
        merge_documents(
            {}, {"tenants": [{"id": "t", "plants": [{"id": "a"}, {"name": "b"}]}]}, source="p.toml"
        )


def test_retyping_a_tag_or_machine_needs_a_migration_note(tmp_path: Path) -> None:
    store = RegistryStore(tmp_path)
    seed = store.get()
    doc = seed.registry.document()
    doc["machine_types"]["cnc_mill"]["tags"][1]["unit"] = "degF"
    doc["machine_types"]["cnc_mill"]["tags"][1]["max"] = 194.0
    doc["tenants"][0]["plants"][0]["lines"][0]["machines"][0]["machine_type"] = "pick_place"
    with pytest.raises(RetypeRefused) as info:
        store.commit(doc, base=seed, author="a", reason="r")
    message = str(info.value)
    assert "tag cnc_mill/spindle_temp changes unit" in message
    assert "machine northwind-auto/stuttgart/block-l1/cnc-101 changes machine_type" in message
    assert store.versions() == [0]
    v1 = store.commit(doc, base=seed, author="a", reason="r", migration="degF from 2026-12")
    assert v1.migration == "degF from 2026-12"


def test_invalid_documents_are_refused_with_their_location(tmp_path: Path) -> None:
    store = RegistryStore(tmp_path)
    seed = store.get()
    doc = seed.registry.document()
    doc["tenants"][1]["plants"][0]["lines"][0]["machines"][0]["machine_type"] = "lathe"
    with pytest.raises(
        RegistryError, match=r"tenants\[1\]\.plants\[0\]\.lines\[0\]\.machines\[0\]"
    ):
        store.commit(doc, base=seed, author="a", reason="r")


def test_two_changes_on_the_same_base_cannot_both_win(tmp_path: Path) -> None:
    store = RegistryStore(tmp_path)
    seed = store.get()
    doc = merge_documents(seed.registry.document(), _NEW_MACHINE)
    store.commit(doc, base=seed, author="a", reason="first")
    other = seed.registry.document()
    other["machine_types"]["cnc_mill"]["defect_codes"].append("RUST")
    with pytest.raises(RegistryConflict):
        store.commit(other, base=seed, author="b", reason="second")


def test_live_registry_follows_new_versions_within_the_poll_interval(tmp_path: Path) -> None:
    store = RegistryStore(tmp_path)
    now = [100.0]
    live = LiveRegistry(store, poll_s=5.0, clock=lambda: now[0])
    assert live.current().version == 0
    seed = store.get()
    store.commit(
        merge_documents(seed.registry.document(), _NEW_MACHINE), base=seed, author="a", reason="r"
    )
    now[0] += 4.9
    assert live.current().version == 0
    now[0] += 0.2
    assert live.current().version == 1
