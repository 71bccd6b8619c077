"""Soak: real workers, a live producer, kill -9 of workers and of the broker, rebalances; then an
independent record-by-record accounting of Kafka against the lake.

    .venv/bin/python -m bench.soak --events 20000 --workers 2 --partitions 4 --kills 3 \\
        --broker-kills 1 --duration 60
    .venv/bin/python -m bench.soak --events 1000000 --workers 3 --partitions 12 --kills 20 \\
        --broker-kills 2 --rebalance-every 60 --duration 1200

A throwaway broker (its own home and free ports) and lake under ``--work`` (default: a temporary
folder). ``--workers`` real ``maxlake worker`` processes (one consumer group, ``--engine``) are
started first, while the broker is still starting: they wait for it. One tenant's topics (every
event kind, ``--partitions`` each) then receive ``--events`` events: a few warm-up events at
once, the rest paced over ``--duration`` seconds from the moment a worker has written its first
batch (so the abuse falls on a live stream, however slowly the workers start): simulator events
(``--bad-rate`` bad input) made unique by a fresh ``event_id``, plus plant resends
(``--resend-rate``: the same payload and key again). Meanwhile the workers are killed with
SIGKILL ``--kills`` times at random moments (a victim is one that has written since its last
start) and restarted at once, a worker that exits by itself is restarted and counted as a
crash; the broker is killed with SIGKILL ``--broker-kills`` times while workers write, and
restarted on the same data; every ``--rebalance-every`` seconds an extra worker joins or leaves
(SIGTERM). When the producer is done and the group's lag is 0, the workers stop and
:mod:`bench.soak_accounting` reads every record of Kafka (kafka-python, ``read_committed``) and
the Delta tables (deltalake/Polars) and compares them offset by offset. It imports nothing of
maxlake's accounting.

Prints (and writes as JSON to ``<work>/soak.json``): events produced, kills done, lost and
duplicated offsets, and the time from each worker (re)start to its first commit of new offsets
(median, max; read from the worker's log). Exit code 0 when nothing is lost or duplicated.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from bench.soak_accounting import audit, read_kafka, read_lake
from infra.broker import LocalBroker, free_port
from infra.errors import BrokerStartFailed
from maxlake.processes import stop_process
from maxlake.settings import Settings
from schemas import load_registry
from streams.simulator import Simulator
from streams.topics import ensure_topics

TENANT = "northwind-auto"
KINDS = ("telemetry", "machine_event", "inspection")
_FIRST_COMMIT = re.compile(
    r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\].*batch: [1-9][\d,]* events consumed"
)


def _say(message: str) -> None:
    print(f"[soak {datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


@dataclass
class Worker:
    """One ``maxlake worker`` process slot: started, killed and restarted by the harness."""

    name: str
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: list[float] = field(default_factory=list)

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            started = time.time()
            log.write(f"\n===== start at {started:.3f} =====\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [sys.executable, "-P", "-m", "maxlake.cli", "worker", "--tenant", TENANT],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.starts.append(started)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def send(self, sig: signal.Signals) -> bool:
        """Send ``sig`` to the worker's process group; False when it is not running."""
        if self.proc is None or not self.alive:
            return False
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            return False
        return True

    def signal(self, sig: signal.Signals, timeout_s: float = 60.0) -> int | None:
        """Send ``sig`` and wait for the exit (SIGKILL after ``timeout_s``); its exit code."""
        if self.proc is None:
            return None
        return stop_process(self.proc, timeout_s=timeout_s, group=True, sig=sig)

    def committed_since_start(self) -> bool:
        """Whether the current start has written a batch of new offsets."""
        text = self.log_path.read_text(errors="replace")
        last = text.rsplit("\n===== start at ", 1)[-1]
        return any(_FIRST_COMMIT.match(line) for line in last.splitlines())

    def restart_to_first_commit(self) -> list[float]:
        """Seconds from each restart (not the first start) to the first batch of new offsets
        it wrote; starts that wrote nothing before they ended are left out."""
        if not self.log_path.exists():
            return []  # never started (the extra worker without rebalances)
        text = self.log_path.read_text(errors="replace")
        out: list[float] = []
        for block in text.split("\n===== start at ")[2:]:
            started = float(block.split(" ", 1)[0])
            for line in block.splitlines():
                match = _FIRST_COMMIT.match(line)
                if match:
                    when = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f")
                    out.append(when.timestamp() - started)
                    break
        return out


