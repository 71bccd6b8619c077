"""``maxlake config``: print the effective settings, secrets masked, and which JSON parser the
ingest decoder of this install runs (``json_parser``: not a setting, what
:mod:`maxlake.native_parser` found)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from maxlake import native_parser
from maxlake.settings import Settings


def register(sub: Any) -> None:
    """Add the ``config`` command."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "config",
        help="print the effective settings (secrets masked) and the JSON parser this install "
        "runs (json_parser)",
    )
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    shown = {**Settings().as_dict(), "json_parser": native_parser.report()}
    print(json.dumps(shown, indent=2, sort_keys=True))
    return 0
