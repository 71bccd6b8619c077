"""The status page as a data engineer sees it: headless Chromium over a real `maxlake serve`.

A real worker drains simulated traffic (with bad input, and one hostile payload) from the session
broker; then `maxlake serve` runs over that lake and Chromium loads ``/status``, runs the page's
script and dumps the rendered DOM. The numbers the page shows (in ``id``/``data-*`` attributes)
must equal what was produced (the simulator's labels) and what the lake holds (read here with
polars/deltalake). Then the test clicks through (DevTools protocol, :mod:`tests.integration.cdp`):
the hostile message's quarantine reason, a dataset, and the Data Docs link. Chromium comes from
Debian's ``chromium`` package (``make browser`` installs it).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from deltalake import DeltaTable
from PIL import Image

from infra.broker import free_port
from lake.curation import build_dataset
from maxlake.processes import stop_process
from streams.simulator import SimEvent
from tests.integration.cdp import HEADLESS_FLAGS, Tab, browser
from tests.integration.ingest_helpers import (
    IngestEnv,
    expected_outcome,
    produce,
    read_table,
    run_cli,
    simulate,
    wait_for_lag_zero,
    workers,
)
from tests.unit.lake.curation.test_build_helpers import JOBS, registry, seeded_lake, spec

pytestmark = pytest.mark.integration

TENANTS = ("ironbridge-steel",)
PWNED = "document.body.dataset.pwned"
HOSTILE = (
    b'[\n"<img src=x onerror=\\"document.body.dataset.pwned=1\\">",\t'
    b'"</td></tr></table><script>document.body.dataset.pwned=2</script>"]'
)
"""A JSON array (quarantined as ``not_an_object``, a reason the simulator never produces) of
markup that sets ``body[data-pwned]`` if the page ever renders it as HTML."""
CHROMIUM_FLAGS = (*HEADLESS_FLAGS, "--virtual-time-budget=10000")
_VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "wbr",
}


@dataclass
class Node:
    """One element of the dumped DOM: its tag, attributes and all the text inside it."""

    tag: str
    attrs: dict[str, str]
    text: str = ""
    children: list[Node] = field(default_factory=list)

    def value(self) -> float:
        """The number in ``data-value``."""
        return float(self.attrs["data-value"])

    def find(self, **attrs: str) -> list[Node]:
        """Descendants with these attributes (``data_kind`` is ``data-kind``; ``tag`` the tag)."""
        tag = attrs.pop("tag", None)
        wanted = {k.replace("_", "-"): v for k, v in attrs.items()}
        found = []
        for child in self.children:
            if child.tag == (tag or child.tag) and all(
                child.attrs.get(k) == v for k, v in wanted.items()
            ):
                found.append(child)
            found += child.find(**attrs, **({"tag": tag} if tag else {}))
        return found

    def one(self, **attrs: str) -> Node:
        """The only descendant matching ``attrs``."""
        found = self.find(**attrs)
        assert len(found) == 1, f"{attrs}: {len(found)} matches"
        return found[0]


class _DomParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in _VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        if self.stack[-1].tag in ("script", "style"):
            return
        for node in self.stack:
            node.text += data


def pixels_of(image: Image.Image, color: str) -> int:
    """How many pixels of ``image`` have exactly the colour ``#rrggbb``."""
    rgb = tuple(int(color[i : i + 2], 16) for i in (1, 3, 5))
    return sum(count for count, value in image.getcolors(maxcolors=1 << 24) or [] if value == rgb)


