"""Polars' allocator setting: given before Polars loads, also under the value a parent process's
Polars left in the environment; an operator's own arena count wins; the ``maxlake`` command
applies it first."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def _python(code: str, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"} | env
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=environ
    )
    return done.stdout.strip()


def test_polars_gets_one_arena_when_configured_before_it_loads() -> None:
    out = _python(
        "import os\n"
        "from maxlake.allocator import configure_polars_allocator\n"
        "print(configure_polars_allocator())\n"
        "import polars\n"
        "print(os.environ['_RJEM_MALLOC_CONF'])\n"
    )
    took, conf = out.splitlines()
    assert took == "True"
    assert conf.split(",")[-1] == "narenas:1"


def test_a_value_inherited_from_a_parent_polars_gets_the_arena_count_appended() -> None:
    out = _python(
        "import os\n"
        "from maxlake.allocator import configure_polars_allocator\n"
        "print(configure_polars_allocator(), os.environ['_RJEM_MALLOC_CONF'])\n",
        _RJEM_MALLOC_CONF="dirty_decay_ms:500,muzzy_decay_ms:1000",
    )
    assert out == "True dirty_decay_ms:500,muzzy_decay_ms:1000,narenas:1"


@pytest.mark.parametrize(
    ("code", "env"),
    [
        ("import polars\n", {}),
        ("", {"_RJEM_MALLOC_CONF": "narenas:4"}),
    ],
    ids=["polars-already-loaded", "operator-value"],
)
def test_a_loaded_polars_or_an_operator_value_is_left_alone(code: str, env: dict[str, str]) -> None:
    out = _python(
        code + "import os\n"
        "from maxlake.allocator import configure_polars_allocator\n"
        "took = configure_polars_allocator()\n"
        "print(took, 'narenas:1' in os.environ.get('_RJEM_MALLOC_CONF', ''))\n",
        **env,
    )
    assert out == "False False"


def test_the_maxlake_command_configures_it_before_the_command_runs() -> None:
    out = _python(
        "import os, sys\n"
        "import maxlake.cli as cli\n"
        "cli.main = lambda: print(os.environ.get('_RJEM_MALLOC_CONF')) or 0\n"
        "cli.run()\n"
    )
    assert out == "narenas:1"
