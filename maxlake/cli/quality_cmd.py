"""``maxlake quality suites``: list the validation suites, their versions and expectations."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from lake import LakeLocation
from maxlake.cli.lake_guard import require_lake
from maxlake.settings import Settings
from quality import ValidationGateway, default_suites_dir, load_suites
from schemas import EventKind, load_registry


def register(sub: Any) -> None:
    """Add the ``quality suites`` command."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "quality", help="data quality: list and check the Great Expectations suites"
    )
    commands = parser.add_subparsers(dest="quality_command", metavar="ACTION", required=True)
    docs = commands.add_parser("docs", help="build Great Expectations Data Docs of recent data")
    docs.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for the Data Docs site (default: MAXLAKE_DATA_DOCS_DIR, "
        ".maxlake/data_docs; `maxlake serve` serves that one)",
    )
    docs.add_argument("--rows", type=int, default=5000, help="recent rows per kind and table")
    docs.add_argument(
        "--kind",
        action="append",
        dest="kinds",
        choices=[k.value for k in EventKind],
        help="only this event kind (repeatable; default: all)",
    )
    docs.set_defaults(handler=_docs)
    suites = commands.add_parser(
        "suites", help="list every suite with its version and expectations (name, level, GX type)"
    )
    suites.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="suites directory (default: the packaged quality/suites)",
    )
    suites.add_argument(
        "--check",
        action="store_true",
        help="also build the suites with Great Expectations against the asset registry "
        "(catches unknown expectation types and bad arguments; takes a few seconds)",
    )
    suites.add_argument("--json", action="store_true", help="print JSON instead of a table")
    suites.set_defaults(handler=_suites)


def _suites(args: argparse.Namespace) -> int:
    folder: Path = args.dir or default_suites_dir()
    specs = load_suites(folder)
    if args.check:
        ValidationGateway(load_registry(), suites_dir=folder)
    if args.json:
        doc = {
            kind.value: {
                "suite_name": spec.suite_name,
                "suite_version": spec.suite_version,
                "path": str(spec.path),
                "expectations": [
                    {"name": e.name, "level": e.level, "expectation": e.expectation}
                    for e in spec.expectations
                ],
            }
            for kind, spec in specs.items()
        }
        print(json.dumps(doc, indent=2))
        return 0
    for spec in specs.values():
        print(f"{spec.suite_name} {spec.suite_version}  ({spec.path})")
        for e in spec.expectations:
            print(f"  {e.level:<5}  {e.name:<36} {e.expectation}")
    if args.check:
        print(f"all {len(specs)} suites build against the asset registry")
    return 0


def _docs(args: argparse.Namespace) -> int:
    from quality.docs import build_data_docs  # noqa: PLC0415 - lazy: `maxlake --help` stays fast

    kinds = tuple(EventKind(k) for k in args.kinds) if args.kinds else tuple(EventKind)
    settings = Settings()
    require_lake(settings)
    out: Path = args.out or settings.data_docs_dir
    print(
        f"building Data Docs in {out} from up to {args.rows:,} recent rows per table of "
        f"{', '.join(k.value for k in kinds)} (Great Expectations: about 20 s)",
        file=sys.stderr,
        flush=True,
    )
    print(build_data_docs(LakeLocation.from_settings(settings), out, kinds=kinds, rows=args.rows))
    return 0
