"""The command line's entry point: lazy command imports, help, and one-line failures."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
from typing import Any

import pytest
from kafka.errors import KafkaTimeoutError

from maxlake.cli import COMMANDS, build_parser, main
from maxlake.cli.failures import describe_failure

HEAVY = ("polars", "deltalake", "pandas", "great_expectations", "kafka", "aiokafka", "faust")


class _Recorder:
    """Collects the top-level commands a module's ``register`` adds."""

    def __init__(self) -> None:
        self.helps: dict[str, str] = {}

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        self.helps[name] = kwargs.get("help", "")
        return argparse.ArgumentParser(prog=name)


def test_the_command_table_names_every_command_with_its_own_help() -> None:
    registered: dict[str, tuple[str, str]] = {}
    for module in sorted({module for module, _ in COMMANDS.values()}):
        recorder = _Recorder()
        importlib.import_module(module).register(recorder)
        registered |= {name: (module, text) for name, text in recorder.helps.items()}
    assert registered == COMMANDS


def _undocumented(parser: argparse.ArgumentParser, path: str) -> list[str]:
    found: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _undocumented(sub, f"{path} {name}")
        elif action.help is None:
            found.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    return found


def test_every_argument_of_every_command_has_help_text() -> None:
    assert _undocumented(build_parser(None), "maxlake") == []


def _modules_after(argv: list[str]) -> set[str]:
    code = (
        "import sys\n"
        "from maxlake.cli import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        "print('MODULES', *sorted({m.split('.')[0] for m in sys.modules}), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    line = next(line for line in done.stderr.splitlines() if line.startswith("MODULES "))
    return set(line.split()[1:])


@pytest.mark.parametrize("argv", [["--help"], ["config"], ["demo", "--help"]])
def test_help_and_config_import_no_heavy_library(argv: list[str]) -> None:
    loaded = _modules_after(argv)
    assert "maxlake" in loaded
    assert not loaded & set(HEAVY)


def test_help_imports_no_settings_library() -> None:
    """``maxlake --help`` needs no settings: neither pydantic nor pydantic-settings is loaded."""
    assert not _modules_after(["--help"]) & {"pydantic", "pydantic_core", "pydantic_settings"}


def test_no_arguments_print_the_command_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "usage: maxlake" in err
    assert all(command in err for command in COMMANDS)


def test_a_closed_pipe_ends_quietly() -> None:
    done = subprocess.run(
        f"{sys.executable} -m maxlake.cli config | head -c 1",
        shell=True,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.stdout == "{"
    assert done.stderr == ""


def test_an_unexpected_failure_is_one_line_naming_the_next_step() -> None:
    text = describe_failure(PermissionError(13, "Permission denied", "/data/out"))
    assert text.startswith("permission denied: /data/out;")
    assert "\n" not in describe_failure(RuntimeError("boom\n"[:-1]))
    assert "-v" in describe_failure(RuntimeError("boom"))


def test_a_kafka_timeout_names_the_broker_setting() -> None:
    text = describe_failure(KafkaTimeoutError("Unable to bootstrap from 127.0.0.1:1"))
    assert "MAXLAKE_BOOTSTRAP_SERVERS" in text
    assert text.count("KafkaTimeoutError") == 1


def test_the_entry_point_runs_atexit_handlers_and_keeps_the_exit_code() -> None:
    """``run`` ends the process with ``os._exit`` (no interpreter teardown, where Arrow's thread
    pools can abort a finished command); atexit handlers still run and the code is main's."""
    script = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('atexit ran', file=sys.stderr))\n"
        "from maxlake.cli import run\n"
        "sys.argv = ['maxlake', *sys.argv[1:]]\n"
        "run()\n"
    )
    ok = subprocess.run(
        [sys.executable, "-c", script, "config"], capture_output=True, text=True, check=False
    )
    assert ok.returncode == 0, ok.stderr
    assert "atexit ran" in ok.stderr
    assert "lake_root" in ok.stdout
    bad = subprocess.run(
        [sys.executable, "-c", script, "no-such-command"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2, bad.stderr
    assert "atexit ran" in bad.stderr


def test_a_spec_typo_fails_before_the_lake_delta_pandas_or_gx_are_loaded(tmp_path: Any) -> None:
    spec = tmp_path / "typo.toml"
    spec.write_text(
        'name = "pm-typo"\npurpose = "research"\n\n'
        '[job]\nname = "predictive_maintenance"\nhorizn_h = 1\n'
    )
    probe = (
        "import sys\n"
        "from maxlake.cli import main\n"
        f"code = main(['datasets', 'build', {str(spec)!r}])\n"
        "loaded = [m for m in ('deltalake', 'pandas', 'great_expectations', 'lake.delta')"
        " if m in sys.modules]\n"
        "print('exit', code, 'loaded', loaded)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        env={"MAXLAKE_LAKE_ROOT": str(tmp_path / "lake"), "PATH": "/usr/bin:/bin"},
    )
    assert "job.horizn_h: is not a parameter of this job" in done.stderr
    assert done.stdout.strip() == "exit 1 loaded []"
