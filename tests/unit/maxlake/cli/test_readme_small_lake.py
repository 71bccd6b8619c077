"""README's small-lake walkthrough and command reference match what a user runs and sees: every
option of ``maxlake simulate`` a user meets is in its reference row, and the all-null-columns
warning a one-company build prints is announced (with the words the build prints)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from lake.curation.warnings import _null_features
from maxlake.cli import build_parser

README = Path(__file__).resolve().parents[4] / "README.md"

_ADVANCED = {"-h", "--help", "--tick", "--registry", "--spool-dir", "--no-create-topics"}
"""Options left to ``maxlake simulate --help`` (tuning and wiring, not used in README)."""


def _options(command: str) -> set[str]:
    parser = build_parser([command])
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {o for a in sub.choices[command]._actions for o in a.option_strings}


def test_the_simulate_reference_row_names_every_option_readme_uses() -> None:
    text = README.read_text()
    row = next(line for line in text.splitlines() if line.startswith("| `maxlake simulate "))
    missing = sorted(o for o in _options("simulate") - _ADVANCED if o not in row)
    assert missing == []
    used = set(re.findall(r"maxlake simulate [^\n]*", text))
    for line in used:
        for option in re.findall(r"--[a-z][a-z-]*", line):
            assert option in row, (option, line)


def test_the_small_lake_section_announces_the_one_company_null_columns_warning() -> None:
    text = README.read_text().split("### A small lake in two minutes", 1)[1].split("\n## ", 1)[0]
    section = " ".join(text.split())
    printed = _null_features(["cell_current__mean", "cell_current__std"])
    assert printed.startswith("2 feature columns are null in every row of every split: ")
    assert "null in every row of every split: cell_current (2 columns), ..." in section
    assert "that is expected here" in section
    assert "as when the lake holds one company" in printed
