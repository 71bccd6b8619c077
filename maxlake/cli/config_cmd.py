"""``maxlake config``: print the effective settings, secrets masked."""

from __future__ import annotations

import argparse
import json
from typing import Any

from maxlake.settings import Settings


def register(sub: Any) -> None:
    """Add the ``config`` command."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "config", help="print the effective settings (secrets masked)"
    )
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    print(json.dumps(Settings().as_dict(), indent=2, sort_keys=True))
    return 0
