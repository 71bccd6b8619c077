"""A real `maxlake serve` process over a real lake, for the service's integration tests.

Contracts are added with `maxlake contracts add`, principals with `maxlake access principal
add` and `maxlake access grant`: the CLI's own code, run in this process with the lake's
environment (:func:`cli_here`; a subprocess costs 1-3 s of start-up each, a dozen per module);
:func:`cli_run` runs a command as a subprocess, as an operator would, for what a test checks.
:func:`running_serve` starts the server on a free port and stops it by its pid.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra.broker import free_port
from lake import DeltaStore
from lake.curation import build_dataset
from lake.sharing import SharingGate, sharing_gate
from maxlake.cli import main
from maxlake.processes import stop_process
from maxlake.settings import Settings
from tests.unit.lake.curation.test_build_helpers import (
    JOBS,
    T0,
    TENANT,
    registry,
    seeded_lake,
    spec,
    write_inspection,
)

ALL_IDS = '["tenant", "plant", "line", "machine", "part_serial", "lot"]'


def contract_toml(cid: str, purpose: str) -> str:
    """A contract of the test tenant that pseudonymises every identifier."""
    return (
        f'id = "{cid}"\ntenant = "{TENANT}"\npurposes = ["{purpose}"]\n'
        '[share]\nkinds = ["telemetry", "inspection"]\n'
        f"[deidentify]\npseudonymise = {ALL_IDS}\nsuppress_rare = true\n"
        # five rows of means of 8 noisy readings: the noise averages down to ~0.35 %, so rows
        # of two contracts' sets pair up by nearest neighbour and one row of five is 20 % of
        # the set, over the default 1 % limit (docs/SECURITY.md, disclosure report)
        "max_linkable_share = 1.0\n"
    )


def lake_env(root: Path, lake: Path) -> dict[str, str]:
    """The environment of CLI and server processes over ``lake`` (no MAXLAKE_TOKEN)."""
    env = {
        **os.environ,
        "MAXLAKE_LAKE_ROOT": str(lake),
        "MAXLAKE_SHARING_MIN_GROUP_SIZE": "1",
        "MAXLAKE_AUTH_BACKOFF_WINDOW_S": "86400",
        "MAXLAKE_SHARING_SECRETS_FILE": str(root / "secrets" / "keys.json"),
    }
    env.pop("MAXLAKE_TOKEN", None)
    return env


def cli_run(env: dict[str, str], *args: str) -> str:
    """Run `maxlake ARGS` as a subprocess; its stdout (raises on a non-zero exit)."""
    result = subprocess.run(
        [sys.executable, "-m", "maxlake.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


@contextmanager
def lake_environment(env: dict[str, str]) -> Iterator[None]:
    """This process's ``MAXLAKE_*`` variables are exactly those of ``env`` inside the block."""
    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in os.environ if k.startswith("MAXLAKE_") and k not in env]:
            mp.delenv(key)
        for key in (k for k in env if k.startswith("MAXLAKE_")):
            mp.setenv(key, env[key])
        yield


def cli_here(env: dict[str, str], *args: str) -> str:
    """Run `maxlake ARGS` in this process with ``env``'s settings; its stdout (raises on a
    non-zero exit, with what it printed)."""
    out, err = io.StringIO(), io.StringIO()
    with lake_environment(env), redirect_stdout(out), redirect_stderr(err):
        code = main(list(args))
    if code != 0:
        raise AssertionError(f"maxlake {' '.join(args)} exited {code}: {err.getvalue()}")
    return out.getvalue()


def add_contracts(env: dict[str, str], root: Path, pairs: Iterable[tuple[str, str]]) -> SharingGate:
    """Add one contract per ``(id, purpose)``; the sharing gate over them."""
    for cid, purpose in pairs:
        path = root / f"{cid}.toml"
        path.write_text(contract_toml(cid, purpose))
        cli_here(env, "contracts", "add", str(path))
    with lake_environment(env):
        return sharing_gate(Settings())


def reference_lake(root: Path) -> tuple[DeltaStore, dict[str, str], SharingGate]:
    """A seeded lake with ``spindle``, ``other`` and ``doomed`` built under one contract each.

    Returns:
        The store, the environment of processes over it and the sharing gate.
    """
    store = seeded_lake(root / "lake")
    write_inspection(store, "SN-RAW-4711", ["cnc-101", "cnc-102"], T0)
    env = lake_env(root, root / "lake")
    gate = add_contracts(
        env, root, (("nw-pm", "pm-study"), ("nw-other", "other-study"), ("nw-rev", "rev"))
    )
    for name, purpose in (("spindle", "pm-study"), ("other", "other-study"), ("doomed", "rev")):
        build_dataset(
            store, spec(name, purpose=purpose), registry=registry(), jobs=JOBS, sharing=gate
        )
    return store, env, gate


def add_principal(env: dict[str, str], name: str, *grants: str) -> str:
    """Create a model-team principal with ``grants``; its token."""
    out = cli_here(env, "access", "principal", "add", name, "--kind", "model_team")
    for dataset in grants:
        cli_here(env, "access", "grant", name, dataset)
    return out.strip().splitlines()[-1]


@dataclass
class Service:
    """A running `maxlake serve` and what the tests need to talk to it."""

    port: int
    env: dict[str, str]
    tokens: dict[str, str]
    lake: Path

    def get(
        self,
        path: str,
        token: str | None = None,
        *,
        method: str = "GET",
        source: str = "127.0.0.1",
    ) -> tuple[int, dict[str, str], bytes]:
        """``method`` ``path`` exactly as given (no client-side normalisation), sent from the
        loopback address ``source``."""
        conn = http.client.HTTPConnection(
            "127.0.0.1", self.port, timeout=60, source_address=(source, 0)
        )
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            conn.request(method, path, headers=headers)
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def cli(self, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
        """Run the CLI in-process with the service's settings."""
        with pytest.MonkeyPatch.context() as mp:
            for key, value in self.env.items():
                mp.setenv(key, value)
            capsys.readouterr()
            code = main(list(args))
            return code, capsys.readouterr().out

    def audit(self, principal: str | None = None) -> list[dict[str, object]]:
        """The audit rows (via `maxlake audit --json`, run as a subprocess)."""
        cmd = [sys.executable, "-m", "maxlake.cli", "audit", "--json"]
        if principal:
            cmd += ["--principal", principal]
        out = subprocess.run(cmd, env=self.env, capture_output=True, text=True, check=True)
        return [json.loads(line) for line in out.stdout.splitlines()]


@contextmanager
def running_serve(
    env: dict[str, str], root: Path, tokens: dict[str, str], lake: Path
) -> Iterator[Service]:
    """`maxlake serve` on a free port until the block ends (log in ``root/serve.log``)."""
    port = free_port()
    log = (root / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "maxlake.cli", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    svc = Service(port, env, tokens, lake)
    try:
        try:
            _wait_until_up(svc, proc)
        except RuntimeError as exc:
            log.flush()
            tail = (root / "serve.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{exc}; its log ends:\n{tail}") from None
        yield svc
    finally:
        stop_process(proc, timeout_s=20)
        log.close()


def _wait_until_up(svc: Service, proc: subprocess.Popen[bytes], *, within_s: float = 300) -> None:
    """Wait for the server to answer (generous: the machine may be loaded; not a timing test)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"maxlake serve exited with {proc.returncode}")
        try:
            if svc.get("/openapi.json")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"maxlake serve did not answer within {within_s:.0f} s")
