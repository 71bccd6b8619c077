"""Suite-wide settings: keep Great Expectations from phoning home on a closed network."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
# The brokers the tests start (fixtures, `maxlake broker start`, the demo, the soak) live for
# seconds to minutes and carry little traffic: C1-compiled code and the serial collector start
# them with about half the CPU (4.6 -> 2.5 s) and halve their idle CPU, which the other test
# processes of a 2-core run need. The JVM notes the option once in each broker's log.
os.environ.setdefault("JAVA_TOOL_OPTIONS", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")

pytest_plugins = ["tests.s3_server"]

LONGEST_FILES = (
    "test_s3_scale.py",
    "test_s3_slow.py",
    "test_ingest_failures.py",
    "test_ingest_crash.py",
    "test_kafka_realities.py",
    "test_lake_unwritable.py",
    "test_s3_lake.py",
    "test_new_user.py",
    "test_delta_sharing.py",
    "test_kafka_tls.py",
    "test_soak.py",
    "test_producer.py",
    "test_serve.py",
    "test_secure_worker.py",
    "test_live_registry.py",
    "test_ingest_poison.py",
    "test_onboarding.py",
    "test_cmapss_end_to_end.py",
    "test_exactly_once.py",
)
"""Files by time taken, longest first (2026-12-01: a clean-clone CI run and a full run with
``--durations=0`` after the bytecode and test_exactly_once changes); a stale entry only costs
time."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the longest test files first, then other slow ones, then the rest.

    ``make test`` runs one file per xdist worker at a time (``--dist loadfile``) in collection
    order (``--no-loadscope-reorder``): a long file started last would set the wall time.
    """

    def rank(item: pytest.Item) -> int:
        name = item.path.name
        if name in LONGEST_FILES:
            return LONGEST_FILES.index(name)
        return len(LONGEST_FILES) + (0 if item.get_closest_marker("slow") else 1)

    items.sort(key=rank)


REALDATA_ENV = "MAXLAKE_REALDATA_DIR"
"""Where the public reference data lives; default ``../shared/realdata`` beside the repo."""


def realdata_dir() -> Path:
    """The real-data folder: ``$MAXLAKE_REALDATA_DIR`` or ``<repo>/../shared/realdata``.

    A missing folder fails the test that needs it with one line naming the path and the
    variable (never a skip: the data is part of the test environment).
    """
    env = os.environ.get(REALDATA_ENV)
    repo = Path(__file__).resolve().parent.parent
    folder = Path(env) if env else repo.parent / "shared" / "realdata"
    if not folder.is_dir():
        pytest.fail(
            f"real data folder {folder} is missing: put the NASA C-MAPSS files there "
            f"(see /work/shared/realdata/README.md) or set {REALDATA_ENV}",
            pytrace=False,
        )
    return folder
