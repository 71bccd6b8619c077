"""Commands in their common failure modes: one ``maxlake:`` line, a non-zero exit, no traceback."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from infra.broker import free_port
from lake.access import AccessStore, access_dir
from maxlake.cli import main
from maxlake.settings import Settings
from streams.topics import TopicAdminError, list_topics


def _maxlake(tmp_path: Path, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "GX_ANALYTICS_ENABLED": "false"}
    return subprocess.run(
        [sys.executable, "-m", "maxlake.cli", *argv],
        cwd=tmp_path,
        env=base | env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_produce_with_the_broker_down_says_nothing_reached_kafka(tmp_path: Path) -> None:
    source = tmp_path / "events.jsonl"
    source.write_text('{"a": 1}\n{"a": 2}\n')
    done = _maxlake(
        tmp_path,
        "produce",
        str(source),
        "--topic",
        "maxlake.acme.telemetry",
        MAXLAKE_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}",
    )
    assert done.returncode == 3
    assert "2 events did not reach Kafka yet" in done.stderr
    assert "Traceback" not in done.stderr


def test_topics_with_the_broker_down_name_the_next_step() -> None:
    settings = Settings(bootstrap_servers=f"127.0.0.1:{free_port()}")
    hint = r"cannot reach the Kafka broker at .*; start it with"
    with pytest.raises(TopicAdminError, match=hint):
        list_topics(settings, timeout_s=1)


@pytest.mark.parametrize(
    "argv", [["topics", "list"], ["topics", "create", "--tenant", "northwind-auto"]]
)
def test_kafka_commands_with_the_broker_down_say_how_long_they_waited(
    tmp_path: Path, argv: list[str]
) -> None:
    servers = f"127.0.0.1:{free_port()}"
    done = _maxlake(tmp_path, *argv, MAXLAKE_BOOTSTRAP_SERVERS=servers)
    assert done.returncode != 0
    assert done.stderr.startswith(
        f"maxlake: error: the Kafka broker at {servers} (MAXLAKE_BOOTSTRAP_SERVERS) did not "
        "answer within 10 s; start it with"
    ), done.stderr
    assert "TLS or SASL also needs MAXLAKE_KAFKA_SECURITY_PROTOCOL" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.mark.parametrize("hours", ["0", "5"])
def test_vacuum_with_a_short_retention_warns(tmp_path: Path, hours: str) -> None:
    done = _maxlake(tmp_path, "lake", "vacuum", "--retention-hours", hours)
    assert f"--retention-hours {hours} h is below 24 h" in done.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["lake", "verify", "--no-kafka"],
        ["lake", "status"],
        ["quarantine", "list"],
        ["quarantine", "show"],
        ["datasets", "list"],
    ],
)
def test_read_only_commands_name_a_missing_lake_and_do_not_create_it(
    tmp_path: Path, argv: list[str]
) -> None:
    root = tmp_path / "typo-lake"
    done = _maxlake(tmp_path, *argv, MAXLAKE_LAKE_ROOT=str(root))
    assert done.returncode == 1
    assert done.stderr.startswith(f"maxlake: error: no lake at {root}")
    assert "Traceback" not in done.stderr
    assert not root.exists()


def test_status_without_kafka_before_any_lake_warns_and_names_the_parser(tmp_path: Path) -> None:
    root = tmp_path / "new-lake"
    done = _maxlake(tmp_path, "status", "--no-kafka", MAXLAKE_LAKE_ROOT=str(root))
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith(f"maxlake: warning: no lake at {root}: nothing is stored there")
    assert "decoder JSON parser of this install: " in done.stdout
    assert "Traceback" not in done.stderr
    assert not root.exists()


def test_a_lake_root_that_is_a_file_is_named_as_such(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "lake.toml"
    root.write_text("not a lake")
    monkeypatch.setenv("MAXLAKE_LAKE_ROOT", str(root))
    assert main(["quarantine", "list"]) == 1
    assert f"MAXLAKE_LAKE_ROOT {root} is a file, not a folder" in capsys.readouterr().err
    assert root.read_text() == "not a lake"


@pytest.mark.parametrize(
    "argv",
    [
        ["datasets", "show", "pm"],
        ["datasets", "pull", "pm", "--token", "mxl_x"],
        ["quarantine", "replay", "--kind", "telemetry", "--dry-run"],
        ["quality", "docs", "--out", "docs-out"],
        ["audit"],
        ["contracts", "list"],
        ["contracts", "list", "--json"],
        ["access", "principal", "list"],
    ],
)
def test_more_commands_name_a_missing_lake_and_do_not_create_it(
    tmp_path: Path,
    argv: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = tmp_path / "typo-lake"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MAXLAKE_LAKE_ROOT", str(root))
    assert main(argv) == 1
    assert capsys.readouterr().err.startswith(f"maxlake: error: no lake at {root}")
    assert not root.exists()
    assert not (tmp_path / "docs-out").exists()


def test_list_commands_on_a_lake_without_contracts_or_principals_say_none_yet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "lake"
    (root / "silver").mkdir(parents=True)
    monkeypatch.setenv("MAXLAKE_LAKE_ROOT", str(root))
    assert main(["contracts", "list"]) == 0
    assert capsys.readouterr().out.startswith("no contracts yet")
    assert main(["access", "principal", "list"]) == 0
    assert capsys.readouterr().out.startswith("no principals yet")


def test_a_bad_contracts_dir_is_one_line_naming_the_variable(tmp_path: Path) -> None:
    done = _maxlake(tmp_path, "contracts", "list", MAXLAKE_CONTRACTS_DIR="s3:/alliance/contracts")
    assert done.returncode == 1
    assert done.stderr == (
        "maxlake: error: MAXLAKE_CONTRACTS_DIR 's3:/alliance/contracts' is not a URI "
        "(write s3://bucket/prefix); fix or unset the variable\n"
    )
    assert not (tmp_path / "s3:").exists()


def test_a_worker_with_an_unloadable_sink_stops_before_waiting_for_the_broker(
    tmp_path: Path,
) -> None:
    done = _maxlake(
        tmp_path,
        "worker",
        "--sink",
        "no_such_sinks:make",
        MAXLAKE_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}",
    )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "maxlake: error: sink 'no_such_sinks:make' (MAXLAKE_SINK or --sink): cannot import "
        "'no_such_sinks': No module named 'no_such_sinks'"
    )
    assert not (tmp_path / ".lake").exists()


def test_a_worker_names_its_json_parser_before_waiting_for_the_broker(tmp_path: Path) -> None:
    done = _maxlake(
        tmp_path,
        "worker",
        MAXLAKE_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}",
        MAXLAKE_BROKER_WAIT_S="1",
    )
    assert done.returncode == 1
    parser = done.stderr.find("decoder JSON parser: ")
    waited = done.stderr.find("broker")
    assert parser >= 0, done.stderr
    assert waited >= 0, done.stderr
    assert parser < waited, done.stderr


def test_an_output_path_through_a_file_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a-file").write_text("")
    monkeypatch.chdir(tmp_path)
    assert main(["schemas", "export", "--out", "a-file/schemas"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("maxlake: error: not a directory: "), err
    assert "check the path" in err


def test_a_profile_that_cannot_be_written_issues_and_revokes_no_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MAXLAKE_LAKE_ROOT", str(tmp_path / "lake"))
    store = AccessStore(access_dir(Settings()))
    store.add("team", "model_team")
    assert main(["access", "profile", "team", "--expires", "1d", "--out", "team.share"]) == 0
    first = json.loads((tmp_path / "team.share").read_text())["bearerToken"]
    (tmp_path / "a-file").write_text("")
    rotate = ["access", "profile", "team", "--expires", "1d", "--replace"]
    assert main([*rotate, "--out", "a-file/team.share"]) == 1
    assert "no token was issued" in capsys.readouterr().err
    assert store.authenticate(first) is not None
    assert len(store.tokens.of("team")) == 1
    assert main(["access", "profile", "nobody", "--expires", "1d", "--out", "nobody.share"]) == 1
    assert not (tmp_path / "nobody.share").exists()
    assert main([*rotate, "--out", "team.share"]) == 0
    assert store.authenticate(first) is None


def test_serve_on_a_port_in_use_names_the_port_and_the_way_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MAXLAKE_LAKE_ROOT", str(tmp_path / "lake"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--host", "127.0.0.1", "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"maxlake: error: 127.0.0.1:{port} is already in use (another `maxlake serve`?): stop "
        "that server or choose another port with --port or MAXLAKE_SERVER_PORT\n"
    )
