"""One tenant id grammar (no dots) for the registry, topics, ACLs and sharing contracts."""

from __future__ import annotations

import pytest

from infra.security import BrokerSecurityError, plant_acls
from lake.sharing.contract import ContractFile
from maxlake.errors import ConfigError
from maxlake.settings import Settings
from schemas import RegistryError, load_registry, parse_registry
from schemas.kinds import TENANT_ID_PATTERN
from streams.ingest import tenant_of_topic
from streams.topics import ensure_topics


def test_a_dotted_tenant_is_refused_everywhere_before_anything_is_created() -> None:
    doc = load_registry().document()
    doc["tenants"][0]["id"] = "acme.eu"
    with pytest.raises(RegistryError, match=r"tenants\[0\]\.id"):
        parse_registry(doc)
    with pytest.raises(ConfigError, match=r"invalid tenant id 'acme\.eu'"):
        ensure_topics(Settings(bootstrap_servers="127.0.0.1:1"), ["acme.eu"])
    with pytest.raises(BrokerSecurityError, match=r"'acme\.eu' cannot name an ACL prefix"):
        plant_acls("acme-plant", topic_prefix="maxlake", tenant="acme.eu")
    assert ContractFile.model_json_schema()["properties"]["tenant"]["pattern"] == TENANT_ID_PATTERN


def test_tenant_of_topic_takes_the_segment_before_the_kind() -> None:
    assert tenant_of_topic("maxlake.acme-eu.telemetry") == "acme-eu"
    assert tenant_of_topic("test.prefix.with.dots.acme.telemetry") == "acme"
