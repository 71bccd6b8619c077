"""The dataset service as model teams meet it: a real `maxlake serve` process over a real lake.

Datasets are built under real contracts (added with `maxlake contracts add`), principals are
created with `maxlake access principal add`, and every assertion goes through HTTP or the CLI.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from deltalake import DeltaTable
from deltalake.exceptions import CommitFailedError

from lake.curation import build_dataset
from tests.integration.serve_helpers import (
    Service,
    add_principal,
    reference_lake,
    running_serve,
)
from tests.unit.lake.curation.test_build_helpers import (
    JOBS,
    PUEBLA,
    STUTTGART,
    TENANT,
    registry,
    spec,
)

pytestmark = pytest.mark.integration

RAW_IDS = [
    TENANT,
    "SN-RAW-4711",
    "lot-1",
    *(p for p, _, _ in (STUTTGART, PUEBLA)),
    *(ln for _, ln, _ in (STUTTGART, PUEBLA)),
    *(m for _, _, ms in (STUTTGART, PUEBLA) for m in ms),
]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    root = tmp_path_factory.mktemp("serve")
    store, env, gate = reference_lake(root)
    build_dataset(store, spec("raw"), registry=registry(), jobs=JOBS)
    flawed = spec("flawed", purpose="pm-study", filters={"machine_types": ["reflow_oven"]})
    build_dataset(
        store, flawed, registry=registry(), jobs=JOBS, sharing=gate, allow_failed_quality=True
    )
    tokens = {
        "pm-team": add_principal(env, "pm-team", "spindle", "other", "doomed", "raw", "flawed"),
        "nogrant": add_principal(env, "nogrant"),
    }
    with running_serve(env, root, tokens, root / "lake") as svc:
        yield svc


def test_openapi_document_is_served(service: Service) -> None:
    status, _headers, body = service.get("/openapi.json")
    doc = json.loads(body)
    assert status == 200
    assert doc["openapi"].startswith("3.")
    assert "/v1/datasets/{name}/versions/{version}/splits/{split}" in doc["paths"]
    side = doc["paths"]["/v1/datasets/{name}/versions/{version}/files/{file}"]["get"]
    assert "allow_failed_quality" in {p["name"] for p in side["parameters"]}


def test_no_token_is_401_and_audited(service: Service) -> None:
    status, headers, _ = service.get("/v1/datasets")
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Bearer")
    status, _, _ = service.get("/v1/datasets/spindle/versions/1/splits/train", "mxl_bad_token")
    assert status == 401
    outcomes = [r["outcome"] for r in service.audit() if r["principal"] is None]
    assert outcomes.count("unauthenticated") >= 2


def test_a_token_without_a_grant_gets_403_and_an_audit_row(service: Service) -> None:
    token = service.tokens["nogrant"]
    status, _, body = service.get("/v1/datasets/spindle/versions/1/splits/train", token)
    assert status == 403
    assert json.loads(body)["error"]["outcome"] == "denied"
    status, _, body = service.get("/v1/datasets", token)
    assert status == 200
    assert json.loads(body) == {"datasets": []}
    rows = service.audit("nogrant")
    denied = [r for r in rows if r["outcome"] == "denied"]
    assert denied[-1]["dataset"] == "spindle"
    assert denied[-1]["action"] == "download"
    assert denied[-1]["status"] == 403


def test_granted_download_holds_no_raw_identifier(service: Service) -> None:
    token = service.tokens["pm-team"]
    status, _, listing = service.get("/v1/datasets", token)
    assert status == 200
    names = {d["name"] for d in json.loads(listing)["datasets"]}
    assert {"spindle", "other"} <= names
    assert "raw" not in names
    status, _, manifest_bytes = service.get("/v1/datasets/spindle", token)
    manifest = json.loads(manifest_bytes)
    assert manifest["contracts"] == "<redacted>"
    assert b"nw-pm" not in manifest_bytes
    blobs = [manifest_bytes]
    for split, rows in ((s, info["rows"]) for s, info in manifest["splits"].items()):
        status, headers, arrow = service.get(
            f"/v1/datasets/spindle/versions/1/splits/{split}?format=arrow", token
        )
        assert status == 200
        assert headers["Content-Type"] == "application/vnd.apache.arrow.stream"
        assert pa.ipc.open_stream(arrow).read_all().num_rows == rows
        status, _, parquet = service.get(f"/v1/datasets/spindle/versions/v1/splits/{split}", token)
        assert status == 200
        assert pl.read_parquet(io.BytesIO(parquet)).height == rows
        blobs += [arrow, parquet]
    data = b"".join(blobs)
    assert manifest["splits"]["train"]["rows"] > 0
    for raw in RAW_IDS:
        assert raw.encode() not in data, raw
    allowed = [r for r in service.audit("pm-team") if r["action"] == "download"]
    assert allowed
    assert all(r["outcome"] == "allowed" and r["rows"] is not None for r in allowed)


def test_pseudonyms_differ_between_contracts_for_the_same_machine(service: Service) -> None:
    token = service.tokens["pm-team"]
    frames = []
    for name in ("spindle", "other"):
        _, _, arrow = service.get(
            f"/v1/datasets/{name}/versions/latest/splits/train?format=arrow", token
        )
        frames.append(pl.from_arrow(pa.ipc.open_stream(arrow).read_all()))
    a, b = (f.get_column("machine") for f in frames if isinstance(f, pl.DataFrame))
    assert a.len() == b.len() > 0
    assert not set(a) & set(b)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/datasets/..%2F..%2Fetc%2Fpasswd/versions/1/splits/train",
        "/v1/datasets/spindle/versions/1/splits/..%2Fmanifest",
        "/v1/datasets/spindle/versions/1/splits/train%00",
        "/v1/datasets/Spindle/versions/1",
        "/v1/datasets/spindle/versions/0",
        "/v1/datasets/spindle/versions/1..2",
        "/v1/datasets/spin.dle",
        "/v1/datasets/spindle/versions/1/splits/train?format=csv",
        "/v1/datasets/../../../etc/passwd",
    ],
)
def test_malformed_and_traversing_requests_are_rejected(service: Service, path: str) -> None:
    status, _, body = service.get(path, service.tokens["pm-team"])
    assert status in (400, 404)
    assert b"root:" not in body
    assert "error" in json.loads(body)


def test_unknown_version_with_a_grant_is_404(service: Service) -> None:
    status, _, body = service.get("/v1/datasets/spindle/versions/9", service.tokens["pm-team"])
    assert status == 404
    assert json.loads(body)["error"]["outcome"] == "not_found"


def test_a_version_built_without_contracts_is_not_served(service: Service) -> None:
    status, _, body = service.get(
        "/v1/datasets/raw/versions/1/splits/train", service.tokens["pm-team"]
    )
    assert status == 403
    assert "without sharing contracts" in json.loads(body)["error"]["detail"]


def test_a_revoked_version_cannot_be_pulled(
    service: Service, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = service.tokens["pm-team"]
    assert service.get("/v1/datasets/doomed/versions/1/splits/train", token)[0] == 200

    revoke = ("contracts", "revoke", "nw-rev", "--reason", "NDA ended")
    code, out = service.cli(*revoke, "--dry-run", capsys=capsys)
    assert code == 0
    assert "would mark 1 dataset version(s) revoked:\n  doomed@v1\n" in out
    assert "nothing changed" in out
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("sys.stdin.isatty", lambda: True)
        mp.setattr("builtins.input", lambda prompt: "n")
        code, out = service.cli(*revoke, capsys=capsys)
    assert (code, "not revoked" in out) == (1, True)
    assert service.get("/v1/datasets/doomed/versions/1/splits/train", token)[0] == 200

    code, out = service.cli(*revoke, capsys=capsys)
    assert code == 0
    assert "doomed@v1" in out

    status, _, body = service.get("/v1/datasets/doomed/versions/1/splits/train", token)
    assert status == 403
    assert json.loads(body)["error"]["outcome"] == "revoked"
    status, _, body = service.get("/v1/datasets/doomed/versions/1", token)
    assert status == 200
    assert json.loads(body)["status"] == "revoked"
    pull = ["datasets", "pull", "doomed@1", "--out", str(tmp_path), "--token", token]
    assert service.cli(*pull, capsys=capsys)[0] == 1
    assert not list(tmp_path.iterdir())
    assert service.audit("pm-team")[-1]["outcome"] == "revoked"


def test_cli_pull_checks_the_token(
    service: Service, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["datasets", "pull", "spindle@1", "--out", str(tmp_path)]
    assert service.cli(*args, capsys=capsys)[0] == 1
    assert service.cli(*args, "--token", service.tokens["nogrant"], capsys=capsys)[0] == 1
    code, out = service.cli(*args, "--token", service.tokens["pm-team"], capsys=capsys)
    assert code == 0
    assert Path(out.strip()).is_file()
    last = service.audit("pm-team")[-1]
    assert (last["action"], last["outcome"], last["channel"]) == ("pull", "allowed", "cli")
    assert isinstance(last["rows"], int)
    assert last["rows"] > 0

    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("")
    failing = ["datasets", "pull", "spindle@1", "--out", str(not_a_folder)]
    code, _ = service.cli(*failing, "--token", service.tokens["pm-team"], capsys=capsys)
    assert code == 1
    last = service.audit("pm-team")[-1]
    assert (last["action"], last["outcome"], last["status"], last["rows"]) == (
        "pull",
        "invalid",
        409,
        None,
    )
    assert "is a file, not a folder" in str(last["detail"])


def _wrong_secret(token: str) -> str:
    prefix, key_id, _secret = token.split("_", 2)
    return f"{prefix}_{key_id}_{'A' * 43}"


def test_router_refusals_are_audited(service: Service) -> None:
    assert service.get("/v1/nowhere")[0] == 404
    assert service.get("/v1/datasets", method="POST")[0] == 405
    rows = [r for r in service.audit() if r["action"] == "request"]
    assert {(r["status"], r["method"]) for r in rows} >= {(404, "GET"), (405, "POST")}
    assert any("/v1/nowhere" in str(r["detail"]) for r in rows)


def test_a_head_is_recorded_as_head_without_rows(service: Service) -> None:
    token = service.tokens["pm-team"]
    status, headers, body = service.get(
        "/v1/datasets/spindle/versions/1/splits/train", token, method="HEAD"
    )
    assert status == 200
    assert body == b""
    assert int(headers["X-Maxlake-Rows"]) > 0
    heads = [r for r in service.audit("pm-team") if r["method"] == "HEAD"]
    assert heads
    assert heads[-1]["rows"] is None
    assert heads[-1]["action"] == "download"


def test_a_failed_token_records_its_key_id(service: Service) -> None:
    token = service.tokens["pm-team"]
    status, _, _ = service.get("/v1/datasets", _wrong_secret(token), source="127.0.0.4")
    assert status == 401
    key_id = token.split("_")[1]
    refused = [r for r in service.audit() if r["outcome"] == "unauthenticated"]
    assert key_id in [r["key_id"] for r in refused]
    assert all(token.split("_", 2)[2] not in json.dumps(r) for r in refused)


def test_repeated_failures_are_throttled_and_others_are_served(service: Service) -> None:
    bad = _wrong_secret(service.tokens["nogrant"])
    statuses = [service.get("/v1/datasets", bad, source="127.0.0.2")[0] for _ in range(8)]
    assert statuses[0] == 401
    assert statuses[-1] == 429
    assert service.get("/v1/datasets", service.tokens["pm-team"], source="127.0.0.3")[0] == 200
    throttled = [r for r in service.audit() if r["outcome"] == "throttled"]
    assert throttled
    assert throttled[-1]["key_id"] == bad.split("_")[1]
    assert throttled[-1]["client"] == "127.0.0.2"


def test_name_at_version_is_honoured(service: Service) -> None:
    token = service.tokens["pm-team"]
    status, _, body = service.get("/v1/datasets/spindle@1", token)
    assert status == 200
    assert json.loads(body)["version"] == 1
    assert service.get("/v1/datasets/spindle@9", token)[0] == 404
    assert service.get("/v1/datasets/spindle@2/versions/1", token)[0] in (400, 404)


def test_the_audit_trail_refuses_a_delete(service: Service) -> None:
    assert service.get("/v1/datasets", service.tokens["pm-team"])[0] == 200
    table = DeltaTable(str(service.lake / "ops" / "audit"))
    before = table.version()
    with pytest.raises(CommitFailedError, match="append-only"):
        table.delete("principal = 'pm-team'")
    assert DeltaTable(str(service.lake / "ops" / "audit")).version() == before


def test_a_failed_quality_version_is_marked_and_served_only_on_request(
    service: Service, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = service.tokens["pm-team"]
    status, _, body = service.get("/v1/datasets", token)
    listed = {d["name"]: d for d in json.loads(body)["datasets"]}
    assert (listed["flawed"]["quality"], listed["flawed"]["failed_checks"]) == ("failed", ["rows"])
    assert listed["spindle"]["quality"] == "passed"

    status, headers, body = service.get("/v1/datasets/flawed", token)
    assert (status, headers["X-Maxlake-Quality"]) == (200, "failed")
    assert json.loads(body)["quality"]["success"] is False

    split = "/v1/datasets/flawed/versions/1/splits/train"
    status, _, body = service.get(split, token)
    assert status == 403
    assert "failed its output checks (rows)" in json.loads(body)["error"]["detail"]
    status, headers, _ = service.get(split + "?allow_failed_quality=true", token)
    assert (status, headers["X-Maxlake-Quality"]) == (200, "failed")
    assert service.get(split + "?allow_failed_quality=1", token)[0] == 200

    files = "/v1/datasets/flawed/versions/1/files/"
    for name in ("README.md", "manifest.json"):
        status, _, body = service.get(files + name, token)
        assert status == 403, name
        assert "?allow_failed_quality=true" in json.loads(body)["error"]["detail"]
        for opt_in in ("true", "1"):
            status, headers, body = service.get(
                f"{files}{name}?allow_failed_quality={opt_in}", token
            )
            assert (status, headers["X-Maxlake-Quality"]) == (200, "failed"), (name, opt_in)
    card = service.get(files + "README.md?allow_failed_quality=true", token)[2].decode()
    assert "  quality:\n    passed: false" in card
    assert "**Quality: FAILED**" in card

    pull = ["datasets", "pull", "flawed@1", "--out", str(tmp_path), "--token", token]
    assert service.cli(*pull, capsys=capsys)[0] == 1
    assert not list(tmp_path.iterdir())
    assert service.cli(*pull, "--allow-failed-quality", capsys=capsys)[0] == 0
    assert (tmp_path / "flawed-v1-train.parquet").is_file()
    assert "**Quality: FAILED**" in (tmp_path / "README.md").read_text()
