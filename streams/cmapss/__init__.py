"""NASA C-MAPSS turbofan run-to-failure data, imported through the real ingest path.

:func:`import_cmapss` reads a sub-dataset's files (:mod:`streams.cmapss.files`), registers
the reference tenant's engines (:mod:`streams.cmapss.registration`), keeps the test engines'
true RUL as ground truth beside the lake and sends one telemetry event per engine cycle through
the plant producer. See docs/DATASETS.md, "Real data: NASA C-MAPSS".
"""

from streams.cmapss.assets import MACHINE_TYPE, TAGS, TENANT, TEST_LINE, TRAIN_LINE, machine_id
from streams.cmapss.files import (
    CmapssFileError,
    Runs,
    find_files,
    read_rul,
    read_runs,
    subset_of,
)
from streams.cmapss.importer import ImportReport, build_events, import_cmapss, silver_event_count
from streams.cmapss.registration import reference_dir, reference_registry, register

__all__ = [
    "MACHINE_TYPE",
    "TAGS",
    "TENANT",
    "TEST_LINE",
    "TRAIN_LINE",
    "CmapssFileError",
    "ImportReport",
    "Runs",
    "build_events",
    "find_files",
    "import_cmapss",
    "machine_id",
    "read_rul",
    "read_runs",
    "reference_dir",
    "reference_registry",
    "register",
    "silver_event_count",
    "subset_of",
]
