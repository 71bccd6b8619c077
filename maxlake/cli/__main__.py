"""``python -m maxlake.cli``."""

from maxlake.cli import run

run()
