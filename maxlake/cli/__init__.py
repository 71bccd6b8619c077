"""The ``maxlake`` command line: a thin layer that builds :class:`Settings` once and hands
values to the component packages. Each command group lives in its own module exposing
``register(subparsers)``; components never import this package.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from maxlake import __version__, redact
from maxlake.errors import MaxlakeError

COMMAND_MODULES = (
    "maxlake.cli.config_cmd",
    "maxlake.cli.broker_cmd",
    "maxlake.cli.schemas_cmd",
    "maxlake.cli.streams_cmd",
    "maxlake.cli.quality_cmd",
    "maxlake.cli.ops_cmd",
    "maxlake.cli.ingest_cmd",
    "maxlake.cli.lake_cmd",
    "maxlake.cli.datasets_cmd",
    "maxlake.cli.sharing_cmd",
    "maxlake.cli.demo_cmd",
)


_NOISY = ("kafka", "aiokafka", "great_expectations")


def _quiet_libraries(record: logging.LogRecord) -> bool:
    """Drop third-party INFO chatter (libraries may reset their own logger levels)."""
    return record.levelno >= logging.WARNING or not record.name.startswith(_NOISY)


def build_parser() -> argparse.ArgumentParser:
    """The full parser; every module in :data:`COMMAND_MODULES` adds its subcommands."""
    parser = argparse.ArgumentParser(
        prog="maxlake",
        description="Event-driven manufacturing data lake. Settings come from MAXLAKE_* "
        "environment variables (see `maxlake config`).",
    )
    parser.add_argument("--version", action="version", version=f"maxlake {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the process exit code (0 ok, 1 failure, 2 usage)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    redact.install()
    if not args.verbose:
        for handler in logging.getLogger().handlers:
            handler.addFilter(_quiet_libraries)
    try:
        code: int = args.handler(args)
    except MaxlakeError as exc:
        print(f"maxlake: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("maxlake: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
