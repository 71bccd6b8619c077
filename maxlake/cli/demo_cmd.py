"""``maxlake demo``: the main job end to end on the embedded default.

Starts the local broker (unless one answers already), creates the topics, starts one ingest
worker as a child process, streams about a minute of simulated plants with 1% bad input, waits
until the worker has caught up (lag 0), stops it with SIGTERM, checks the accounting invariant
and prints a report from the lake.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any

import polars as pl

from infra.broker import fetch_jars
from lake import RUNS, DeltaStore, quarantine_table, silver_table
from lake.accounting import check_accounting
from maxlake.cli.broker_cmd import local_broker
from maxlake.errors import MaxlakeError
from maxlake.settings import Settings
from schemas import EventKind, load_registry
from streams.offsets import group_offsets
from streams.simulator import SimStats, run_simulation
from streams.topics import ensure_topics


def register(sub: Any) -> None:
    """Add ``demo``."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "demo", help="end to end: broker, simulated plants, worker, Delta lake, report"
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="wall-clock seconds to stream")
    parser.add_argument("--rate", type=float, default=2000.0, help="events per second")
    parser.add_argument("--bad-rate", type=float, default=0.01, help="share of bad messages")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep-broker", action="store_true", help="leave the broker running")
    parser.set_defaults(handler=_demo)


def _say(text: str) -> None:
    print(f"==> {text}", flush=True)


def _demo(args: argparse.Namespace) -> int:
    settings = Settings()
    registry = load_registry()
    broker = local_broker(settings)
    started_broker = False
    if broker.status().answering:
        _say(f"using the broker already running on {broker.bootstrap}")
    else:
        _say(f"starting the local Kafka broker on {broker.bootstrap} (first start formats storage)")
        fetch_jars(broker.libs_dir)
        broker.start(timeout_s=settings.broker_start_timeout_s)
        started_broker = True
    tenants = [t.id for t in registry.tenants]
    created = ensure_topics(settings, tenants)
    if created:
        time.sleep(2.0)
    _say(f"topics: {len(created)} created, {len(tenants) * len(EventKind) - len(created)} existed")
    worker = _start_worker(settings)
    try:
        stats = _stream(args, settings)
        _say("waiting for the worker to catch up (lag 0)")
        lag = _wait_for_lag_zero(settings, worker, timeout_s=300)
    finally:
        _stop_worker(worker)
    ok = _report(settings, stats, lag)
    ok = _build_dataset(settings) and ok
    if started_broker and not args.keep_broker:
        _say("stopping the broker (use --keep-broker to leave it running)")
        broker.stop()
    return 0 if ok else 1


def _build_dataset(settings: Settings) -> bool:
    """Build the demo's curated set from what was just ingested and summarise its manifest."""
    from lake.curation import build_dataset, load_spec
    from lake.curation.errors import QualityCheckFailed
    from lake.curation.jobs import JOBS
    from lake.sharing import sharing_gate

    spec_path = Path(str(files("lake.curation") / "specs" / "demo_predictive_maintenance.toml"))
    spec = load_spec(spec_path, jobs=JOBS)
    _say(f"building the curated dataset {spec.name!r} from the pinned silver versions")

    def progress(stage: str, counts: Mapping[str, int]) -> None:
        detail = ", ".join(f"{k} {v:,}" for k, v in counts.items())
        print(f"    {stage}: {detail}" if detail else f"    {stage}", flush=True)

    _demo_contracts(settings, spec.purpose)
    try:
        manifest = build_dataset(
            DeltaStore(settings.lake_root),
            spec,
            registry=load_registry(),
            progress=progress,
            sharing=sharing_gate(settings),
        )
    except QualityCheckFailed as exc:
        print(f"dataset not published: {exc}")
        return False
    print()
    print(f"dataset {manifest.name}@v{manifest.version}")
    sources = ", ".join(f"{s.table}@v{s.version}" for s in manifest.sources.values())
    print(f"  sources   {sources}")
    for split, info in manifest.splits.items():
        labels = "; ".join(f"{col} {dist.get('counts', dist)}" for col, dist in info.labels.items())
        print(f"  {split:<10}{info.rows:>8,} rows  {labels}")
    print(f"  features  {len(manifest.features)}  content hash {manifest.content_hash[:16]}")
    contracts = ", ".join(f"{c['id']} v{c['version']}" for c in manifest.contracts)
    print(f"  contracts {contracts}")
    token = _demo_principal(settings, manifest.name)
    print("  a model team's token (shown once) and how it pulls the train split:")
    print(f"    export MAXLAKE_TOKEN={token}")
    print(f"    maxlake datasets pull {manifest.name}@{manifest.version} --split train")
    return True


def _demo_contracts(settings: Settings, purpose: str) -> None:
    """One sharing contract per tenant for the demo's purpose, unless one is in force.

    Every machine type of the demo registry belongs to a single company, so rare-type
    suppression is off here (in a real alliance, keep it on).
    """
    from lake.sharing import ContractStore, KeyRing, contracts_dir, keys_file

    store = ContractStore(contracts_dir(settings))
    keys = KeyRing(keys_file(settings))
    for tenant in load_registry().tenants:
        if store.in_force(tenant.id, purpose) is not None:
            continue
        contract = store.add(
            (
                f'id = "{tenant.id}-demo"\ntenant = "{tenant.id}"\n'
                f'purposes = ["{purpose}"]\n'
                'description = "maxlake demo: machine health data, pseudonymised"\n'
                '[share]\nkinds = ["telemetry", "machine_event"]\n'
                '[deidentify]\npseudonymise = ["plant", "line", "machine"]\n'
                "suppress_rare = false\n"
            ).encode(),
            source="maxlake demo",
        )
        keys.ensure(contract.id)
        _say(f"sharing contract {contract.id} v{contract.version} for purpose {purpose!r}")


