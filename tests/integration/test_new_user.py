"""The first hour of a new user, in a fresh directory: ``maxlake demo`` (its own broker, plants,
worker, lake and curated set), then the commands a new user tries next, the printed pull command
run as printed, and the usual mistakes. Every failure is one ``maxlake:`` line, never a traceback.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from infra.broker import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class NewUser:
    """Runs ``maxlake`` as a subprocess in ``home`` with only the environment a user has."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = {
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
            "HOME": str(home),
            "GX_ANALYTICS_ENABLED": "false",
            "MAXLAKE_BROKER_PORT": str(port := free_port()),
            "MAXLAKE_CONTROLLER_PORT": str(free_port()),
            "MAXLAKE_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}",
            "MAXLAKE_BROKER_HEAP_MB": "384",
            "MAXLAKE_BROKER_START_TIMEOUT_S": "180",
        }

    def run(
        self, *argv: str, timeout_s: float = 300, **env: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "maxlake.cli", *argv],
            cwd=self.home,
            env=self.env | env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )

    def shell(self, line: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["/bin/bash", "-o", "pipefail", "-c", line],
            cwd=self.home,
            env=self.env | env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )


def _one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("maxlake: error:")]
    assert len(errors) == 1, done.stderr
    return errors[0]


def test_a_new_user_runs_the_demo_then_looks_pulls_and_errs(tmp_path: Path) -> None:
    user = NewUser(tmp_path)

    listed = user.run()
    assert listed.returncode == 2
    assert "demo" in listed.stderr
    assert "worker" in listed.stderr

    missing = user.run("status", "--no-kafka")  # as plain `status`: a warning, exit 0
    assert missing.returncode == 0, missing.stderr
    assert missing.stderr.startswith("maxlake: warning: no lake at"), missing.stderr
    assert "decoder JSON parser of this install: " in missing.stdout
    assert not (tmp_path / ".lake").exists()

    demo = user.run("demo", "--seconds", "20", "--rate", "1000", timeout_s=900)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert "Traceback" not in demo.stdout + demo.stderr
    # A healthy run warns about nothing; on a loaded machine the plants' producer may fall
    # back to its spool for a moment (store and forward: every event is still delivered).
    warnings = [
        line
        for line in demo.stderr.splitlines()
        if " WARNING " in line and "streams.producer: broker unavailable" not in line
    ]
    assert warnings == [], demo.stderr
    report = demo.stdout
    assert "maxlake demo report (ingest engine: batch)" in report
    for kind in ("telemetry", "machine_event", "inspection"):
        row = next(line for line in report.splitlines() if line.startswith(kind))
        produced, silver, quarantined, duplicates = (
            int(n.replace(",", "")) for n in row.split()[1:5]
        )
        assert produced == silver + quarantined + duplicates, row
    assert "stopping the broker" in report

    export = re.search(r"export MAXLAKE_TOKEN=(\S+)", report)
    pull = re.search(r"^\s+(\S.* datasets pull (\S+) --split train .*)$", report, re.M)
    assert export is not None, report
    assert pull is not None, report
    (tmp_path / "README.md").write_text("# the clone's own README\n")
    pulled = user.shell(pull.group(1), MAXLAKE_TOKEN=export.group(1))
    assert pulled.returncode == 0, pulled.stderr
    split = Path(tmp_path, pulled.stdout.strip())
    assert pl.read_parquet(split).height > 0
    assert re.search(r"rows of \S+@v\d+ split train; also wrote ", pulled.stderr), pulled.stderr
    assert (tmp_path / "README.md").read_text() == "# the clone's own README\n"

    status = user.run("status", "--no-kafka")
    assert status.returncode == 0, status.stderr
    assert "silver/telemetry" in status.stdout
    shown = user.run("quarantine", "show", "--limit", "2")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.count("  payload (") == 2, shown.stdout
    datasets = user.run("datasets", "list")
    assert datasets.returncode == 0, datasets.stderr

    name = pull.group(2)
    refused = user.run("datasets", "pull", name, "--token", "not-a-token")
    assert "token" in _one_error_line(refused).lower()
    unknown = user.run("datasets", "show", "no-such-set", "--json")
    _one_error_line(unknown)
    piped = user.shell(f"{shlex.quote(sys.executable)} -m maxlake.cli config | head -1")
    assert piped.returncode == 0, piped.stderr
    assert piped.stderr == ""
    assert os.listdir(tmp_path / ".maxlake")

    # `make demo` again on the same lake: it counts this run only, and simulates the factory
    # time before what the lake holds, so no machine gets two series over the same hours.
    telemetry_table = tmp_path / ".lake" / "silver" / "telemetry"
    first = pl.read_delta(str(telemetry_table), columns=["event_time"])
    again = user.run("demo", "--seconds", "10", "--rate", "1000", timeout_s=900)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "this run only: the lake held" in again.stdout
    assert "the lake already holds factory time from" in again.stdout
    assert re.search(r"produced = .*: ([\d,]+) = \1 \(balances\)", again.stdout), again.stdout
    both = pl.read_delta(str(telemetry_table), columns=["event_time"])
    assert both.height > first.height
    newer = both.filter(pl.col("event_time") >= first["event_time"].min())
    assert newer.height == first.height, "the second run's events overlap the first run's hours"

    # A new lake on a broker whose topics hold both runs: the worker ingests everything, the
    # report counts this run's messages only and says what else it ingested.
    other = user.run(
        "demo",
        "--seconds",
        "5",
        "--rate",
        "1000",
        MAXLAKE_LAKE_ROOT=str(tmp_path / "other"),
        timeout_s=900,
    )
    assert other.returncode == 0, other.stdout[-3000:] + other.stderr[-3000:]
    also = re.search(
        r"the worker also ingested ([\d,]+) messages that were in the topics", other.stdout
    )
    assert also is not None, other.stdout
    assert re.search(r"produced = .*: ([\d,]+) = \1 \(balances\)", other.stdout), other.stdout
    counted = re.search(r"^total\s+([\d,]+)", other.stdout, re.M)
    assert counted is not None, other.stdout
    assert int(also.group(1).replace(",", "")) > int(counted.group(1).replace(",", "")) > 0
