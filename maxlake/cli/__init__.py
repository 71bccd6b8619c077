"""The ``maxlake`` command line: a thin layer that builds :class:`Settings` once and hands
values to the component packages. Each command group lives in its own module exposing
``register(subparsers)``; components never import this package.

Only the module of the command being run is imported (:data:`COMMANDS` maps each top-level
command to its module), so ``maxlake --help`` and ``maxlake config`` do not pay for Kafka,
Delta, Polars or Great Expectations imports.
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from maxlake import redact
from maxlake.allocator import configure_polars_allocator
from maxlake.cli.failures import describe_failure
from maxlake.errors import MaxlakeError
from maxlake.version import __version__

COMMANDS: dict[str, tuple[str, str]] = {
    "config": (
        "maxlake.cli.config_cmd",
        "print the effective settings (secrets masked) and the JSON parser this install runs "
        "(json_parser)",
    ),
    "broker": (
        "maxlake.cli.broker_cmd",
        "run a local single-node Kafka broker (KRaft, no Docker)",
    ),
    "schemas": (
        "maxlake.cli.schemas_cmd",
        "event schemas: export JSON Schemas, check compatibility",
    ),
    "registry": (
        "maxlake.cli.registry_cmd",
        "the asset registry: show, history, diff, apply, add-* (versioned in the lake)",
    ),
    "tenants": ("maxlake.cli.tenants_cmd", "member companies: onboard a new one, list them"),
    "topics": ("maxlake.cli.streams_cmd", "create or list topics"),
    "produce": (
        "maxlake.cli.streams_cmd",
        "send a file of JSON lines (one event per line) to Kafka",
    ),
    "simulate": (
        "maxlake.cli.streams_cmd",
        "generate realistic factory events (seeded) and send them",
    ),
    "quality": (
        "maxlake.cli.quality_cmd",
        "data quality: list and check the Great Expectations suites",
    ),
    "status": ("maxlake.cli.ops_cmd", "lag, workers, tables and quality at a glance"),
    "quarantine": ("maxlake.cli.ops_cmd", "inspect and replay quarantined messages"),
    "backfill": ("maxlake.cli.ops_cmd", "ingest a historical JSON-lines file (idempotent)"),
    "worker": (
        "maxlake.cli.ingest_cmd",
        "run a Faust ingest worker (Kafka -> GX -> Delta) until SIGTERM",
    ),
    "groups": (
        "maxlake.cli.groups_cmd",
        "consumer groups: list them, delete a stale one",
    ),
    "lake": ("maxlake.cli.lake_cmd", "inspect and check the lake"),
    "datasets": (
        "maxlake.cli.datasets_cmd",
        "curated, versioned training sets (build, list, show, pull, scan)",
    ),
    "import": (
        "maxlake.cli.import_cmd",
        "import public reference data through Kafka (NASA C-MAPSS)",
    ),
    "contracts": (
        "maxlake.cli.sharing_cmd",
        "sharing contracts per tenant (add, list, show, revoke)",
    ),
    "access": ("maxlake.cli.sharing_cmd", "principals, tokens and dataset grants"),
    "audit": ("maxlake.cli.sharing_cmd", "dataset accesses, allowed and denied (ops/audit)"),
    "serve": (
        "maxlake.cli.sharing_cmd",
        "run the dataset HTTP service (OpenAPI at /openapi.json)",
    ),
    "demo": (
        "maxlake.cli.demo_cmd",
        "end to end: broker, simulated plants, worker, Delta lake, report",
    ),
}
"""Top-level command -> (module whose ``register`` adds it, one-line help)."""

_NOISY = ("kafka", "aiokafka", "great_expectations")
_KAFKA_CLIENTS = ("kafka", "aiokafka")


def _quiet_libraries(record: logging.LogRecord) -> bool:
    """Drop third-party INFO chatter (libraries may reset their own logger levels), and the
    Kafka clients' connection and retry warnings and errors: a command that fails because of
    them says so in its own one ``maxlake: error:`` line (``-v`` shows them all)."""
    if record.name.startswith(_KAFKA_CLIENTS):
        return record.levelno >= logging.CRITICAL
    return record.levelno >= logging.WARNING or not record.name.startswith(_NOISY)


class _OnlyCommand:
    """Stands in for argparse's subparsers action: keeps the parser of one command only."""

    def __init__(self, sub: Any, command: str) -> None:
        self._sub = sub
        self._command = command

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        if name == self._command:
            parser: argparse.ArgumentParser = self._sub.add_parser(name, **kwargs)
            return parser
        return argparse.ArgumentParser(prog=name, add_help=False)