class Producer(threading.Thread):
    """Sends ``events`` events paced over ``duration_s``; survives broker kills (retries)."""

    def __init__(self, args: argparse.Namespace, settings: Settings) -> None:
        super().__init__(daemon=True)
        self.args, self.settings = args, settings
        self.sent = 0
        self.failed = 0
        self.go = threading.Event()
        self.error: BaseException | None = None

    def _pool(self) -> list[tuple[str, bytes, bytes, bytes | None]]:
        """(topic, key, payload, event_id or None for bad input) of simulator events."""
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
        sim = Simulator(
            load_registry(), seed=self.args.seed, bad_rate=self.args.bad_rate,
            tenants=[TENANT], start=start,
        )  # fmt: skip
        pool = []
        for event in sim.events(duration_s=3600):
            if event.bad_class == "duplicate_resend":
                continue
            eid = None
            if event.bad_class is None:
                eid = json.loads(event.payload)["event_id"].encode()
            pool.append((event.topic(self.settings), event.key, event.payload, eid))
            if len(pool) >= 20_000:
                break
        return pool

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # reported by the main thread
            self.error = exc

    def _run(self) -> None:
        args = self.args
        pool = self._pool()
        rng = random.Random(args.seed)
        producer = KafkaProducer(
            bootstrap_servers=self.settings.bootstrap_servers,
            acks="all",
            linger_ms=20,
            retries=1_000_000,
            retry_backoff_ms=500,
            delivery_timeout_ms=600_000,
            request_timeout_ms=30_000,
            max_block_ms=600_000,
            compression_type="lz4",
        )
        last: dict[str, tuple[bytes, bytes]] = {}
        warmup = min(200, args.events // 20)
        started = time.monotonic()
        rate = (args.events - warmup) / args.duration
        futures: list[Any] = []
        for i in range(args.events):
            # One clock reading: read twice, a thread switch between the readings made the
            # second difference negative (ValueError from time.sleep, the producer died).
            if i == warmup:
                # The rest is paced once a worker has written the warm-up events, so that
                # the kills fall on a live stream however long the workers took to start.
                self._settle(futures)
                self.go.wait()
                started = time.monotonic()
            wait = started + (i - warmup) / rate - time.monotonic()
            if i >= warmup and wait > 0:
                time.sleep(wait)
            topic, key, payload, eid = pool[i % len(pool)]
            if topic in last and rng.random() < args.resend_rate:
                key, payload = last[topic]
            elif eid is not None:
                payload = payload.replace(eid, str(uuid.uuid4()).encode(), 1)
                last[topic] = (key, payload)
            futures.append(producer.send(topic, key=key, value=payload))
            if len(futures) >= 5000:
                self._settle(futures)
        self._settle(futures)
        producer.flush()
        producer.close()

    def _settle(self, futures: list[Any]) -> None:
        for future in futures:
            try:
                future.get(timeout=600)
                self.sent += 1
            except Exception:
                self.failed += 1
        futures.clear()


def _lag(bootstrap: str, group: str, topics: list[str]) -> int | None:
    """Log end minus the group's committed offset, summed; None while the broker does not tell."""
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    except KafkaError:
        return None
    try:
        listed: dict[Any, Any] = admin.list_group_offsets({group: None}).get(group, {})
        committed = {(tp.topic, tp.partition): meta for tp, meta in listed.items()}
        parts = [
            TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()
        ]
        ends = consumer.end_offsets(parts)
        lag = 0
        for tp in parts:
            meta = committed.get((tp.topic, tp.partition))
            done = meta.offset if meta is not None and meta.offset >= 0 else 0
            lag += max(ends[tp] - done, 0)
        return lag
    except KafkaError:
        return None
    finally:
        consumer.close()
        admin.close()


class Crew:
    """The worker slots: restarts any that exited by itself (counted as a crash)."""

    def __init__(self, workers: list[Worker]) -> None:
        self.workers = workers
        self.crashes = 0

    def tend(self) -> None:
        for w in self.workers:
            if not w.alive:
                self.crashes += 1
                _say(f"worker {w.name} exited by itself (see {w.log_path}); restarting")
                w.start()

    def sleep(self, seconds: float) -> None:
        """Sleep ``seconds``, restarting crashed workers about once a second."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 0.5))
            self.tend()

    def victim(self, rng: random.Random, wait_s: float = 120.0) -> Worker:
        """A random worker that has committed since it (re)started; waits up to ``wait_s`` for
        one (so that each restart's time to its first commit is defined), then takes any."""
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            ready = [w for w in self.workers if w.alive and w.committed_since_start()]
            if ready:
                return rng.choice(ready)
            self.sleep(0.5)
        return rng.choice(self.workers)


def _restart(broker: LocalBroker, timeout_s: float = 300.0) -> None:
    """Start the killed broker on its data again, once the dead one's ports are released."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            broker.start(timeout_s=180)
        except BrokerStartFailed as exc:
            if time.monotonic() > deadline:
                raise
            _say(f"broker not restarted yet ({exc}); trying again in 2 s")
            time.sleep(2)
        else:
            return


def _schedule(args: argparse.Namespace, rng: random.Random) -> list[tuple[float, str]]:
    """(seconds after start, action) for every kill, broker kill and rebalance."""
    span = args.duration * 0.9
    actions = [(rng.uniform(0, span), "kill") for _ in range(args.kills)]
    actions += [
        (span * (i + 1) / (args.broker_kills + 1), "broker") for i in range(args.broker_kills)
    ]
    if args.rebalance_every > 0:
        t = args.rebalance_every
        while t < span:
            actions.append((t, "rebalance"))
            t += args.rebalance_every
    return sorted(actions)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--kills", type=int, default=3, help="kill -9 of a random worker")
    parser.add_argument("--broker-kills", type=int, default=1, help="kill -9 of the broker")
    parser.add_argument("--rebalance-every", type=float, default=0, help="s; 0 = none")
    parser.add_argument("--duration", type=float, default=60, help="producer runs this long, s")
    parser.add_argument("--engine", choices=["batch", "stream"], default="batch")
    parser.add_argument("--bad-rate", type=float, default=0.02)
    parser.add_argument("--resend-rate", type=float, default=0.005)
    parser.add_argument("--session-timeout", type=float, default=10.0, help="s")
    parser.add_argument("--batch-max-events", type=int, default=20_000)
    parser.add_argument("--drain-timeout", type=float, default=900, help="s")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work", type=Path, default=None, help="default: a temporary folder")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="maxlake-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)

    broker = LocalBroker(work / "kafka", port=free_port(), controller_port=free_port())
    _say(f"broker on {broker.bootstrap}, work folder {work}")
    name = f"soak{uuid.uuid4().hex[:6]}"
    settings = Settings(
        bootstrap_servers=broker.bootstrap, topic_prefix=name, topic_partitions=args.partitions
    )
    topics = [settings.topic_for(TENANT, k) for k in KINDS]
    group = f"{name}-ingest"
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("MAXLAKE_")}
    base_env.update(
        {
            "MAXLAKE_BOOTSTRAP_SERVERS": broker.bootstrap,
            "MAXLAKE_TOPIC_PREFIX": name,
            "MAXLAKE_GROUP_ID": group,
            "MAXLAKE_LAKE_ROOT": str(work / "lake"),
            "MAXLAKE_INGEST_ENGINE": args.engine,
            "MAXLAKE_BROKER_SESSION_TIMEOUT_S": str(args.session_timeout),
            "MAXLAKE_BATCH_MAX_EVENTS": str(args.batch_max_events),
            "GX_ANALYTICS_ENABLED": "false",
            "PYTHONUNBUFFERED": "1",
        }
    )

    def worker(slot: str) -> Worker:
        env = {**base_env, "MAXLAKE_FAUST_DATADIR": str(work / f"faust-{slot}")}
        return Worker(slot, env, work / f"worker-{slot}.log")

    workers = [worker(f"w{i}") for i in range(args.workers)]
    extra = worker("extra")
    crew = Crew(workers)
    kills = broker_kills = rebalances = 0
    load_start = os.getloadavg()
    wall = time.monotonic()
    try:
        # The workers start before the broker: they wait for it (one log line per attempt),
        # and their start-up overlaps the broker's. They find the topics on a metadata refresh.
        for w in workers:
            w.start()
        broker.start(timeout_s=180)
        ensure_topics(settings, [TENANT])
        producer = Producer(args, settings)
        producer.start()
        crew.victim(rng, wait_s=300)
        producer.go.set()
        started = time.monotonic()
        _say("a worker has written the warm-up events: the paced stream and the schedule start")
        for at, action in _schedule(args, rng):
            crew.sleep(at - (time.monotonic() - started))
            if action == "kill":
                victim = crew.victim(rng)
                victim.signal(signal.SIGKILL)
                victim.start()
                kills += 1
                _say(f"kill -9 worker {victim.name} ({kills}/{args.kills}), restarted")
            elif action == "broker":
                crew.victim(rng)  # a broker kill while workers write, not before they start
                pid = broker.pid()
                assert pid is not None
                os.killpg(pid, signal.SIGKILL)
                while broker.pid() is not None:
                    time.sleep(0.2)
                broker_kills += 1
                _say(f"kill -9 broker ({broker_kills}/{args.broker_kills}); restarting it")
                _restart(broker)
                _say("broker answers again")
            else:
                rebalances += 1
                if extra.alive:
                    extra.signal(signal.SIGTERM)
                    _say("rebalance: the extra worker leaves")
                else:
                    extra.start()
                    _say("rebalance: an extra worker joins")
        while producer.is_alive():
            crew.sleep(1)
        if producer.error is not None:
            raise producer.error
        _say(f"producer done: {producer.sent:,} events acknowledged; draining")
        extra.signal(signal.SIGTERM)
        deadline = time.monotonic() + args.drain_timeout
        lag = _lag(broker.bootstrap, group, topics)
        polls = 0
        # Done when the group has committed everything, or when the lake already holds every
        # record although the group's committed offsets lag (checked by the independent
        # accounting itself, every 10th poll: it reads every record).
        while lag != 0 and time.monotonic() < deadline:
            crew.sleep(2)
            lag = _lag(broker.bootstrap, group, topics)
            polls += 1
            if (
                lag
                and polls % 10 == 0
                and not audit(read_kafka(broker.bootstrap, topics), read_lake(work / "lake")).lost
            ):
                lag = _lag(broker.bootstrap, group, topics)
                _say(f"the lake holds every record; the group's committed lag is now {lag}")
                # The audit took a while and measured the lake, not the group: give the
                # workers' Kafka commits (after each Delta commit) a minute to catch up, so the
                # reported lag tells a stuck group from one that trails by a batch.
                settle = time.monotonic() + 60
                while lag and time.monotonic() < settle:
                    crew.sleep(2)
                    lag = _lag(broker.bootstrap, group, topics)
                break
        elapsed = time.monotonic() - wall
        _say(f"lag {lag} after {elapsed:.0f} s; stopping the workers")
        for w in workers:
            w.send(signal.SIGTERM)
        for w in workers:
            w.signal(signal.SIGTERM)
        _say("reading every Kafka record and the Delta tables")
        result = audit(read_kafka(broker.bootstrap, topics), read_lake(work / "lake"))
    finally:
        for w in [*workers, extra]:
            w.signal(signal.SIGKILL)
        if broker.pid() is not None:
            broker.stop(timeout_s=10)

    delays = [d for w in [*workers, extra] for d in w.restart_to_first_commit()]
    report = {
        "events_requested": args.events,
        "events_acknowledged": producer.sent,
        "kafka_records": result.records,
        "workers": args.workers,
        "partitions": args.partitions,
        "engine": args.engine,
        "worker_kills": kills,
        "broker_kills": broker_kills,
        "rebalances": rebalances,
        "worker_crashes": crew.crashes,
        "final_lag": lag,
        "lost": len(result.lost),
        "duplicated_offsets": len(result.duplicated),
        "duplicated_event_ids": len(result.duplicated_event_ids),
        "phantom": len(result.phantom),
        "silver_offsets": result.silver_offsets,
        "quarantined": result.quarantined,
        "duplicates_counted": result.duplicates,
        "restart_to_first_commit_s": {
            "restarts": len(delays),
            "median": round(statistics.median(delays), 1) if delays else None,
            "max": round(max(delays), 1) if delays else None,
        },
        "elapsed_s": round(elapsed, 1),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "load_avg_start": [round(x, 2) for x in load_start],
        "load_avg_end": [round(x, 2) for x in os.getloadavg()],
    }
    (work / "soak.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    print(result.summary())
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
