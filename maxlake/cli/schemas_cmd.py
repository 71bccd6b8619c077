"""``maxlake schemas``: export the event schemas' JSON Schemas and check them against a baseline."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from schemas import check_against_baseline, export_json_schemas, published_dir


def register(sub: Any) -> None:
    """Add the ``schemas export`` and ``schemas check`` commands."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "schemas", help="event schemas: export JSON Schemas, check compatibility"
    )
    commands = parser.add_subparsers(dest="schemas_command", metavar="ACTION", required=True)
    export = commands.add_parser(
        "export", help="write <kind>.v<version>.schema.json for every event schema"
    )
    export.add_argument(
        "--out", type=Path, default=Path("."), help="directory to write to (default: .)"
    )
    export.set_defaults(handler=_export)
    check = commands.add_parser(
        "check", help="fail when the event schemas break compatibility with the published baseline"
    )
    check.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="directory of published schema documents (default: schemas/published)",
    )
    check.set_defaults(handler=_check)


def _export(args: argparse.Namespace) -> int:
    for path in export_json_schemas(args.out):
        print(path)
    return 0


def _check(args: argparse.Namespace) -> int:
    baseline: Path = args.baseline or published_dir()
    problems = check_against_baseline(baseline)
    if not problems:
        print(f"compatible with {baseline}")
        return 0
    print(f"{len(problems)} incompatible change(s) against {baseline}:")
    for problem in problems:
        print(f"  {problem}")
    return 1