def rendered_dom(url: str) -> Node:
    """``url`` as Chromium renders it after its scripts ran (``--dump-dom``)."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium is not installed: run `make browser` (apt-get install chromium)")
    with tempfile.TemporaryDirectory(
        prefix="maxlake-chromium-", ignore_cleanup_errors=True
    ) as profile:
        result = subprocess.run(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
    assert result.returncode == 0, result.stderr[-3000:]
    return _parse(result.stdout)


@contextlib.contextmanager
def serving(
    env: IngestEnv, port: int, extra: Mapping[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """`maxlake serve` over the test's lake (and the ``extra`` environment variables), answering
    on ``port``; killed however the test ends."""
    log = (env.work / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "maxlake.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env={**env.environ("serve"), **(extra or {})},
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while _get(port, "/openapi.json")[0] != 200:
            assert proc.poll() is None, (env.work / "serve.log").read_text()
            assert time.monotonic() < deadline, "maxlake serve did not answer within 60 s"
            time.sleep(0.2)
        yield proc
    finally:
        stop_process(proc, timeout_s=15, group=True)
        log.close()


def _get(port: int, path: str, token: str | None = None) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()
    except OSError:
        return 0, b""


def _token(env: IngestEnv, name: str, kind: str) -> str:
    added = run_cli(env, "access", "principal", "add", name, "--kind", kind)
    assert added.returncode == 0, added.stderr
    return added.stdout.strip().splitlines()[-1]


def _data_docs_site(root: Path) -> Path:
    """A Data Docs site shaped like GX's whose validation page carries hostile sample values."""
    page = root / "validations/maxlake/telemetry/__none__/20261201T055256.192062Z/recent.html"
    page.parent.mkdir(parents=True)
    page.write_text(
        "<html><body><h1>Expectation Validation Result</h1>"
        f"<p>sample values: {HOSTILE.decode()}</p>"
        "<script>document.title = 'pwned'</script></body></html>"
    )
    (root / "index.html").write_text("<html><body><h1>Data Docs</h1></body></html>")
    return root


def _publish_two_versions(curated: Path) -> threading.Thread:
    """Build two versions of a small dataset into ``curated`` in a thread (overlapping the
    worker's drain); join it before the page needs them."""

    def build() -> None:
        store = seeded_lake(curated.parent / "curated-source")
        for _ in range(2):
            build_dataset(store, spec("spindle"), registry=registry(), jobs=JOBS, out_root=curated)

    thread = threading.Thread(target=build, name="publish-datasets")
    thread.start()
    return thread


@dataclass
class Clicks:
    """What the click-through saw."""

    loaded: Node
    """The page as loaded."""
    older: Node
    """After "older": the second page of quarantined messages."""
    clicked: Node
    """After clicking the hostile message's reason and the first dataset."""
    empty_rate_ticks: list[float]
    """The quarantine chart's rate ticks when drawn over one empty bucket."""
    docs_script_ran: bool
    """Whether a script ran in the Data Docs page."""
    docs_origin: str
    """The Data Docs page's origin as its script context sees it."""


async def _click_through(url: str, shot: Path) -> Clicks:
    """Load the page, screenshot it, page to older quarantined messages, click the hostile
    message's reason and the first dataset, then open the Data Docs' validation page."""
    async with browser() as tab:
        await tab.goto(url)
        await tab.wait_for("document.body.dataset.state === 'ready'")
        loaded = _parse(await tab.html())
        await _screenshot(tab, shot)
        await tab.evaluate("document.getElementById('samples-older').click()")
        await tab.wait_for("document.getElementById('samples-range').dataset.offset === '20'")
        older = _parse(await tab.html())
        await tab.evaluate(
            "document.querySelector('#quarantine-reasons button"
            '[data-filter-reason="not_an_object"]\').click()'
        )
        await tab.wait_for(
            "document.querySelectorAll('#samples tbody tr').length === 1 &&"
            " document.querySelector('#samples tr[data-reasons~=\"not_an_object\"]')"
        )
        await tab.evaluate("document.querySelector('#datasets button').click()")
        await tab.wait_for("!document.getElementById('dataset-detail').hidden")
        clicked = _parse(await tab.html())
        ticks = await tab.evaluate(
            "[...quarantineChart({bucket_s: 60, buckets: [{start: new Date().toISOString(),"
            " consumed: 0, quarantined: 0, quarantine_rate: 0}]})"
            ".querySelectorAll('text[data-axis=\"y-l\"]')].map((t) => Number(t.dataset.value))"
        )
        page = await tab.evaluate("document.querySelector('#data-docs-pages a').href")
        await tab.goto(page)
        await tab.wait_for("document.readyState === 'complete' && document.querySelector('h1')")
        ran = await tab.evaluate(f"document.title === 'pwned' || Boolean({PWNED})")
        origin = await tab.evaluate("self.origin")
    return Clicks(loaded, older, clicked, list(ticks), bool(ran), str(origin))


