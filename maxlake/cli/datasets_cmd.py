"""``maxlake datasets``: build, list, show and pull curated training sets.

Datasets live in the curated area (``MAXLAKE_CURATED_DIR``, default ``<MAXLAKE_LAKE_ROOT>/curated``,
a folder or an object store). ``build`` prints its progress to stderr and a one-line JSON
summary to stdout, so scripts can read the version and content hash.

``build`` loads the spec and checks its job's parameters before it imports the build machinery
(:mod:`maxlake.cli.datasets_run`: the lake, Delta, sharing, output checks), so a typo in a spec
is reported in about a second, every problem of the spec at once
(:func:`lake.curation.precheck.check_spec`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from lake.curation.precheck import check_spec
from lake.curation.spec import reference_specs
from lake.sharing.withholding import STRUCTURE


def register(sub: Any) -> None:
    """Add ``datasets build|list|show|pull|scan``."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "datasets", help="curated, versioned training sets (build, list, show, pull, scan)"
    )
    cmds = parser.add_subparsers(dest="datasets_command", metavar="SUBCOMMAND", required=True)

    build = cmds.add_parser("build", help="build a new dataset version from a spec file")
    build.add_argument(
        "spec",
        help="dataset spec (TOML file) or a reference dataset name: "
        + ", ".join(sorted(reference_specs())),
    )
    build.add_argument(
        "--registry",
        type=Path,
        help="asset registry TOML (default: MAXLAKE_REGISTRY_FILE, else the live registry under "
        "the lake root)",
    )
    build.add_argument(
        "--allow-failed-quality",
        action="store_true",
        help="publish even when the output checks fail (recorded in the manifest)",
    )
    build.add_argument(
        "--require-same-columns",
        action="store_true",
        help="publish nothing when the feature, label or key columns differ from the set's "
        "previous version (a registry change adds columns to a spec that does not pin them); "
        "by default the build publishes and reports the change",
    )
    build.add_argument(
        "--publish-identical",
        action="store_true",
        help="publish a new version even when the build is identical to the newest one (same "
        "content hash, spec and quality verdict); by default nothing is published then, the "
        "command says which version holds that content and exits 0",
    )
    build.add_argument(
        "--reset-withheld",
        action="append",
        default=[],
        choices=STRUCTURE,
        metavar="COLUMN",
        help="let this build publish a structure column (tenant, plant, line) that the set's "
        "latest version withheld, if every contract releases it (repeatable; recorded in the "
        "manifest); by default a withheld column stays withheld in every later version",
    )
    build.set_defaults(handler=_build)

    listing = cmds.add_parser("list", help="list datasets and their versions")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(handler=_list)

    show_cmd = cmds.add_parser("show", help="summarise NAME[@VERSION] (--json: the manifest)")
    show_cmd.add_argument("ref", metavar="NAME[@VERSION]", help="e.g. spindle or spindle@3")
    show_cmd.add_argument("--json", action="store_true", help="print the whole manifest")
    show_cmd.set_defaults(handler=_show)

    pull_cmd = cmds.add_parser("pull", help="copy one split (and its manifest) to a folder")
    pull_cmd.add_argument("ref", metavar="NAME[@VERSION]", help="default version: newest active")
    pull_cmd.add_argument(
        "--split",
        help="split name (default: train; the command says which split it pulled and the others)",
    )
    pull_cmd.add_argument(
        "--format",
        choices=("parquet", "arrow"),
        default="parquet",
        help="file format of the pulled splits (default: parquet)",
    )
    pull_cmd.add_argument("--out", type=Path, default=Path(), help="target folder (default: .)")
    pull_cmd.add_argument(
        "--token", help="principal token (default: MAXLAKE_TOKEN); checked and audited"
    )
    pull_cmd.add_argument(
        "--allow-failed-quality",
        action="store_true",
        help="also pull a version whose output checks failed (refused by default)",
    )
    pull_cmd.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a split file of the same name holding other content (refused by default; "
        "an identical one is left as it is)",
    )
    pull_cmd.set_defaults(handler=_pull)

    scan_cmd = cmds.add_parser(
        "scan",
        help="check a published version for raw identifiers its contracts hide (an audit)",
    )
    scan_cmd.add_argument(
        "ref", metavar="NAME[@VERSION]", help="default version: newest (any status)"
    )
    scan_cmd.add_argument("--json", action="store_true", help="machine-readable output")
    scan_cmd.set_defaults(handler=_scan)


def _build(args: argparse.Namespace) -> int:
    spec = check_spec(args.spec)
    from maxlake.cli import datasets_run  # noqa: PLC0415 - lazy: the spec is checked first

    return datasets_run.build(args, spec)


def _list(args: argparse.Namespace) -> int:
    from maxlake.cli import datasets_run  # noqa: PLC0415 - lazy: see the module docstring

    return datasets_run.list_(args)


def _show(args: argparse.Namespace) -> int:
    from maxlake.cli import datasets_run  # noqa: PLC0415 - lazy: see the module docstring

    return datasets_run.show_(args)


def _pull(args: argparse.Namespace) -> int:
    from maxlake.cli import datasets_run  # noqa: PLC0415 - lazy: see the module docstring

    return datasets_run.pull_(args)


def _scan(args: argparse.Namespace) -> int:
    from maxlake.cli import datasets_run  # noqa: PLC0415 - lazy: see the module docstring

    return datasets_run.scan_(args)
