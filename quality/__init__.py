"""Data quality: Great Expectations suites stored as versioned JSON files, and the validation
gateway the ingest worker calls once per micro-batch.

Great Expectations itself is imported lazily (it takes seconds) when the first
:class:`ValidationGateway` is built, through the process's one GX runtime
(:mod:`lake.gx_runtime`), which switches usage analytics off unless ``GX_ANALYTICS_ENABLED`` is
set explicitly.
"""

from quality.errors import RowsSchemaError, SuiteError, ValidationFailed
from quality.gateway import BatchCheck, ValidationGateway, Verdict
from quality.suites import (
    LEVELS,
    ExpectationSpec,
    Level,
    SuiteSpec,
    default_suites_dir,
    load_suite,
    load_suites,
)

__all__ = [
    "LEVELS",
    "BatchCheck",
    "ExpectationSpec",
    "Level",
    "RowsSchemaError",
    "SuiteError",
    "SuiteSpec",
    "ValidationFailed",
    "ValidationGateway",
    "Verdict",
    "default_suites_dir",
    "load_suite",
    "load_suites",
]