def _invoked(argv: Sequence[str]) -> str | None:
    """The top-level command named in ``argv`` (top-level options take no values)."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser for ``argv``: full for the command it names, one help line for the others.

    With ``argv=None`` every command module is imported and the parser is complete.
    """
    parser = argparse.ArgumentParser(
        prog="maxlake",
        description="Event-driven manufacturing data lake. Settings come from MAXLAKE_* "
        "environment variables (see `maxlake config`).",
    )
    parser.add_argument("--version", action="version", version=f"maxlake {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = None if argv is None else _invoked(argv)
    for command, (module, help_line) in COMMANDS.items():
        if argv is None or command == wanted:
            importlib.import_module(module).register(_OnlyCommand(sub, command))
        else:
            sub.add_parser(command, help=help_line)
    return parser


def run() -> NoReturn:
    """The ``maxlake`` console script and ``python -m maxlake.cli``: :func:`main`, the atexit
    handlers, then exit without tearing the interpreter down.

    Arrow's native thread pools (its S3 filesystem, dataset scans) can abort a process whose
    work is done while the interpreter finalizes: "terminate called without an active
    exception", exit code -6, after the command printed its whole answer (apache/arrow#34314;
    seen here from ``status --json`` and ``quarantine replay --json``). Every command has
    flushed and closed what it wrote when :func:`main` returns, and the atexit handlers still
    run (Kafka clients, Arrow's S3 finalizer); only the interpreter's teardown is skipped.

    Polars' allocator is configured first, before any command imports Polars
    (:mod:`maxlake.allocator`).
    """
    configure_polars_allocator()
    code = main()
    try:
        atexit._run_exitfuncs()
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        code = code or 141
    finally:
        os._exit(code)


def _delta_rs_malloc_conf(decay_ms: int) -> str:
    """jemalloc options of the Rust libraries (deltalake, polars) in a worker: freed pages go
    back to the system after ``decay_ms`` (``worker_jemalloc_decay_ms``) instead of after ~10 s
    of allocator activity (~40 MiB a worker kept between its Delta writes). Muzzy pages
    (``MADV_FREE``) are not kept: they stay resident until the kernel is short of memory."""
    return f"dirty_decay_ms:{decay_ms},muzzy_decay_ms:0"


def _worker_allocators() -> None:
    """Choose the allocators of a worker process before the libraries that read them load.

    Arrow reads ``ARROW_DEFAULT_MEMORY_POOL`` once, when pyarrow is imported; pyarrow's
    ``set_memory_pool`` (what the batch engine calls) changes the pool of pyarrow's own calls
    only, and Arrow's C++ code under them (Parquet, datasets, the C data interface deltalake
    reads through) kept allocating from mimalloc, which held ~50 MiB the worker had freed. The
    jemalloc linked into deltalake reads ``_RJEM_MALLOC_CONF`` when it starts. An
    ``ARROW_DEFAULT_MEMORY_POOL`` already set, or jemalloc decay times already named, win;
    settings that do not validate are reported by the command itself.
    Figures: docs/BENCHMARKS.md, issue 20, sixth pass.
    """
    if "pyarrow" in sys.modules or "deltalake" in sys.modules:
        return
    from pydantic import ValidationError  # noqa: PLC0415 - only for the worker command

    from maxlake.settings import Settings  # noqa: PLC0415 - only for the worker command

    try:
        settings = Settings()
    except (ValidationError, MaxlakeError):
        return
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", settings.arrow_memory_pool)
    # Appended to what configure_polars_allocator put there, unless decays are named already
    # (by the operator, or by a parent process that imported Polars: Polars writes its own).
    jemalloc = os.environ.get("_RJEM_MALLOC_CONF", "")
    if "decay_ms:" not in jemalloc:
        conf = _delta_rs_malloc_conf(settings.worker_jemalloc_decay_ms)
        os.environ["_RJEM_MALLOC_CONF"] = ",".join(filter(None, (jemalloc, conf)))


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the process exit code (0 ok, 1 failure, 2 usage)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if _invoked(arguments) == "worker":
        _worker_allocators()
    parser = build_parser(arguments)
    args = parser.parse_args(arguments)
    if args.command is None or not hasattr(args, "handler"):
        parser.print_help(sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    redact.install()
    quieted = [] if args.verbose else list(logging.getLogger().handlers)
    for handler in quieted:
        handler.addFilter(_quiet_libraries)
    try:
        return _run(args)
    finally:
        for handler in quieted:
            handler.removeFilter(_quiet_libraries)


def _run(args: argparse.Namespace) -> int:
    """The command's handler with its failures turned into one ``maxlake: error:`` line."""
    try:
        code: int = args.handler(args)
        sys.stdout.flush()
    except MaxlakeError as exc:
        prefix = f"{exc.code}: " if exc.code else ""
        print(f"maxlake: error: {prefix}{exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("maxlake: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader (e.g. `| head`) left: stop quietly, as other Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:
        if args.verbose:
            raise
        print(f"maxlake: error: {describe_failure(exc)}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