def _demo_principal(settings: Settings, dataset: str) -> str:
    """A fresh ``demo-model-team`` principal granted ``dataset``; returns its token."""
    from lake.access import AccessStore, access_dir

    store = AccessStore(access_dir(settings))
    if any(p.name == "demo-model-team" for p in store.list()):
        store.remove("demo-model-team")
    _, token = store.add("demo-model-team", "model_team")
    store.grant("demo-model-team", dataset)
    return str(token)


def _start_worker(settings: Settings) -> subprocess.Popen[bytes]:
    log_dir = Path(".maxlake")
    log_dir.mkdir(exist_ok=True)
    log = (log_dir / "demo-worker.log").open("wb")
    _say(f"starting an ingest worker, {settings.ingest_engine} engine (log: {log.name})")
    return subprocess.Popen(
        [sys.executable, "-m", "maxlake.cli", "worker", "--loglevel", "info"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=os.environ.copy(),
    )


def _stop_worker(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is not None:
        return
    os.killpg(worker.pid, signal.SIGTERM)
    try:
        worker.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()


def _stream(args: argparse.Namespace, settings: Settings) -> SimStats:
    tick_s = 10.0
    simulated_s = max(3600.0, args.seconds * args.rate / 20.0 * tick_s)
    _say(
        f"streaming simulated plants: {args.rate:,.0f} events/s for about {args.seconds:.0f} s, "
        f"{args.bad_rate:.0%} bad input ({simulated_s / 3600:.1f} h of factory time)"
    )
    live = sys.stdout.isatty()

    def progress(stats: SimStats) -> None:
        line = f"    {stats.events:,} events sent ({stats.events_per_s:,.0f}/s), {stats.bad} bad"
        print(("\r" + line) if live else line, end="" if live else "\n", flush=True)

    stats = run_simulation(
        settings,
        seed=args.seed,
        duration_s=simulated_s,
        rate=args.rate,
        bad_rate=args.bad_rate,
        tick_s=tick_s,
        create_topics=False,
        progress=progress,
    )
    if live:
        print()
    return stats


def _wait_for_lag_zero(
    settings: Settings, worker: subprocess.Popen[bytes], *, timeout_s: float
) -> int:
    topics = [settings.topic_for(t.id, k.value) for t in load_registry().tenants for k in EventKind]
    deadline = time.monotonic() + timeout_s
    lag = -1
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise MaxlakeError(
                f"the worker exited with code {worker.returncode}; see .maxlake/demo-worker.log"
            )
        lag = sum(p.lag for p in group_offsets(settings, topics))
        if lag == 0:
            return 0
        print(f"    lag {lag:,} messages", flush=True)
        time.sleep(2)
    raise MaxlakeError(f"the worker did not catch up within {timeout_s:.0f} s (lag {lag:,})")


def _report(settings: Settings, stats: SimStats, lag: int) -> bool:
    store = DeltaStore(settings.lake_root)
    print()
    print("maxlake demo report")
    print("-------------------")
    print(f"events produced      {stats.events:>10,}  ({stats.bad:,} deliberately bad)")
    for kind in EventKind:
        table = store.open(silver_table(kind))
        rows = table.count() if table is not None else 0
        print(f"silver {kind.value:<14}{rows:>10,} rows")
    reasons: Counter[str] = Counter()
    for kind in EventKind:
        table = store.open(quarantine_table(kind))
        if table is not None:
            frame = pl.from_arrow(table.to_pyarrow_table(columns=["reasons"]))
            assert isinstance(frame, pl.DataFrame)
            for rs in frame["reasons"].to_list():
                reasons.update(rs)
    quarantined = sum(
        t.count() for k in EventKind if (t := store.open(quarantine_table(k))) is not None
    )
    print(f"quarantined          {quarantined:>10,} messages, by reason:")
    for reason, count in reasons.most_common():
        print(f"    {reason:<40}{count:>8,}")
    runs_table = store.open(RUNS)
    if runs_table is not None:
        runs = pl.from_arrow(
            runs_table.to_pyarrow_table(
                columns=["consumed", "duplicates", "started_at", "finished_at"]
            )
        )
        assert isinstance(runs, pl.DataFrame)
        busy_s = (
            float((runs["finished_at"] - runs["started_at"]).dt.total_microseconds().sum()) / 1e6
        )
        consumed = int(runs["consumed"].sum())
        print(f"duplicates (resends) {int(runs['duplicates'].sum()):>10,}")
        print(f"batches validated    {runs.height:>10,}")
        print(
            f"ingest throughput    {consumed / busy_s if busy_s else 0:>10,.0f} events/s "
            f"of batch processing time ({consumed:,} events in {busy_s:.1f} s)"
        )
    print(f"final lag            {lag:>10,} messages")
    report = check_accounting(store)
    verdict = "holds" if report.ok else f"BROKEN ({len(report.violations)} violations)"
    print(f"accounting invariant {verdict}")
    for violation in report.violations[:10]:
        print(f"    {violation}")
    return report.ok
