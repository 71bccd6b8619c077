"""``maxlake demo``'s run: the main job end to end on the embedded default.

Starts the local broker (unless one answers already), creates the topics, starts one ingest
worker as a child process, streams about a minute of simulated plants with 1% bad input, waits
until the worker has caught up (lag 0), stops it with SIGTERM, checks the accounting invariant
and prints a report from the lake. Then it builds the three reference datasets
(predictive maintenance, part quality, anomaly windows) from the demo specs and prints one line
per set: rows per split and what a row is.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pyarrow.compute as pc

from infra.broker import LocalBroker, fetch_jars
from lake import RUNS, DeltaStore, silver_table
from lake.accounting import check_accounting
from lake.curation.build import progress_detail
from maxlake import native_parser
from maxlake.cli.broker_cmd import local_broker
from maxlake.cli.demo_counts import counts as count_frames
from maxlake.cli.demo_counts import kind_counts, lake_frames, quarantine_reasons
from maxlake.cli.ticker import Ticker, ticking
from maxlake.errors import MaxlakeError
from maxlake.processes import stop_process
from maxlake.settings import Settings
from schemas import EventKind, load_registry
from streams.offsets import group_offsets
from streams.simulator import SimStats, run_simulation
from streams.topics import ensure_topics


def _say(text: str) -> None:
    print(f"==> {text}", flush=True)


DEMO_QUIET_LOGGERS = ("infra.broker", "streams.broker_wait", "streams.topics", "streams.producer")
"""Loggers whose INFO lines repeat what the demo's ``==>`` lines say; WARNING up only (not -v)."""


def _spooling_as_progress(record: logging.LogRecord) -> bool:
    """The producer's ``broker unavailable ...; spooling events`` WARNING as one of the demo's
    progress lines, saying what happens next (the events are resent; nothing is lost)."""
    message = record.getMessage()
    if record.name != "streams.producer" or not message.startswith("broker unavailable"):
        return True
    reason = message.removeprefix("broker unavailable (").split("); ", 1)[0]
    print(
        f"    the broker is slow to answer ({reason}): events wait in the producer's spool on "
        "disk and are resent in order once it acknowledges; nothing is lost",
        flush=True,
    )
    return False


