"""Real public data end to end: a few NASA C-MAPSS FD001 engines through Kafka, the real worker,
the lake and the remaining-useful-life build.

Expectations come from the raw files (parsed here with the standard library), not from the
import code; silver and the duplicates table are read straight from Delta.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections import Counter
from pathlib import Path

import orjson
import polars as pl
import pytest

from lake.access import AccessStore, access_dir
from streams.cmapss import TENANT, build_events, find_files, import_cmapss, read_runs
from streams.producer import PlantProducer
from tests.conftest import realdata_dir
from tests.integration.ingest_helpers import (
    IngestEnv,
    read_table,
    run_cli,
    wait_for_lag_zero,
    workers,
)

pytestmark = pytest.mark.integration

ENGINES = 3
SPEC = Path(__file__).resolve().parents[2] / "lake" / "curation" / "specs" / "cmapss_fd001_rul.toml"


def _column_by_cycle(path: Path, column: int) -> dict[tuple[int, int], float]:
    """(engine, cycle) -> the value of whitespace-separated ``column`` of the raw file."""
    with gzip.open(path, "rt") as fh:
        rows = [line.split() for line in fh if line.strip()]
    return {(int(r[0]), int(r[1])): float(r[column]) for r in rows}


def _cycles_per_engine(path: Path) -> Counter[int]:
    with gzip.open(path, "rt") as fh:
        return Counter(int(line.split()[0]) for line in fh if line.strip())


def test_fd001_engines_flow_through_kafka_into_a_rul_dataset(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    train_file, test_file, rul_file = find_files(realdata_dir() / "cmapss")
    train_cycles = {e: n for e, n in _cycles_per_engine(train_file).items() if e <= ENGINES}
    test_cycles = {e: n for e, n in _cycles_per_engine(test_file).items() if e <= ENGINES}
    expected_events = sum(train_cycles.values()) + sum(test_cycles.values())
    with gzip.open(rul_file, "rt") as fh:
        truth = [int(x) for x in fh.read().split()][:ENGINES]

    base = IngestEnv(kafka_bootstrap, unique_name, tmp_path, (TENANT,), batch_max_events=5000)
    base.create_topics()
    settings = base.settings()
    first = import_cmapss(settings, train=train_file, test=test_file, rul=rul_file, engines=ENGINES)
    assert (first.events, first.sent, first.skipped) == (expected_events, expected_events, 0)
    env = IngestEnv(
        kafka_bootstrap,
        unique_name,
        tmp_path,
        (TENANT,),
        batch_max_events=5000,
    )

    with workers(env, "solo") as (worker,):
        wait_for_lag_zero(env, [worker], produced=expected_events, timeout_s=180)
        silver = read_table(env, "silver/telemetry", ["event_id", "machine", "tag", "unit"])
        assert silver.get_column("event_id").n_unique() == expected_events
        assert silver.height == expected_events * 24
        assert read_table(env, "quarantine/telemetry", ["raw"]).height == 0
        units = dict(silver.select("tag", "unit").unique().iter_rows())
        assert (units["T30"], units["Ps30"], units["Nc"], units["W32"]) == (
            "degR",
            "psia",
            "rpm",
            "lbm/s",
        )

        again = import_cmapss(settings, train=train_file, test=test_file, rul=rul_file, engines=3)
        assert (again.sent, again.skipped) == (0, expected_events)
        assert again.epoch == first.epoch

        # The worker's own exactly-once: resend every cycle as a plant would after an outage.
        runs = read_runs(train_file)
        resent = [
            (machine, payload)
            for _, machine, payload in build_events("fd001", "train", runs, first.epoch, 600)
            if int(orjson.loads(payload)["machine"].rsplit("-", 1)[1]) <= ENGINES
        ]
        with PlantProducer(settings, spool_dir=tmp_path / "resend-spool") as producer:
            for machine, payload in resent:
                producer.send_raw(
                    settings.topic_for(TENANT, "telemetry"), payload, key=machine.encode()
                )
        wait_for_lag_zero(env, [worker], produced=expected_events + len(resent), timeout_s=180)
        assert worker.terminate() == 0, worker.log_tail()

    silver = read_table(env, "silver/telemetry", ["event_id"])
    assert silver.height == expected_events * 24
    duplicates = read_table(env, "ops/duplicates", ["event_id"])
    assert duplicates.height == len(resent)

    verify = run_cli(env, "lake", "verify", "--json")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert json.loads(verify.stdout)["ok"] is True

    with first.ground_truth.open() as fh:
        ground = {r["machine"]: r for r in csv.DictReader(fh)}
    assert [int(ground[f"fd001-test-{e:03d}"]["rul_cycles"]) for e in (1, 2, 3)] == truth

    build = run_cli(
        env, "datasets", "build", str(SPEC), "--registry", str(first.registry), timeout_s=600
    )
    assert build.returncode == 0, build.stdout + build.stderr
    summary = json.loads(build.stdout.strip().splitlines()[-1])
    assert summary["version"] == 1
    folder = tmp_path / "lake" / "curated" / "cmapss-fd001-rul" / "v1"
    splits = {p.stem: pl.read_parquet(p) for p in folder.glob("*.parquet")}
    score = splits["score"]
    assert score.get_column("machine").to_list() == [f"fd001-test-{e:03d}" for e in (1, 2, 3)]
    assert score.get_column("cycle").to_list() == [test_cycles[e] for e in (1, 2, 3)]
    assert score.get_column("rul_cycles").null_count() == ENGINES
    t30 = _column_by_cycle(train_file, 7)  # unit, cycle, 3 settings, sensors 1..21: T30 = s3
    assert sorted(splits) == ["score", "train", "validation"]  # test: share 0, not published
    labelled = pl.concat([splits[n] for n in ("train", "validation")])
    owners = {n: set(splits[n].get_column("machine").to_list()) for n in splits}
    assert sum(len(m) for m in owners.values()) == 2 * ENGINES  # no engine in two splits
    for engine, cycles in train_cycles.items():
        rows = labelled.filter(pl.col("machine") == f"fd001-train-{engine:03d}").sort("cycle")
        assert rows.height == cycles
        assert rows.get_column("rul_cycles_uncapped").to_list() == list(range(cycles - 1, -1, -1))
        assert rows.get_column("rul_cycles").max() == 125
        # Public data is shared as is: the published features are the file's values, with no
        # contract noise (1 % noise buried FD001's ~0.1 % degradation: RMSE 25 instead of 14).
        raw = [t30[(engine, c)] for c in rows.get_column("cycle").to_list()]
        assert rows.get_column("T30__last").to_list() == raw
    card = (folder / "README.md").read_text()
    assert "degR" in card
    assert "cap_cycles: 125" in card

    access = AccessStore(access_dir(settings))
    _, token = access.add("rul-team", "model_team")
    access.grant("rul-team", "cmapss-fd001-rul")
    pulled = run_cli(
        env,
        "datasets",
        "pull",
        "cmapss-fd001-rul@1",
        "--split",
        "score",
        "--out",
        str(tmp_path / "pulled"),
        "--token",
        str(token),
    )
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    assert pl.read_parquet(tmp_path / "pulled" / "cmapss-fd001-rul-v1-score.parquet").height == 3
