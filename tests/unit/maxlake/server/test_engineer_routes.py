"""Who may read quarantine samples, the dataset overview and the Data Docs, and what a Data Docs
link can reach: the real app in-process (aiohttp's test server) over a lake under ``tmp_path``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from lake.access import AccessStore, access_dir
from maxlake.server.app import build_app, started_line
from maxlake.server.context import CONTEXT
from maxlake.server.data_docs import SCOPE, list_pages, resolve_file
from maxlake.settings import Settings

Client = TestClient[web.Request, web.Application]
Check = Callable[[Client, web.Application, dict[str, str]], Awaitable[None]]
HOSTILE = '<img src=x onerror="alert(1)"><script>alert(2)</script>'


def _site(root: Path) -> Path:
    """A small Data Docs site shaped like the one GX writes, plus a secret next to it."""
    site = root / "docs"
    page = site / "validations/maxlake/telemetry/__none__/20261201T055256.192062Z/recent.html"
    page.parent.mkdir(parents=True)
    page.write_text(f"<html><body>failed: {HOSTILE}</body></html>")
    (site / "expectations/maxlake").mkdir(parents=True)
    (site / "expectations/maxlake/telemetry.html").write_text("<html>suite</html>")
    (site / "expectations/maxlake/with space.html").write_text("<html>not served</html>")
    (site / "static/styles").mkdir(parents=True)
    (site / "static/styles/x.css").write_text("body {}")
    (site / "index.html").write_text('<html><a href="validations/">runs</a></html>')
    (site / ".hidden.html").write_text("hidden")
    (site / "notes.json").write_text("{}")
    (root / "secret.html").write_text("outside the site")
    (site / "escape.html").symlink_to(root / "secret.html")
    return site


def _run(tmp_path: Path, check: Check) -> dict[str, str]:
    """Run ``check`` against the app over a fresh lake; the tokens it used, by principal."""
    site = _site(tmp_path)
    settings = Settings(lake_root=str(tmp_path / "lake"), data_docs_dir=site)
    access = AccessStore(access_dir(settings))
    tokens = {
        name: access.add(name, kind)[1]
        for name, kind in (("eng", "data_engineer"), ("pm", "model_team"), ("plant1", "plant"))
    }

    async def main() -> None:
        app = build_app(settings)
        async with TestClient(TestServer(app)) as client:
            await check(client, app, tokens)

    asyncio.run(main())
    return tokens


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_only_data_engineers_read_quarantine_datasets_and_data_docs(tmp_path: Path) -> None:
    async def check(client: Client, app: web.Application, tokens: dict[str, str]) -> None:
        for path in ("/api/quarantine", "/api/datasets", "/api/datasets/spindle", "/api/data-docs"):
            anonymous = await client.get(path)
            assert anonymous.status == 401, path
            assert "--kind data_engineer" in (await anonymous.json())["error"]["detail"]
            for other in ("pm", "plant1"):
                response = await client.get(path, headers=_auth(tokens[other]))
                assert response.status == 403, (path, other)
                assert "not a data_engineer" in (await response.json())["error"]["detail"]
        docs = await client.get("/api/data-docs", headers=_auth(tokens["eng"]))
        assert docs.status == 200
        body = await docs.json()
        assert body["available"] is True
        assert body["prefix"].startswith(f"{SCOPE}eng/")
        assert [p["type"] for p in body["pages"]] == ["validation", "expectations"]
        assert body["pages"][0]["suite"] == "maxlake.telemetry"
        assert body["pages"][0]["run_time"] == "2026-12-01T05:52:56+00:00"
        # A model team cannot get a link, nor use one signed for it: the principal's kind is
        # checked on every file.
        ctx = app[CONTEXT]
        pm = ctx.access.get("pm")
        grant, _ = ctx.signer.scope_grant(f"{SCOPE}{pm.key_id}/", "pm")
        forged = await client.get(f"{SCOPE}{grant}index.html")
        assert forged.status == 403
        assert (await client.get(body["index"])).status == 200
        empty = await client.get("/api/datasets", headers=_auth(tokens["eng"]))
        assert (await empty.json()) == {"datasets": []}
        missing = await client.get("/api/datasets/spindle", headers=_auth(tokens["eng"]))
        assert missing.status == 404
        bad = await client.get("/api/datasets/..%2Fetc", headers=_auth(tokens["eng"]))
        assert bad.status in (400, 404)

    _run(tmp_path, check)


def test_a_data_docs_link_serves_the_site_only_sandboxed_and_only_while_valid(
    tmp_path: Path,
) -> None:
    async def check(client: Client, app: web.Application, tokens: dict[str, str]) -> None:
        body = await (await client.get("/api/data-docs", headers=_auth(tokens["eng"]))).json()
        prefix = body["prefix"]
        page = await client.get(prefix + body["pages"][0]["path"])
        assert page.status == 200
        assert page.content_type == "text/html"
        policy = page.headers["Content-Security-Policy"]
        assert policy.startswith("sandbox;")
        assert "script-src" not in policy
        assert "default-src 'none'" in policy
        assert HOSTILE in await page.text()  # served as written, but no script may run
        assert (await client.get(prefix + "static/styles/x.css")).content_type == "text/css"
        assert (await client.get(prefix)).status == 200  # the index

        for path in (
            "../secret.html",
            "%2e%2e/secret.html",
            "..%2Fsecret.html",
            "static/../../secret.html",
            "escape.html",
            ".hidden.html",
            "notes.json",
            "static",
            "nothing.html",
            "static//styles/x.css",
            "static\\styles\\x.css",
        ):
            response = await client.get(URL(prefix + path, encoded=True))
            assert response.status == 404, path
            assert b"outside the site" not in await response.read(), path

        name, expires, signature = prefix.removeprefix(SCOPE).strip("/").split("/")
        tampered = f"{SCOPE}{name}/{int(expires) + 1000}/{signature}/index.html"
        assert (await client.get(tampered)).status == 403
        assert (await client.get(f"{SCOPE}pm/{expires}/{signature}/index.html")).status == 403
        ctx = app[CONTEXT]
        eng = ctx.access.get("eng")
        old, _ = ctx.signer.scope_grant(
            f"{SCOPE}{eng.key_id}/", "eng", now=time.time() - 2 * ctx.signer.ttl_s
        )
        assert (await client.get(f"{SCOPE}{old}index.html")).status == 403
        ctx.access.remove("eng")
        assert (await client.get(prefix + "index.html")).status == 403

    _run(tmp_path, check)


def test_no_site_yet_says_how_to_build_one(tmp_path: Path) -> None:
    async def check(client: Client, app: web.Application, tokens: dict[str, str]) -> None:
        (tmp_path / "docs" / "index.html").unlink()
        response = await client.get("/api/data-docs", headers=_auth(tokens["eng"]))
        body = await response.json()
        assert body["available"] is False
        assert "maxlake quality docs" in body["detail"]

    _run(tmp_path, check)


def test_pages_and_files_of_a_site(tmp_path: Path) -> None:
    site = _site(tmp_path)
    assert resolve_file(site, "index.html") == (site / "index.html").resolve()
    assert resolve_file(site, "escape.html") is None
    assert resolve_file(site, "") is None
    assert [p["path"] for p in list_pages(site)] == [
        "validations/maxlake/telemetry/__none__/20261201T055256.192062Z/recent.html",
        "expectations/maxlake/telemetry.html",
    ]


def test_odd_numbers_and_paths_are_refused_not_failed(tmp_path: Path) -> None:
    """``str.isdigit`` takes ``²`` (``int`` does not) and ``int`` refuses over 4,300 digits; a
    path too long for the OS fails ``stat``: each was a 500 with a traceback and no audit row,
    the first two without any token (a principal's name was enough)."""
    many = "9" * 5000

    async def check(client: Client, app: web.Application, tokens: dict[str, str]) -> None:
        for expires in ("%C2%B2", many):
            docs = await client.get(URL(f"{SCOPE}eng/{expires}/ab/index.html", encoded=True))
            assert docs.status == 403, expires
            query = f"principal=eng&expires={expires}&signature=ab"
            shared = await client.get(
                URL(f"/delta-sharing/files/x/v1/train.parquet?{query}", encoded=True)
            )
            assert shared.status == 403, expires
        for query in ("limit=%C2%B2", "offset=%C2%B2", f"limit={many}", f"offset={many}"):
            response = await client.get(
                URL(f"/api/quarantine?{query}", encoded=True), headers=_auth(tokens["eng"])
            )
            assert response.status == 400, query
            assert "whole number" in (await response.json())["error"]["detail"]
        prefix = (await (await client.get("/api/data-docs", headers=_auth(tokens["eng"]))).json())[
            "prefix"
        ]
        deep = await client.get(prefix + "a/" * 3000 + "index.html")
        assert deep.status == 404

    _run(tmp_path, check)


def test_a_failing_route_answers_json_and_is_audited(tmp_path: Path) -> None:
    settings = Settings(lake_root=str(tmp_path / "lake"), data_docs_dir=tmp_path / "docs")

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("a bug")

    async def main() -> None:
        app = build_app(settings)
        app.router.add_get("/boom", boom)
        async with TestClient(TestServer(app)) as client:
            response = await client.get("/boom")
            assert response.status == 500
            assert (await response.json())["error"]["outcome"] == "error"
        rows = app[CONTEXT].audit_log.read()
        assert rows.filter(rows["status"] == 500)["outcome"].to_list() == ["error"]

    asyncio.run(main())


def test_serve_says_where_the_status_page_is() -> None:
    line = started_line("127.0.0.1", 8470)
    assert "http://127.0.0.1:8470/status#token=" in line
    assert "/openapi.json" in line


def test_a_token_put_in_a_url_never_reaches_the_audit(tmp_path: Path) -> None:
    """``/status?token=`` served the page and stored the token in clear in ``ops/audit``."""
    secret = "S3cret" + "x" * 37
    token = f"mxl_0123456789abcdef_{secret}"

    async def check(client: Client, app: web.Application, tokens: dict[str, str]) -> None:
        page = await client.get(f"/status?token={token}")
        assert page.status == 400
        assert "/status#token=" in (await page.json())["error"]["detail"]
        assert (await client.get(f"/api/datasets/{token}")).status == 401
        assert (await client.get(f"/nowhere/{token}?signature=zzq&token={token}")).status == 404
        assert (await client.get("/status")).status == 200
        details = app[CONTEXT].audit_log.read()["detail"].to_list()
        assert len(details) == 4
        assert not [d for d in details if secret in d or "zzq" in d]
        assert any("mxl_0123456789abcdef_<redacted>" in d for d in details)
        assert any("signature=<redacted>" in d for d in details)

    _run(tmp_path, check)