@contextlib.contextmanager
def quiet_demo_loggers(verbose: bool) -> Iterator[None]:
    """Set :data:`DEMO_QUIET_LOGGERS` to WARNING while the demo runs, and show the producer's
    spooling WARNING as a progress line (unchanged if ``verbose``)."""
    loggers = [] if verbose else [logging.getLogger(name) for name in DEMO_QUIET_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
        lg.addFilter(_spooling_as_progress)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
            lg.removeFilter(_spooling_as_progress)


def run(args: argparse.Namespace) -> int:
    """Run ``maxlake demo`` with the parsed ``args``; returns the exit code (0 ok, 1 failure)."""
    with quiet_demo_loggers(getattr(args, "verbose", False)):
        return _run_demo(args)


def _run_demo(args: argparse.Namespace) -> int:
    settings = Settings()
    registry = load_registry()
    broker = local_broker(settings)
    started_broker = False
    if broker.status().answering:
        _say(f"using the broker already running on {broker.bootstrap}")
    else:
        _say(f"starting the local Kafka broker on {broker.bootstrap} (first start formats storage)")
        _start_broker(broker, settings.broker_start_timeout_s)
        started_broker = True
    tenants = [t.id for t in registry.tenants]
    created = ensure_topics(settings, tenants)
    if created:
        time.sleep(2.0)
    _say(f"topics: {len(created)} created, {len(tenants) * len(EventKind) - len(created)} existed")
    store = DeltaStore.from_settings(settings)
    with ticking("reading what the lake holds already (the report counts this run only)"):
        before = {kind: kind_counts(store, kind) for kind in EventKind}
    since = {(p.topic, p.partition): p.end for p in group_offsets(settings, _topics(settings))}
    started = datetime.now(UTC)
    worker = _start_worker(settings)
    try:
        stats = _stream(args, settings, earliest_event_time(store))
        _say("waiting for the worker to catch up (lag 0)")
        lag = _wait_for_lag_zero(settings, worker, timeout_s=300)
    finally:
        _stop_worker(worker)
    ok = _report(settings, stats, lag, before, since, started)
    ok = _build_datasets(settings) and ok
    stopped = started_broker and not args.keep_broker
    if stopped:
        _say("stopping the broker (use --keep-broker to leave it running)")
        broker.stop()
    print()
    for line in look_around(_cli(), settings, broker_stopped=stopped):
        print(line)
    return 0 if ok else 1


def look_around(cli: str, settings: Settings, *, broker_stopped: bool) -> list[str]:
    """What to run next over the demo's lake, as shell lines for the user's ``cli`` (the text
    after ``#`` says what each shows, so a line can be pasted whole)."""
    lake_only = "?kafka=0" if broker_stopped else ""
    url = (
        f"http://{settings.server_host}:{settings.server_port}/status{lake_only}#token=<its token>"
    )
    stopped = " (the broker is stopped)" if broker_stopped else ""
    return [
        "look around:",
        f"  {cli} status{' --no-kafka' if broker_stopped else ''}"
        f"  # tables, quality and quarantine of the last hour{stopped}",
        f"  {cli} quarantine show --limit 5  # the rejected messages themselves",
        f"  {cli} datasets list  # the curated sets and their versions",
        f"  {cli} access principal add me --kind data_engineer  # a token for the status page",
        f"  {cli} serve  # then open {url}"
        + ("  (lake only: the broker is stopped; keep it with --keep-broker)" if stopped else ""),
        *_own_group(settings),
    ]


def _own_group(settings: Settings) -> list[str]:
    """The note on the consumer group the demo's worker used, when it is the default one
    (``maxlake status`` then raises ``shared_consumer_group`` while the broker runs)."""
    if settings.group_id != Settings.model_fields["group_id"].default:
        return []
    return [
        f"the worker used the default consumer group {settings.group_id}, shared by every lake "
        "on a broker that keeps it (status shows shared_consumer_group while the broker runs); "
        "for a lake of your own, export MAXLAKE_GROUP_ID=<lake>-ingest wherever its workers, "
        "status and lake verify run (docs/OPERATIONS.md, Alerts)",
    ]


def _start_broker(broker: LocalBroker, timeout_s: float) -> None:
    """Fetch the jars if needed and start ``broker``, saying how long it has been waiting."""
    if not any(broker.libs_dir.glob("kafka_2.13-*.jar")):
        _say("fetching the Kafka broker jars from Maven Central (once, about 30 s)")
    fetch_jars(broker.libs_dir)
    if not broker.formatted():
        print("    formatting the broker's storage (first start only, a few seconds)", flush=True)
    live = sys.stdout.isatty()
    told = [0]

    def waiting(waited_s: float) -> None:
        line = f"    waiting for the broker to answer: {waited_s:.0f} s"
        if live:
            print(f"\r{line}", end="", flush=True)
        elif waited_s >= told[0] + 10:
            told[0] = int(waited_s)
            print(line, flush=True)

    broker.start(timeout_s=timeout_s, waiting=waiting)
    if live:
        print()


_NEXT_STEP = {
    "read": "job: computing the dataset's rows and splits (the longest step) ...",
    "write": "quality: running the output checks (Great Expectations) ...",
}
"""What a dataset build does after a stage, for the long steps that report only when done."""

_TICKING = {
    "pin": "sharing: applying the sharing contracts",
    "sharing": "read: counting the rows read",
    "read": "job: computing",
    "rare": "job: checking the output against the contracts",
    "job": "write: writing the splits",
    "write": "quality: checking",
    "quality": "publishing: data card and manifest",
}
"""What runs after a stage, counted in seconds while it lasts (lines only after 10 s)."""


class DatasetProgress:
    """A dataset build's progress for the demo: one line per finished stage, what the next
    long step is doing, and its seconds while it runs (:class:`~maxlake.cli.ticker.Ticker`).

    Call :meth:`stop` when a build ends without its ``published`` stage (it failed).
    """

    def __init__(self, ticker: Ticker | None = None) -> None:
        self.ticker = ticker or Ticker()

    def __call__(self, stage: str, counts: Mapping[str, int]) -> None:
        """Print one demo line for a finished build stage, then what the next step does."""
        self.ticker.stop()
        detail = progress_detail(stage, counts)
        print(f"    {stage}: {detail}" if detail else f"    {stage}", flush=True)
        if stage in _NEXT_STEP:
            print(f"    {_NEXT_STEP[stage]}", flush=True)
        if stage in _TICKING:
            self.ticker.start(_TICKING[stage])

    def stop(self) -> None:
        """Stop counting the current step's seconds."""
        self.ticker.stop()


def _build_datasets(settings: Settings) -> bool:
    """Build the three demo reference sets from what was just ingested; one line each.

    True when at least one was published: a short demo (``--seconds 20``) may hold too little
    factory time for a set (no machine failed yet), which its line says.
    """
    from maxlake.cli.demo_sets import build_demo_sets, curated_lines  # noqa: PLC0415 - lazy: `maxlake --help` stays fast

    progress = DatasetProgress()

    def say(text: str) -> None:
        progress.stop()
        _say(text)

    try:
        built = build_demo_sets(settings, say=say, progress=progress)
    finally:
        progress.stop()
    print()
    for line in curated_lines(built):
        print(line)
    published = [(s.name, s.version) for s in built if s.version is not None]
    if len(published) < len(built):
        print(
            "  (a set needs enough factory time for its windows, gaps and both label classes: "
            "the default demo, 60 s at 2,000 events/s, simulates ~16 h and builds all three)"
        )
    if published:
        token = _demo_principal(settings, [name for name, _ in published])
        name, version = published[0]
        print("  a model team's token (shown once) and how it pulls a train split:")
        print(f"    export MAXLAKE_TOKEN={token}")
        folder = f"data/{name}-v{version}"
        print(f"    {_cli()} datasets pull {name}@{version} --split train --out {folder}")
    return bool(published)


def _demo_principal(settings: Settings, datasets: list[str]) -> str:
    """A fresh ``demo-model-team`` principal granted ``datasets``; returns its token."""
    from lake.access import AccessStore, access_dir  # noqa: PLC0415 - lazy: `maxlake --help` stays fast

    store = AccessStore(access_dir(settings))
    if any(p.name == "demo-model-team" for p in store.list()):
        store.remove("demo-model-team")
    _, token = store.add("demo-model-team", "model_team")
    for dataset in datasets:
        store.grant("demo-model-team", dataset)
    return str(token)


def worker_line(engine: str) -> str:
    """``batch engine, native JSON parser``: what the demo's worker runs, so its rate can be
    compared with docs/BENCHMARKS.md; the fallback parser says it is the slower one."""
    if native_parser.PARSER == "native":
        return f"{engine} engine, native JSON parser"
    return (
        f"{engine} engine, arrow JSON parser (the slower fallback: maxlake_native is not "
        "built; docs/INGEST.md)"
    )


def _start_worker(settings: Settings) -> subprocess.Popen[bytes]:
    log_dir = Path(".maxlake")
    log_dir.mkdir(exist_ok=True)
    log = (log_dir / "demo-worker.log").open("wb")
    _say(f"starting an ingest worker, {worker_line(settings.ingest_engine)} (log: {log.name})")
    # -P: the current folder is not put on sys.path, so a folder there named like one of
    # maxlake's packages (a lake root called "lake") cannot shadow it.
    return subprocess.Popen(
        [sys.executable, "-P", "-m", "maxlake.cli", "worker", "--loglevel", "info"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=os.environ.copy(),
    )


def _stop_worker(worker: subprocess.Popen[bytes]) -> None:
    stop_process(worker, timeout_s=60, group=True)


def earliest_event_time(store: DeltaStore) -> datetime | None:
    """The earliest ``event_time`` of the silver tables (from the Delta log's file statistics),
    or None when they hold no rows."""
    found: list[datetime] = []
    for kind in EventKind:
        files = store.describe(silver_table(kind))
        if files is None or "min.event_time" not in files.files.column_names:
            continue
        low = pc.min(files.files["min.event_time"]).as_py()
        if low is not None:
            found.append(low if low.tzinfo else low.replace(tzinfo=UTC))
    return min(found, default=None)


def demo_window(
    simulated_s: float, seed: int, earliest: datetime | None, now: datetime
) -> tuple[datetime, int]:
    """Start of the factory time a demo run simulates, and its simulator seed.

    A first run ends at ``now``. On a lake that already holds events, a run simulates the
    stretch that ends where the lake's earliest event time begins, with a seed of its own: the
    history grows back in time, and no two runs describe the same machines over the same
    hours (the curated sets would mix two unrelated series of one machine)."""
    if earliest is None or earliest >= now:
        return now.replace(microsecond=0) - timedelta(seconds=simulated_s), seed
    end = earliest.replace(microsecond=0) - timedelta(seconds=1)
    return end - timedelta(seconds=simulated_s), seed + int(end.timestamp()) % 1_000_003


def _stream(args: argparse.Namespace, settings: Settings, earliest: datetime | None) -> SimStats:
    tick_s = 10.0
    simulated_s = max(3600.0, args.seconds * args.rate / 20.0 * tick_s)
    start, seed = demo_window(simulated_s, args.seed, earliest, datetime.now(UTC))
    _say(
        f"streaming simulated plants: {args.rate:,.0f} events/s for about {args.seconds:.0f} s, "
        f"{args.bad_rate:.0%} bad input ({simulated_s / 3600:.1f} h of factory time)"
    )
    if earliest is not None:
        end = start + timedelta(seconds=simulated_s)
        print(
            f"    the lake already holds factory time from {earliest:%Y-%m-%d %H:%M} UTC on: this"
            f" run simulates {start:%Y-%m-%d %H:%M} to {end:%H:%M} UTC (seed {seed:,}), so the"
            " curated sets get a longer history instead of two overlapping ones",
            flush=True,
        )
    live = sys.stdout.isatty()
    told = [0.0]

    def sent(stats: SimStats) -> str:
        return f"    {stats.events:,} events sent ({stats.events_per_s:,.0f}/s), {stats.bad:,} bad"

    def progress(stats: SimStats) -> None:
        if live:
            print(f"\r{sent(stats)}", end="", flush=True)
        elif time.monotonic() >= told[0] + 10:
            told[0] = time.monotonic()
            print(sent(stats), flush=True)

    stats = run_simulation(
        settings,
        seed=seed,
        start=start,
        duration_s=simulated_s,
        rate=args.rate,
        bad_rate=args.bad_rate,
        tick_s=tick_s,
        create_topics=False,
        progress=progress,
    )
    if live:
        print()
    else:
        print(sent(stats), flush=True)
    spooled = stats.producer.get("spooled", 0)
    if spooled:
        print(
            f"    {spooled:,} events went through the spool while the broker was slow; "
            f"{stats.producer.get('resent', 0):,} of them resent and acknowledged",
            flush=True,
        )
    return stats


def _wait_for_lag_zero(
    settings: Settings,
    worker: subprocess.Popen[bytes],
    *,
    timeout_s: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Poll the group's lag until 0; one live line with the drain rate and an estimate (in a
    log, a line every 10 s of ``clock`` when it changed)."""
    topics = _topics(settings)
    started = clock()
    deadline = started + timeout_s
    live = sys.stdout.isatty()
    lag = -1
    first_lag: int | None = None
    printed = 0.0
    last_line = ""
    try:
        while clock() < deadline:
            if worker.poll() is not None:
                raise MaxlakeError(
                    f"the worker exited with code {worker.returncode}; see .maxlake/demo-worker.log"
                )
            lag = sum(p.lag for p in group_offsets(settings, topics))
            if lag == 0:
                return 0
            now = clock()
            first_lag = lag if first_lag is None else first_lag
            line = _catch_up_line(lag, first_lag, now - started, live)
            if live or (now - printed >= 10 and line != last_line):
                printed, last_line = now, line
                print(line, end="", flush=True)
            sleep(1.0)
    finally:
        if live and first_lag is not None:
            print()
    raise MaxlakeError(
        f"the worker did not catch up within {timeout_s:.0f} s (lag {lag:,} messages); "
        "see .maxlake/demo-worker.log"
    )


def _catch_up_line(lag: int, first_lag: int, waited_s: float, live: bool) -> str:
    drained = first_lag - lag
    rate = drained / waited_s if waited_s > 0 else 0.0
    if rate > 0:
        eta = f"about {lag / rate:,.0f} s to go"
        line = f"    lag {lag:,} messages, draining {rate:,.0f} messages/s, {eta}"
    else:
        line = f"    lag {lag:,} messages (measuring the drain rate)"
    return f"\r{line:<78}" if live else f"{line}\n"


def _topics(settings: Settings) -> list[str]:
    return [settings.topic_for(t.id, k.value) for t in load_registry().tenants for k in EventKind]


def _report(
    settings: Settings,
    stats: SimStats,
    lag: int,
    before: Mapping[EventKind, Counter[str]],
    since: Mapping[tuple[str, int], int],
    started: datetime,
) -> bool:
    """The counts of this run: messages at or beyond ``since``, the topics' end offsets when it
    started (``before``: what the lake held then; batches that started at or after
    ``started``)."""
    store = DeltaStore.from_settings(settings)
    print()
    print(f"maxlake demo report (ingest engine: {settings.ingest_engine})")
    with ticking("counting this run's messages in silver, quarantine and duplicates"):
        frames = {kind: lake_frames(store, kind) for kind in EventKind}
        landed_now = {kind: count_frames(frames[kind], None) for kind in EventKind}
        this_run = {kind: count_frames(frames[kind], since) for kind in EventKind}
        reasons = quarantine_reasons(store, since)
        runs = store.read_frame(RUNS, columns=["kind", "consumed", "started_at", "finished_at"])
    held, older = 0, 0
    for kind in EventKind:
        held += before[kind]["silver events"] + before[kind]["quarantined"]
        older += sum(
            landed_now[kind][h] - before[kind][h] - this_run[kind][h]
            for h in ("silver events", "quarantined", "duplicates")
        )
    if held or older:
        print(
            f"this run only: the lake held {held:,} events and quarantined messages before it"
            if held
            else "this run only"
        )
    if older:
        print(
            f"the worker also ingested {older:,} messages that were in the topics before this run"
            " (sent by an earlier run into another lake, or by hand); they are not counted below"
        )
    print("-" * 90)
    header = ("produced", "silver events", "quarantined", "duplicates", "silver rows")
    print(f"{'kind':<15}" + "".join(f"{h:>15}" for h in header))
    totals = Counter[str]()
    for kind in EventKind:
        counts = this_run[kind]
        counts["produced"] = stats.by_kind.get(kind.value, 0)
        totals.update(counts)
        print(f"{kind.value:<15}" + "".join(f"{counts[h]:>15,}" for h in header))
    print(f"{'total':<15}" + "".join(f"{totals[h]:>15,}" for h in header))
    landed = totals["silver events"] + totals["quarantined"] + totals["duplicates"]
    resends = stats.by_bad_class.get("duplicate_resend", 0)
    print(
        f"\n{stats.bad:,} of the produced events were deliberately bad: "
        f"{stats.bad - resends:,} broken (quarantined) and {resends:,} byte-identical resends "
        "(counted as duplicates, not written twice)"
    )
    balance = "balances" if landed == totals["produced"] else "does NOT balance"
    print(
        f"produced = silver events + quarantined + duplicates: {totals['produced']:,} = "
        f"{landed:,} ({balance})"
    )
    if reasons:
        print("quarantined by reason (a message may have several):")
        for reason, count in reasons.most_common():
            print(f"    {reason:<40}{count:>8,}")
    if runs is not None:
        runs = runs.filter(pl.col("started_at") >= started)
        for line in batch_lines(runs, settings.ingest_engine, stats.events_per_s):
            print(line)
    print(f"final lag            {lag:>10,} messages")
    with ticking("checking the accounting invariant (every offset in exactly one place)"):
        report = check_accounting(store)
    verdict = "holds" if report.ok else f"BROKEN ({len(report.violations)} violations)"
    print(f"accounting invariant {verdict}")
    for violation in report.violations[:10]:
        print(f"    {violation}")
    return report.ok and landed == totals["produced"]


def batch_lines(runs: pl.DataFrame, engine: str, sent_per_s: float) -> list[str]:
    """The report's batch lines from ``ops/validation_runs`` rows (``kind``, ``consumed``,
    ``started_at``, ``finished_at``).

    The rate is telemetry events per second of summed telemetry batch time (decode, validate,
    write), labelled as such: machine_event/inspection batches are small and mostly fixed cost,
    and the demo's producer is paced, so neither says what the engine does at full load
    (docs/BENCHMARKS.md has that).
    """
    by_kind = runs.group_by("kind").agg(
        pl.len().alias("batches"),
        pl.col("consumed").sum(),
        (pl.col("finished_at") - pl.col("started_at")).dt.total_microseconds().sum().alias("us"),
    )
    counts = {str(k): (int(n), int(c), int(us) / 1e6) for k, n, c, us in by_kind.iter_rows()}
    telemetry = counts.get(EventKind.TELEMETRY.value)
    others = sorted(k for k in counts if k != EventKind.TELEMETRY.value)
    split = [f"{telemetry[0] if telemetry else 0:,} telemetry"]
    if others:
        split.append(f"{sum(counts[k][0] for k in others):,} {' and '.join(others)}")
    lines = [f"batches validated    {runs.height:>10,} ({', '.join(split)})"]
    if telemetry is not None and telemetry[2] > 0:
        batches, consumed, busy_s = telemetry
        lines += [
            f"telemetry batches    {consumed / busy_s:>10,.0f} events/s while busy "
            f"({engine} engine: decode, validate, write)",
            f"    {consumed:,} events in {busy_s:.1f} s of summed batch time, "
            f"{consumed / batches:,.0f} events per batch on average; not the",
            f"    engine's throughput: the producer was paced at {sent_per_s:,.0f} events/s, "
            "so each batch's fixed cost",
            "    (validation set-up, Delta commits) weighs more than at full load; see "
            "docs/BENCHMARKS.md#ingest",
        ]
    return lines


def _cli() -> str:
    """How to call this same ``maxlake`` from the user's shell, as printed in hints."""
    called = Path(sys.argv[0])
    if called.name == "maxlake":
        on_path = shutil.which("maxlake")
        if on_path is not None and Path(on_path).resolve() == called.resolve():
            return "maxlake"
        return str(called)
    return f"{sys.executable} -m maxlake.cli"
