"""Principals, tokens and grants in a real access folder under tmp_path."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lake.access import AccessStore, PrincipalError
from lake.access.tokens import ProfileToken


def test_token_is_shown_once_and_stored_only_as_a_salted_hash(tmp_path: Path) -> None:
    store = AccessStore(tmp_path)
    principal, token = store.add("pm-team", "model_team", tenant="northwind-auto")

    stored = (tmp_path / "principals.json").read_text()
    secret = token.rsplit("_", 1)[1]
    assert secret not in stored
    assert token not in stored
    assert json.loads(stored)["principals"]["pm-team"]["salt"] == principal.salt
    assert store.authenticate(token) == principal
    assert (tmp_path / "principals.json").stat().st_mode & 0o077 == 0


def test_wrong_malformed_and_removed_tokens_do_not_authenticate(tmp_path: Path) -> None:
    store = AccessStore(tmp_path)
    _, token = store.add("pm-team", "model_team")
    _, other = store.add("plant-1", "plant")
    forged = token[: token.rindex("_") + 1] + other.rsplit("_", 1)[1]

    assert store.authenticate(forged) is None
    assert store.authenticate("") is None
    assert store.authenticate("mxl_../../etc_passwd") is None
    assert store.authenticate(token) is not None
    store.remove("pm-team")
    assert store.authenticate(token) is None
    assert AccessStore(tmp_path).authenticate(other) is not None


def test_same_secret_gets_different_hashes_per_principal(tmp_path: Path) -> None:
    store = AccessStore(tmp_path)
    a, _ = store.add("a", "model_team")
    b, _ = store.add("b", "model_team")
    assert a.salt != b.salt
    assert a.token_hash != b.token_hash


def test_grants_are_per_dataset(tmp_path: Path) -> None:
    store = AccessStore(tmp_path)
    store.add("pm-team", "model_team")
    store.grant("pm-team", "spindle")
    store.grant("pm-team", "quality")

    assert store.get("pm-team").may_read("spindle")
    assert not store.get("pm-team").may_read("spindle2")
    assert store.revoke("pm-team", "spindle").grants == ("quality",)
    with pytest.raises(PrincipalError, match="no grant"):
        store.revoke("pm-team", "spindle")


@pytest.mark.parametrize(
    ("name", "kind"), [("../x", "model_team"), ("Team", "model_team"), ("ok", "admin")]
)
def test_bad_names_and_kinds_are_refused(tmp_path: Path, name: str, kind: str) -> None:
    with pytest.raises(PrincipalError):
        AccessStore(tmp_path).add(name, kind)


def test_bad_dataset_names_and_duplicates_are_refused(tmp_path: Path) -> None:
    store = AccessStore(tmp_path)
    store.add("pm-team", "model_team")
    with pytest.raises(PrincipalError, match="exists"):
        store.add("pm-team", "plant")
    with pytest.raises(PrincipalError, match="does not match"):
        store.grant("pm-team", "../etc")
    with pytest.raises(PrincipalError, match="no principal"):
        store.grant("nobody", "spindle")


def test_profile_tokens_expire_and_rotate(tmp_path: Path) -> None:
    store = AccessStore(tmp_path)
    principal, own = store.add("acme-ml", "model_team")
    soon = datetime.now(UTC) + timedelta(hours=1)
    record, short, _ = store.issue_profile_token("acme-ml", soon)
    later = datetime.now(UTC) + timedelta(days=30)
    _, long, dropped = store.issue_profile_token("acme-ml", later)
    assert dropped == ()
    assert store.authenticate(short) == principal
    assert store.authenticate(long) == principal
    assert store.expired_at(long) is None
    assert record.expired(soon)
    assert not record.expired(soon - timedelta(milliseconds=1))
    _, rotated, dropped = store.issue_profile_token("acme-ml", later, replace=True)
    assert len(dropped) == 2
    assert store.authenticate(long) is None
    assert store.authenticate(rotated) == principal
    assert store.authenticate(own) == principal
    assert short.split("_")[1] not in (tmp_path / "tokens.json").read_text()
    assert "_".join(rotated.split("_")[2:]) not in (tmp_path / "tokens.json").read_text()
    store.remove("acme-ml")
    assert store.authenticate(rotated) is None


def test_an_expired_profile_token_is_told_apart_from_a_wrong_one(tmp_path: Path) -> None:
    store = AccessStore(tmp_path)
    store.add("acme-ml", "model_team")
    record, token, _ = store.issue_profile_token("acme-ml", datetime.now(UTC) + timedelta(days=1))
    past = ProfileToken(**{**record.__dict__, "expires_at": "2020-01-01T00:00:00.000Z"})
    store.tokens.add(past)
    assert store.authenticate(token) is None
    assert store.expired_at(token) == "2020-01-01T00:00:00.000Z"
    wrong = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert store.expired_at(wrong) is None


def test_a_profile_expiry_must_lie_ahead(tmp_path: Path) -> None:
    store = AccessStore(tmp_path)
    store.add("acme-ml", "model_team")
    with pytest.raises(PrincipalError, match="not in the future"):
        store.issue_profile_token("acme-ml", datetime(2020, 1, 1, tzinfo=UTC))
    with pytest.raises(PrincipalError, match="no principal"):
        store.issue_profile_token("nobody", datetime(2999, 1, 1, tzinfo=UTC))
