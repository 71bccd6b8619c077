"""Curated sets read through the Delta Sharing protocol with the real `delta-sharing` connector.

A real `maxlake serve` process serves a real lake; profiles are written by `maxlake access
profile`; rows are compared with what `maxlake datasets pull` writes. Requests pass through a
small counting proxy, so the audit's one-row-per-request rule is checked against a count the
server does not make.
"""

from __future__ import annotations

import dataclasses
import http.client
import http.server
import io
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import delta_sharing
import fsspec
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import requests
from delta_sharing.protocol import DeltaSharingProfile, Share, Table
from delta_sharing.rest_client import DataSharingRestClient

from lake.curation import JobInputs, JobOutput, build_dataset
from tests.integration.serve_helpers import (
    Service,
    add_principal,
    cli_run,
    reference_lake,
    running_serve,
)
from tests.unit.lake.curation.test_build_helpers import (
    JOBS,
    readings,
    registry,
    spec,
    write_telemetry,
)

pytestmark = pytest.mark.integration

SHARE = "curated"


class CountingProxy:
    """A loopback HTTP/1.1 proxy to ``port`` that counts the requests it forwards."""

    def __init__(self, port: int) -> None:
        self.count = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                with proxy._lock:
                    proxy.count += 1
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                conn.request(self.command, self.path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                self.send_response_only(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("connection", "transfer-encoding", "content-length"):
                        self.send_header(key, value)
                head = response.getheader("Content-Length") if self.command == "HEAD" else None
                self.send_header("Content-Length", head or str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_POST = do_HEAD = _forward

            def log_message(self, format: str, *args: Any) -> None:
                return

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                return  # a client closing its keep-alive connection is not an error here

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Lake:
    """The running service, its proxy and helpers to write profiles."""

    def __init__(self, svc: Service, proxy: CountingProxy, root: Path) -> None:
        self.svc, self.proxy, self.root = svc, proxy, root

    def profile(self, principal: str, expires: str = "1d", *, replace: bool = False) -> Path:
        path = self.root / f"{principal}-{time.monotonic_ns()}.share"
        endpoint = f"http://127.0.0.1:{self.proxy.port}/delta-sharing"
        args = ["access", "profile", principal, "--expires", expires, "--out", str(path)]
        args += ["--endpoint", endpoint] + (["--replace"] if replace else [])
        cli_run(self.svc.env, *args)
        return path

    def pulled(self, ref: str, split: str, *extra: str, principal: str = "ds-team") -> pa.Table:
        out = self.root / f"pull-{time.monotonic_ns()}"
        token = self.svc.tokens[principal]
        args = ["datasets", "pull", ref, "--split", split, "--out", str(out), "--token", token]
        path = cli_run(self.svc.env, *args, *extra).strip()
        return pq.read_table(path)


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lake]:
    root = tmp_path_factory.mktemp("dsharing")
    store, env, gate = reference_lake(root)
    write_telemetry(store, readings(2, value=35.0), first_offset=2000)
    build_dataset(
        store, spec("spindle", purpose="pm-study"), registry=registry(), jobs=JOBS, sharing=gate
    )
    flawed = spec("flawed", purpose="pm-study")
    build_dataset(
        store,
        flawed,
        registry=registry(),
        jobs={flawed.job: _one_null_label},
        sharing=gate,
        allow_failed_quality=True,
    )
    tokens = {
        "qa-team": add_principal(env, "qa-team", "spindle", "flawed"),
        "ds-team": add_principal(env, "ds-team", "spindle", "doomed"),
        "counted": add_principal(env, "counted", "spindle"),
        "counter": add_principal(env, "counter", "spindle"),
    }
    with running_serve(env, root, tokens, root / "lake") as svc:
        proxy = CountingProxy(svc.port)
        try:
            yield Lake(svc, proxy, root)
        finally:
            proxy.close()


def _one_null_label(inputs: JobInputs) -> JobOutput:
    """The test job's rows with the label of the first train row missing: a set with rows that
    fails a blocking output check (``label_not_null:hot``)."""
    out = JOBS["tag_means"](inputs)
    first = pl.int_range(pl.len()) == 0
    hot = pl.when(first).then(None).otherwise(pl.col("hot")).alias("hot")
    splits = {n: df.with_columns(hot) if n == "train" else df for n, df in out.splits.items()}
    return dataclasses.replace(out, splits=splits)


def _canonical(table: pa.Table) -> bytes:
    """Arrow IPC bytes of ``table`` with its rows sorted by every column."""
    order = pc.sort_indices(table, sort_keys=[(name, "ascending") for name in table.column_names])
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table.take(order).combine_chunks())
    return sink.getvalue()


def _same_rows(frame: pd.DataFrame | pa.Table, pulled: pa.Table) -> bool:
    if isinstance(frame, pd.DataFrame):
        frame = pa.Table.from_pandas(frame, preserve_index=False)
    table = frame
    return _canonical(table.select(pulled.column_names).cast(pulled.schema)) == _canonical(pulled)


def _arrow(profile: Path, table: str, version: int | None = None) -> pa.Table:
    """The table as Arrow: the connector's REST client lists the files, pyarrow reads them."""
    share, schema, name = table.split(".")
    client = DataSharingRestClient(DeltaSharingProfile.read_from_file(str(profile)))
    files = client.list_files_in_table(Table(name, share, schema), version=version).add_files
    http = fsspec.filesystem("http")
    return pa.concat_tables(pq.read_table(f.url, filesystem=http) for f in files)


def test_the_connector_lists_every_table_of_the_share(lake: Lake) -> None:
    client = delta_sharing.SharingClient(str(lake.profile("ds-team")))
    assert [s.name for s in client.list_shares()] == [SHARE]
    tables = {(t.share, t.schema, t.name) for t in client.list_all_tables()}
    assert tables == {(SHARE, d, s) for d in ("doomed", "spindle") for s in ("test", "train")}
    schemas = client.list_schemas(Share(SHARE))
    assert sorted(s.name for s in schemas) == ["doomed", "spindle"]


def test_list_pages_follow_next_page_tokens(lake: Lake) -> None:
    rest = DataSharingRestClient(DeltaSharingProfile.read_from_file(str(lake.profile("ds-team"))))
    seen, token, pages = [], None, 0
    while True:
        page = rest.list_all_tables(Share(SHARE), max_results=1, page_token=token)
        seen += [f"{t.schema}.{t.name}" for t in page.tables]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert seen == ["doomed.test", "doomed.train", "spindle.test", "spindle.train"]
    assert pages >= 4
    empty = rest.list_all_tables(Share(SHARE), max_results=0)
    assert empty.tables == []
    assert empty.next_page_token


def test_each_split_loads_as_pandas_and_arrow_equal_to_datasets_pull(lake: Lake) -> None:
    profile = lake.profile("ds-team")
    for split in ("train", "test"):
        pulled = lake.pulled("spindle", split)
        assert pulled.num_rows > 0
        frame = delta_sharing.load_as_pandas(f"{profile}#{SHARE}.spindle.{split}")
        assert _same_rows(frame, pulled), split
        assert _same_rows(_arrow(profile, f"{SHARE}.spindle.{split}"), pulled), split


def test_a_pinned_older_version_loads_as_it_was(lake: Lake) -> None:
    profile = lake.profile("ds-team")
    url = f"{profile}#{SHARE}.spindle.train"
    assert delta_sharing.get_table_version(url) == 2
    old, new = lake.pulled("spindle@1", "train"), lake.pulled("spindle@2", "train")
    assert _canonical(old) != _canonical(new)
    assert _same_rows(delta_sharing.load_as_pandas(url, version=1), old)
    assert _same_rows(_arrow(profile, f"{SHARE}.spindle.train", version=1), old)
    assert _same_rows(delta_sharing.load_as_pandas(url), new)


def _status_of(call: Any) -> tuple[int, dict[str, Any]]:
    with pytest.raises(requests.HTTPError) as info:
        call()
    response = info.value.response
    assert response is not None
    return response.status_code, response.json()


def test_an_ungranted_set_is_refused(lake: Lake) -> None:
    url = f"{lake.profile('ds-team')}#{SHARE}.other.train"
    status, body = _status_of(lambda: delta_sharing.load_as_pandas(url))
    assert status == 403
    assert body["errorCode"] == "PERMISSION_DENIED"


def test_a_revoked_version_is_refused(lake: Lake) -> None:
    url = f"{lake.profile('ds-team')}#{SHARE}.doomed.train"
    assert len(delta_sharing.load_as_pandas(url)) > 0
    cli_run(lake.svc.env, "contracts", "revoke", "nw-rev", "--reason", "NDA ended")
    pinned = {"version": 1, "use_delta_format": False}
    status, body = _status_of(lambda: delta_sharing.load_as_pandas(url, **pinned))
    assert status == 403
    assert "revoked" in body["message"]
    assert "NDA" not in body["message"]
    status, body = _status_of(lambda: delta_sharing.load_as_pandas(url))
    assert status == 404
    assert body["errorCode"] == "RESOURCE_DOES_NOT_EXIST"
    tables = delta_sharing.SharingClient(str(lake.profile("ds-team"))).list_all_tables()
    assert {t.schema for t in tables} == {"spindle"}


def test_an_expired_profile_is_refused_with_the_protocol_error(lake: Lake) -> None:
    profile = lake.profile("ds-team", "2s")
    expires = json.loads(profile.read_text())["expirationTime"]
    url = f"{profile}#{SHARE}.spindle.train"
    while datetime.now(UTC) <= datetime.fromisoformat(expires.replace("Z", "+00:00")):
        time.sleep(0.2)
    status, body = _status_of(lambda: delta_sharing.load_as_pandas(url))
    assert status == 401
    assert body["errorCode"] == "UNAUTHENTICATED"
    assert "expired" in body["message"]


def test_rotation_ends_the_earlier_profile(lake: Lake) -> None:
    first = lake.profile("ds-team")
    second = lake.profile("ds-team", replace=True)
    assert delta_sharing.get_table_version(f"{second}#{SHARE}.spindle.train") == 2
    old_url = f"{first}#{SHARE}.spindle.train"
    status, _ = _status_of(lambda: delta_sharing.get_table_version(old_url))
    assert status == 401


def test_every_request_leaves_one_audit_row(lake: Lake) -> None:
    profile = lake.profile("counted")
    before_rows = len(lake.svc.audit("counted"))
    before = lake.proxy.count
    client = delta_sharing.SharingClient(str(profile))
    client.list_all_tables()
    frame = delta_sharing.load_as_pandas(f"{profile}#{SHARE}.spindle.test")
    _arrow(profile, f"{SHARE}.spindle.train", version=1)
    requests_made = lake.proxy.count - before
    rows = lake.svc.audit("counted")[before_rows:]
    assert len(frame) > 0
    assert requests_made >= 5
    assert len(rows) == requests_made
    actions = {str(r["action"]) for r in rows}
    assert {"sharing.list_all_tables", "sharing.query", "sharing.file"} <= actions
    query = next(r for r in rows if r["action"] == "sharing.query" and r["version"] == 1)
    assert (query["dataset"], query["split"], query["outcome"]) == ("spindle", "train", "allowed")
    assert "files=1" in str(query["detail"])


def test_file_requests_record_what_they_sent_and_the_query_the_rows(lake: Lake) -> None:
    profile = lake.profile("counter")
    rest = DataSharingRestClient(DeltaSharingProfile.read_from_file(str(profile)))
    (file,) = rest.list_files_in_table(Table("train", SHARE, "spindle")).add_files
    assert requests.head(file.url, timeout=30).status_code == 200
    ranged = requests.get(file.url, headers={"Range": "bytes=0-99"}, timeout=30)
    assert ranged.status_code == 206
    assert len(ranged.content) == 100
    whole = requests.get(file.url, timeout=30)
    assert whole.content[:4] == b"PAR1"
    rows = lake.svc.audit("counter")
    query = next(r for r in rows if r["action"] == "sharing.query")
    split_rows = pq.read_table(io.BytesIO(whole.content)).num_rows
    assert query["rows"] == split_rows > 0
    files = [r for r in rows if str(r["action"]).startswith("sharing.file")]
    assert [(r["action"], r["method"], r["rows"]) for r in files] == [
        ("sharing.file_head", "HEAD", None),
        ("sharing.file", "GET", None),
        ("sharing.file", "GET", None),
    ]
    assert [str(r["detail"]).split(" (")[0] for r in files] == [
        "HEAD: no data sent",
        "range bytes=0-99 of the split's file",
        "whole file",
    ]
    assert sum(int(str(r["rows"] or 0)) for r in rows) == split_rows, "each read counted once"


def test_paths_the_router_refuses_get_protocol_error_bodies(lake: Lake) -> None:
    profile = json.loads(lake.profile("ds-team").read_text())
    auth = {"Authorization": f"Bearer {profile['bearerToken']}"}
    base = f"http://127.0.0.1:{lake.svc.port}/delta-sharing"
    for path, status, code in (
        (f"/shares/{SHARE}/schemas/spindle/tables/train", 404, "RESOURCE_DOES_NOT_EXIST"),
        ("/no-such-route", 404, "RESOURCE_DOES_NOT_EXIST"),
    ):
        answer = requests.get(base + path, headers=auth, timeout=30)
        assert answer.status_code == status, path
        assert answer.json().keys() == {"errorCode", "message"}, answer.text
        assert answer.json()["errorCode"] == code
    wrong = requests.delete(f"{base}/shares", headers=auth, timeout=30)
    assert (wrong.status_code, wrong.json()["errorCode"]) == (405, "METHOD_NOT_ALLOWED")
    page = requests.get(base.replace("/delta-sharing", "/v1/no-such-route"), timeout=30)
    assert page.status_code == 404
    assert "error" in page.json(), "the service's own routes keep their body"


def test_side_files_are_served_to_grantees_only(lake: Lake) -> None:
    token = lake.svc.tokens["ds-team"]
    status, _, body = lake.svc.get("/v1/datasets/spindle/versions/1/files/seen.json", token)
    assert status == 200
    assert body == (lake.svc.lake / "curated" / "spindle" / "v1" / "seen.json").read_bytes()
    status, _, body = lake.svc.get("/v1/datasets/spindle/versions/1/files/manifest.json", token)
    assert status == 200
    assert "redacted" in json.loads(body)["spec"]["filters"]["tenants"]
    status, headers, body = lake.svc.get("/v1/datasets/spindle/versions/1/files/README.md", token)
    assert status == 200
    assert headers["Content-Type"].startswith("text/markdown")
    assert body == (lake.svc.lake / "curated" / "spindle" / "v1" / "README.md").read_bytes()
    assert lake.svc.get("/v1/datasets/spindle/versions/1/files/seen.json")[0] == 401
    other = lake.svc.tokens["counted"]
    assert lake.svc.get("/v1/datasets/doomed/versions/1/files/seen.json", other)[0] == 403
    status, _, body = lake.svc.get("/v1/datasets/spindle/versions/1/files/nope.json", token)
    assert status == 404
    assert "seen.json" in json.loads(body)["error"]["detail"]
    assert "README.md" in json.loads(body)["error"]["detail"]


def test_query_lines_and_signed_short_lived_file_urls(lake: Lake) -> None:
    profile = json.loads(lake.profile("ds-team").read_text())
    response = requests.post(
        f"{profile['endpoint']}/shares/{SHARE}/schemas/spindle/tables/train/query",
        json={"version": 1, "limitHint": 1},
        headers={"Authorization": f"Bearer {profile['bearerToken']}"},
        timeout=30,
    )
    assert response.status_code == 200
    assert response.headers["Delta-Table-Version"] == "1"
    assert response.headers["Content-Type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert [next(iter(line)) for line in lines] == ["protocol", "metaData", "file"]
    assert lines[1]["metaData"]["version"] == 1
    file = lines[2]["file"]
    assert json.loads(file["stats"])["numRecords"] == lake.pulled("spindle@1", "train").num_rows
    assert file["version"] == 1
    assert file["partitionValues"] == {}
    assert 0 < file["expirationTimestamp"] / 1000 - time.time() <= 900
    assert requests.get(file["url"], timeout=30).status_code == 200
    tampered = file["url"].replace("principal=ds-team", "principal=counted")
    assert requests.get(tampered, timeout=30).status_code == 403
    assert requests.get(file["url"].split("?")[0], timeout=30).status_code == 403


def test_a_failed_quality_version_is_read_only_through_the_opt_in_share(lake: Lake) -> None:
    profile = lake.profile("qa-team")
    client = delta_sharing.SharingClient(str(profile))
    assert [s.name for s in client.list_shares()] == [SHARE]  # the twin is asked for by name
    assert {t.schema for t in client.list_all_tables()} == {"spindle"}
    status, body = _status_of(
        lambda: delta_sharing.load_as_pandas(f"{profile}#{SHARE}.flawed.train")
    )
    assert status == 403
    assert "failed its output checks (label_not_null:hot)" in body["message"]
    assert f"{SHARE}-allow-failed-quality" in body["message"]

    opt_in = f"{SHARE}-allow-failed-quality"
    rest = DataSharingRestClient(DeltaSharingProfile.read_from_file(str(profile)))
    tables = {(t.schema, t.name) for t in rest.list_all_tables(Share(opt_in)).tables}
    assert tables == {(d, s) for d in ("flawed", "spindle") for s in ("test", "train")}
    pulled = lake.pulled("flawed", "train", "--allow-failed-quality", principal="qa-team")
    frame = delta_sharing.load_as_pandas(f"{profile}#{opt_in}.flawed.train")
    assert len(frame) == pulled.num_rows > 0
    assert _same_rows(frame, pulled)
    assert _same_rows(_arrow(profile, f"{opt_in}.flawed.train"), pulled)

    token = {"Authorization": f"Bearer {json.loads(profile.read_text())['bearerToken']}"}
    endpoint = json.loads(profile.read_text())["endpoint"]
    response = requests.post(
        f"{endpoint}/shares/{opt_in}/schemas/flawed/tables/train/query",
        json={},
        headers=token,
        timeout=30,
    )
    assert response.headers["X-Maxlake-Quality"] == "failed"
    url = json.loads(response.text.splitlines()[2])["file"]["url"]
    assert "allow_failed_quality=1" in url
    assert requests.get(url, timeout=30).status_code == 200
    stripped = url.replace("&allow_failed_quality=1", "")
    assert requests.get(stripped, timeout=30).status_code == 403  # the opt-in is signed
    plain = requests.post(
        f"{endpoint}/shares/{SHARE}/schemas/spindle/tables/train/query",
        json={},
        headers=token,
        timeout=30,
    )
    assert plain.headers["X-Maxlake-Quality"] == "passed"
    forged = json.loads(plain.text.splitlines()[2])["file"]["url"] + "&allow_failed_quality=1"
    assert requests.get(forged, timeout=30).status_code == 403