async def _screenshot(tab: Tab, path: Path) -> None:
    await tab.call(
        "Emulation.setDeviceMetricsOverride",
        width=1280,
        height=4000,
        deviceScaleFactor=1,
        mobile=False,
    )
    shot = await tab.call("Page.captureScreenshot", format="png")
    await asyncio.to_thread(path.write_bytes, base64.b64decode(shot["data"]))


def _parse(html: str) -> Node:
    parser = _DomParser()
    parser.feed(html)
    parser.close()
    return parser.root


def _sample_coordinates(dom: Node) -> list[str]:
    """``topic[partition]@offset`` of each quarantined message listed on the page."""
    rows = dom.one(id="samples").find(tag="tr")
    return [r.one(data_field="coordinates").text for r in rows if "data-offset" in r.attrs]


def _lake_tables(lake: Path) -> dict[str, int]:
    """Every Delta table under the lake root and its current version, read with deltalake."""
    return {
        log.parent.relative_to(lake).as_posix(): DeltaTable(str(log.parent)).version()
        for log in lake.glob("**/_delta_log")
    }


def test_status_page_renders_the_lake_in_a_browser(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    began = datetime.now(UTC)
    env = IngestEnv(kafka_bootstrap, unique_name, tmp_path, TENANTS, partitions=2)
    env.create_topics()
    events = simulate(TENANTS, seed=42, duration_s=300, bad_rate=0.1)
    events.append(SimEvent(TENANTS[0], "telemetry", b"cnc-x", HOSTILE, "not_an_object"))
    produced = produce(env, events)
    expected = expected_outcome(events)
    quarantined = sum(e.quarantined.total() for e in expected.values())
    engineer = _token(env, "ops-eng", "data_engineer")
    model_team = _token(env, "pm-team", "model_team")
    port = free_port()
    publishing = _publish_two_versions(tmp_path / "curated")
    extra = {
        "MAXLAKE_DATA_DOCS_DIR": str(_data_docs_site(tmp_path / "docs")),
        "MAXLAKE_CURATED_DIR": str(tmp_path / "curated"),
    }

    with workers(env, "status") as (worker,), serving(env, port, extra):
        wait_for_lag_zero(env, [worker], produced=produced, timeout_s=300)
        publishing.join(timeout=300)
        assert not publishing.is_alive()

        code, index = _get(port, "/")
        assert code == 200
        assert b'href="/status"' in index

        # The data is behind a data engineer's token; the page itself holds none.
        assert _get(port, "/api/status")[0] == 401
        assert _get(port, "/api/status", model_team)[0] == 403
        assert _get(port, "/api/status/history", model_team)[0] == 403
        for path in ("/api/quarantine", "/api/datasets", "/api/datasets/spindle", "/api/data-docs"):
            assert _get(port, path, model_team)[0] == 403, path
            assert _get(port, path)[0] == 401, path
        first = json.loads(_get(port, "/api/quarantine?limit=5", engineer)[1])
        second = json.loads(_get(port, "/api/quarantine?limit=5&offset=5", engineer)[1])
        assert first["total"] == second["total"] == quarantined
        coordinates = [
            {(m["kafka_topic"], m["kafka_partition"], m["kafka_offset"]) for m in page["messages"]}
            for page in (first, second)
        ]
        assert len(coordinates[0]) == len(coordinates[1]) == 5
        assert not coordinates[0] & coordinates[1]
        locked = rendered_dom(f"http://127.0.0.1:{port}/status")
        assert locked.one(tag="body").attrs["data-state"] == "needs-token"
        assert TENANTS[0] not in locked.text

        clicks = asyncio.run(
            _click_through(f"http://127.0.0.1:{port}/status#token={engineer}", tmp_path / "s.png")
        )
        dom, clicked = clicks.loaded, clicks.clicked
        elapsed_s = (datetime.now(UTC) - began).total_seconds()
        docs_link = clicked.one(id="data-docs-index").attrs["href"]
        code, docs_index = _get(port, docs_link)
        assert code == 200
        assert b"Data Docs" in docs_index
        assert _get(port, docs_link.replace("/index.html", "/../serve.log"))[0] == 404
    shot = Image.open(tmp_path / "s.png").convert("RGB")

    # The charts are drawn: the telemetry line and the quarantine-rate line are visible pixels.
    assert pixels_of(shot, "#1f77b4") >= 300
    assert pixels_of(shot, "#d62728") >= 300

    page = dom.one(tag="body")
    assert page.attrs["data-state"] == "ready", page.one(id="state-text").text
    runs = read_table(env, "ops/validation_runs", ["kind", "consumed", "failed_expectations"])

    assert page.one(id="consumed-total").value() == produced == runs["consumed"].sum()
    assert page.one(id="consumed-total").text.strip() == f"{produced:,}"
    assert page.one(id="quarantined-total").value() == quarantined > 0
    assert page.one(id="quarantine-rate").value() == quarantined / produced
    assert (
        page.one(id="quarantine-rate").text.strip() == f"{quarantined / produced:.2%}"[:-1] + " %"
    )
    for kind, exp in expected.items():
        row = page.one(tag="tr", data_kind=kind)
        assert row.one(data_field="consumed").value() == exp.consumed, kind
        assert row.one(data_field="quarantined").value() == exp.quarantined.total(), kind
        rate = exp.quarantined.total() / exp.consumed if exp.consumed else 0.0
        assert row.one(data_field="quarantine_rate").value() == rate, kind

    assert page.one(id="kafka-state").attrs["data-reachable"] == "true"
    assert page.one(id="lag-total").value() == 0
    partitions = page.find(tag="tr", data_partition="0") + page.find(tag="tr", data_partition="1")
    assert len(partitions) == 3 * 2
    for row in partitions:
        assert row.one(data_field="lag").value() == 0
        end = row.one(data_field="end").value()
        committed = row.one(data_field="committed").attrs["data-value"]
        assert float(committed) == end if committed else end == 0
    lag_chart = page.one(id="chart-lag")
    assert lag_chart.attrs["data-bars"] == "6"
    bars = [rect for rect in lag_chart.find(tag="rect") if "data-partition" in rect.attrs]
    assert [bar.value() for bar in bars] == [0.0] * 6
    # Message counts get whole-number ticks, even on an empty (all caught-up) chart.
    ticks = [t.value() for t in lag_chart.find(tag="text", data_axis="y-l")]
    assert ticks == [0, 1, 2, 3, 4]

    assert page.one(id="worker-count").value() == 1
    (member,) = page.one(id="workers").find(tag="li")
    assert member.value() == 6

    failing = {
        (kind, name)
        for kind, names in runs.select("kind", "failed_expectations").iter_rows()
        for name in names or []
    }
    shown = {
        (li.attrs["data-kind"], li.attrs["data-expectation"])
        for li in page.one(id="failing-expectations").find(tag="li")
        if "data-expectation" in li.attrs
    }
    assert failing, "the bad input failed no expectation"
    assert shown == failing

    tables = _lake_tables(env.lake_root)
    shown_tables = {
        row.attrs["data-table"]: row for row in page.find(tag="tr") if "data-table" in row.attrs
    }
    assert set(shown_tables) == set(tables)
    for name, row in shown_tables.items():
        if name == "ops/audit":  # the page's own requests are audited after it was rendered
            assert row.one(data_field="version").value() <= tables[name], name
        else:
            assert row.one(data_field="version").value() == tables[name], name
        assert 0 <= row.one(data_field="last_commit_age_s").value() <= elapsed_s, name
        committed_at = datetime.fromisoformat(
            row.one(data_field="last_commit_age_s").attrs["data-last-commit"]
        )
        assert began.replace(microsecond=0) <= committed_at, name

    throughput = page.one(id="chart-throughput")
    assert int(throughput.attrs["data-consumed"]) == produced
    total = throughput.find(tag="circle", data_series="total")
    assert int(throughput.attrs["data-points"]) == len(total) >= 60
    assert sum(c.value() for c in total) * 60 == pytest.approx(produced)
    for kind, exp in expected.items():
        points = throughput.find(tag="circle", data_series=kind)
        assert sum(c.value() for c in points) * 60 == pytest.approx(exp.consumed), kind
    legend = {g.attrs["data-legend"] for g in throughput.find(tag="g") if "data-legend" in g.attrs}
    assert legend == {"total", *(k for k, e in expected.items() if e.consumed)}
    assert len(throughput.find(tag="text", data_axis="y-l")) == 5
    assert throughput.one(tag="text", data_axis="unit-l").text == "events/s"
    assert len(throughput.find(tag="text", data_axis="x")) >= 4

    quarantine = page.one(id="chart-quarantine")
    assert int(quarantine.attrs["data-quarantined"]) == quarantined
    volume = quarantine.find(tag="rect", data_series="consumed")
    assert sum(bar.value() for bar in volume) == produced
    assert quarantine.one(tag="text", data_axis="unit-r").text == "messages consumed per bucket"

    stored = read_table(env, "quarantine/telemetry", ["kafka_offset"])
    samples = page.one(id="samples").find(tag="tr", data_sample_kind="telemetry")
    assert samples
    assert {int(r.attrs["data-offset"]) for r in samples} <= set(stored["kafka_offset"])
    assert all(r.one(data_field="reasons").text for r in samples)
    assert all(r.attrs["data-replay"] == "none" for r in samples)
    assert all(r.one(data_field="replay").text == "not replayed" for r in samples)
    reasons = [
        li for li in page.one(id="quarantine-reasons").find(tag="li") if "data-reason" in li.attrs
    ]
    assert reasons
    for li in reasons:
        n = int(li.value())
        assert li.text.strip().endswith(f"{n:,} message" + ("" if n == 1 else "s")), li.text
    listed = page.one(id="datasets").one(tag="tr", data_dataset="spindle")
    assert listed.one(data_field="versions").value() == 2
    assert listed.one(data_field="latest").value() == 2

    # Clicked through: the hostile message alone, its markup shown as text, never run; the
    # dataset's versions newest first with where model teams read them; the Data Docs link.
    assert "data-pwned" not in clicked.one(tag="body").attrs
    (hostile,) = clicked.one(id="samples").find(tag="tr", data_reasons="not_an_object")
    payload = hostile.one(data_field="payload")
    assert '<img src=x onerror=\\"document.body.dataset.pwned=1\\">' in payload.text
    assert "</td></tr></table><script>document.body.dataset.pwned=2</script>" in payload.text
    assert "\\n" in payload.text  # control bytes escaped
    assert "\\t" in payload.text
    assert not payload.children, "the payload became markup"
    assert not clicked.one(id="samples").find(tag="img")
    assert hostile.one(data_field="reasons").text.startswith("not_an_object: ")
    assert clicked.one(id="samples-range").attrs["data-total"] == "1"
    detail = clicked.one(id="dataset-detail")
    assert detail.attrs["data-dataset"] == "spindle"
    versions = [
        int(r.attrs["data-version"]) for r in detail.find(tag="tr") if "data-version" in r.attrs
    ]
    assert versions == [2, 1]
    api = detail.one(tag="tr", data_version="2").one(data_field="api").text
    assert api == "GET /v1/datasets/spindle/versions/2"
    assert clicked.one(id="dataset-summary").text.startswith("spindle@v2  active")
    assert [li.attrs["data-page"] for li in clicked.one(id="data-docs-pages").find(tag="li")] == [
        "validation"
    ]
    assert not clicks.docs_script_ran, "a script ran in the Data Docs page"
    assert clicks.docs_origin == "null", "the Data Docs page is not sandboxed"

    # "older" shows the next 20, none of the first page; an empty chart gets whole-percent ticks.
    newest, older = _sample_coordinates(page), _sample_coordinates(clicks.older)
    assert len(newest) == 20
    assert len(set(older)) == len(older) == min(20, quarantined - 20)
    assert not set(older) & set(newest)
    assert clicks.older.one(id="samples-range").text.startswith("21–")
    assert clicks.empty_rate_ticks == pytest.approx([0, 0.01, 0.02, 0.03, 0.04])

    alerts = [
        li.attrs["data-alert"]
        for li in page.one(id="alerts").find(tag="li")
        if "data-alert" in li.attrs
    ]
    assert page.one(id="alert-count").value() == len(alerts)
    assert not set(alerts) & {"lag_high", "no_workers", "kafka_unreachable", "stale_table"}
    high = [
        k for k, e in expected.items() if e.consumed and e.quarantined.total() > 0.05 * e.consumed
    ]
    assert alerts.count("quarantine_rate_high") == len(high)
