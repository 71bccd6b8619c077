"""Suite-wide settings: keep Great Expectations from phoning home on a closed network."""

import os

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

pytest_plugins = ["tests.s3_server"]
