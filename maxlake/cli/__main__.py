"""``python -m maxlake.cli``."""

import sys

from maxlake.cli import main

sys.exit(main())
