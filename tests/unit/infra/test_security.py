"""Access-control rules and broker secrets that need no JVM."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from kafka.admin import ACL, ACLOperation, ACLResourcePatternType, ResourceType

from infra.broker import LocalBroker
from infra.security import (
    AclEntry,
    BrokerSecrets,
    BrokerSecurityError,
    plant_acls,
    secure_broker_properties,
    worker_acls,
)


def _entries(acls: list[ACL]) -> set[tuple[str, str, str, str]]:
    found = {AclEntry.of(acl) for acl in acls}
    return {(e.principal, e.resource_type, e.resource_name, e.operation) for e in found}


def test_a_plant_may_write_and_describe_its_tenants_topics_only() -> None:
    acls = plant_acls("plant-1", topic_prefix="maxlake", tenant="acme")
    assert _entries(acls) == {
        ("User:plant-1", "TOPIC", "maxlake.acme.", "WRITE"),
        ("User:plant-1", "TOPIC", "maxlake.acme.", "DESCRIBE"),
    }
    assert all(a.resource_pattern.pattern_type is ACLResourcePatternType.PREFIXED for a in acls)
    assert not any(a.operation is ACLOperation.READ for a in acls)


@pytest.mark.parametrize("tenant", ["acme.eu", "", "acme*", "../x"])
def test_a_tenant_that_could_match_another_tenants_prefix_is_refused(tenant: str) -> None:
    with pytest.raises(BrokerSecurityError, match="ACL prefix"):
        plant_acls("plant-1", topic_prefix="maxlake", tenant=tenant)


@pytest.mark.parametrize("user", ["admin", "controller", "", "a b", "User:x"])
def test_super_users_and_malformed_names_cannot_be_granted(user: str) -> None:
    with pytest.raises(BrokerSecurityError, match="invalid user name"):
        plant_acls(user, topic_prefix="maxlake", tenant="acme")


def test_the_worker_reads_all_tenants_or_only_the_named_ones() -> None:
    everything = worker_acls("ingest", topic_prefix="maxlake", group_prefix="maxlake-ingest")
    assert _entries(everything) == {
        ("User:ingest", "TOPIC", "maxlake.", "READ"),
        ("User:ingest", "TOPIC", "maxlake.", "DESCRIBE"),
        ("User:ingest", "GROUP", "maxlake-ingest", "READ"),
        ("User:ingest", "TOPIC", "maxlake-ingest", "CREATE"),
        ("User:ingest", "TOPIC", "maxlake-ingest", "DESCRIBE"),
        ("User:ingest", "TOPIC", "maxlake-ingest", "READ"),
    }
    some = worker_acls("ingest", topic_prefix="maxlake", group_prefix="g", tenants=["acme"])
    topics = {
        a.resource_pattern.resource_name
        for a in some
        if a.resource_pattern.resource_type is ResourceType.TOPIC
    }
    assert topics == {"maxlake.acme.", "g"}
    assert not any(a.operation is ACLOperation.WRITE for a in some)
    assert all(
        a.resource_pattern.resource_name == "g" for a in some if a.operation is ACLOperation.CREATE
    )


def test_broker_secrets_are_generated_once_with_mode_0600(tmp_path: Path) -> None:
    first = BrokerSecrets.load_or_create(tmp_path)
    again = BrokerSecrets.load_or_create(tmp_path)
    assert (first.admin_password, first.controller_password) == (
        again.admin_password,
        again.controller_password,
    )
    assert first.admin_password != first.controller_password
    assert len(first.admin_password) >= 40
    for name in ("admin.password", "controller.password"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    assert first.admin_password not in repr(first)


def test_a_password_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    BrokerSecrets.load_or_create(tmp_path)
    (tmp_path / "admin.password").chmod(0o644)
    with pytest.raises(BrokerSecurityError, match="chmod 600"):
        BrokerSecrets.load_or_create(tmp_path)


def test_secure_properties_deny_by_default_with_the_admin_and_controller_as_super_users(
    tmp_path: Path,
) -> None:
    lines = secure_broker_properties(BrokerSecrets.load_or_create(tmp_path)).splitlines()
    assert "allow.everyone.if.no.acl.found=false" in lines
    assert "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer" in lines
    assert "super.users=User:admin;User:controller" in lines
    assert "sasl.enabled.mechanisms=SCRAM-SHA-512" in lines


def _formatted_home(tmp_path: Path, *, secure: bool) -> tuple[Path, Path]:
    home, libs = tmp_path / "home", tmp_path / "libs"
    (home / "data").mkdir(parents=True)
    (home / "data" / "meta.properties").write_text("version=1\n")
    if secure:
        (home / "secure-mode").write_text("SASL_PLAINTEXT SCRAM-SHA-512\n")
    libs.mkdir()
    (libs / "kafka_2.13-4.4.0.jar").write_bytes(b"")
    return home, libs


@pytest.mark.parametrize("formatted_secure", [True, False])
def test_a_home_is_started_only_in_the_mode_it_was_formatted_in(
    tmp_path: Path, formatted_secure: bool
) -> None:
    home, libs = _formatted_home(tmp_path, secure=formatted_secure)
    broker = LocalBroker(
        home, port=1, controller_port=2, libs_dir=libs, secure=not formatted_secure
    )
    with pytest.raises(BrokerSecurityError, match="formatted in"):
        broker.start()
    assert not (home / "server.properties").exists()
