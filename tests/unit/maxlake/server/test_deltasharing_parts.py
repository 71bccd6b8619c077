"""The Delta Sharing building blocks on their own: pages, schemas, signed URLs."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pyarrow as pa
import pytest

from lake.access import Principal
from lake.sharing import ContractStore
from maxlake.server.context import ServiceContext
from maxlake.server.deltasharing import catalog
from maxlake.server.deltasharing.paging import PageError, paginate
from maxlake.server.deltasharing.schema import UnsupportedType, schema_string
from maxlake.server.signing import SignatureError, UrlSigner


def _pages(items: list[str], size: int) -> list[list[str]]:
    pages, token = [], None
    while True:
        query = {"maxResults": str(size), **({"pageToken": token} if token else {})}
        page = paginate(items, query, key=str, render=lambda s: {"name": s})
        pages.append([i["name"] for i in page.items])
        token = page.next_token
        if token is None:
            return pages


def test_pages_cover_every_item_once_in_name_order() -> None:
    assert _pages(["c", "a", "b"], 2) == [["a", "b"], ["c"]]
    assert _pages(["c", "a", "b"], 3) == [["a", "b", "c"]]
    assert _pages([], 5) == [[]]


def test_zero_results_still_hands_out_a_token() -> None:
    page = paginate(["a"], {"maxResults": "0"}, key=str, render=lambda s: {"name": s})
    assert page.items == []
    assert page.next_token is not None
    assert page.body() == {"items": [], "nextPageToken": page.next_token}


@pytest.mark.parametrize(
    "query", [{"maxResults": "-1"}, {"maxResults": "ten"}, {"pageToken": "not-ours"}]
)
def test_bad_page_parameters_are_refused(query: dict[str, str]) -> None:
    with pytest.raises(PageError):
        paginate(["a"], query, key=str, render=lambda s: {"name": s})


def test_schema_string_maps_arrow_types_to_delta_types() -> None:
    schema = pa.schema(
        [
            pa.field("machine", pa.large_string(), nullable=False),
            pa.field("readings", pa.uint32()),
            pa.field("hot", pa.int8()),
            pa.field("mean", pa.float64()),
            pa.field("at", pa.timestamp("us", tz="UTC")),
            pa.field("day", pa.date32()),
            pa.field("codes", pa.list_(pa.string())),
            pa.field("dims", pa.struct([pa.field("x", pa.float32())])),
        ]
    )
    doc = json.loads(schema_string(schema))
    types = {f["name"]: f["type"] for f in doc["fields"]}
    assert doc["type"] == "struct"
    assert types["machine"] == "string"
    assert types["readings"] == "long"
    assert types["hot"] == "byte"
    assert types["mean"] == "double"
    assert types["at"] == "timestamp"
    assert types["day"] == "date"
    assert types["codes"] == {"type": "array", "elementType": "string", "containsNull": True}
    assert types["dims"]["fields"][0]["type"] == "float"
    assert doc["fields"][0]["nullable"] is False


def test_a_type_without_a_delta_counterpart_is_named() -> None:
    with pytest.raises(UnsupportedType, match="duration"):
        schema_string(pa.schema([pa.field("d", pa.duration("s"))]))


def test_signed_urls_verify_until_they_expire() -> None:
    signer = UrlSigner(b"k" * 32, ttl_s=60)
    query, expires_ms = signer.query("/delta-sharing/files/a/v1/train.parquet", "acme", now=1000)
    params = dict(p.split("=", 1) for p in query.split("&"))
    assert expires_ms == 1_060_000
    signed = signer.verify("/delta-sharing/files/a/v1/train.parquet", params, now=1059)
    assert signed.principal == "acme"
    with pytest.raises(SignatureError, match="expired"):
        signer.verify("/delta-sharing/files/a/v1/train.parquet", params, now=1060)


@pytest.mark.parametrize(
    ("path", "change"),
    [
        ("/delta-sharing/files/b/v1/train.parquet", {}),
        ("/delta-sharing/files/a/v1/train.parquet", {"principal": "rival"}),
        ("/delta-sharing/files/a/v1/train.parquet", {"expires": "999999999"}),
        ("/delta-sharing/files/a/v1/train.parquet", {"signature": ""}),
    ],
)
def test_altered_urls_are_refused(path: str, change: dict[str, str]) -> None:
    signer = UrlSigner(b"k" * 32)
    query, _ = signer.query("/delta-sharing/files/a/v1/train.parquet", "acme")
    params = {**dict(p.split("=", 1) for p in query.split("&")), **change}
    with pytest.raises(SignatureError):
        signer.verify(path, params)


def test_another_key_does_not_verify() -> None:
    query, _ = UrlSigner(b"a" * 32).query("/p", "acme")
    with pytest.raises(SignatureError, match="altered"):
        UrlSigner(b"b" * 32).verify("/p", dict(p.split("=", 1) for p in query.split("&")))


def test_every_sharing_route_decides_through_the_catalogs_public_check(tmp_path: Path) -> None:
    ctx = cast(
        ServiceContext,
        SimpleNamespace(curated=tmp_path / "curated", contracts=ContractStore(tmp_path / "c")),
    )
    reader = Principal("ds-team", "model_team", None, "k", "s", "h", grants=("spindle",))

    assert catalog.check(ctx, None, "spindle", "1", "train").status == 401
    other = catalog.check(ctx, reader, "other", "1", "train")
    assert (other.outcome, other.status) == ("denied", 403)
    missing = catalog.check(ctx, reader, "spindle", "1", "train")
    assert (missing.outcome, missing.status) == ("not_found", 404)
