"""The reference feature jobs: pure functions from pinned silver frames to split tables.

``JOBS`` maps the job name a dataset spec names to the function (other jobs come from entry
points or ``module:function`` references, :mod:`lake.curation.plugins`); each module's
docstring specifies the job (rows, features, label, split, parameters and defaults).
"""

from __future__ import annotations

from lake.curation.job import Job, ParamsCheck
from lake.curation.jobs.anomaly_windows import AnomalyWindowsParams, anomaly_windows
from lake.curation.jobs.errors import JobInputError, JobParamError
from lake.curation.jobs.part_quality import PartQualityParams, part_quality
from lake.curation.jobs.predictive_maintenance import (
    PredictiveMaintenanceParams,
    predictive_maintenance,
)
from lake.curation.jobs.remaining_useful_life import RulParams, remaining_useful_life

__all__ = [
    "JOBS",
    "PARAMS",
    "JobInputError",
    "JobParamError",
    "anomaly_windows",
    "part_quality",
    "predictive_maintenance",
    "remaining_useful_life",
]

JOBS: dict[str, Job] = {
    "predictive_maintenance": predictive_maintenance,
    "part_quality": part_quality,
    "anomaly_windows": anomaly_windows,
    "remaining_useful_life": remaining_useful_life,
}

PARAMS: dict[str, ParamsCheck] = {
    "predictive_maintenance": PredictiveMaintenanceParams.parse,
    "part_quality": PartQualityParams.parse,
    "anomaly_windows": AnomalyWindowsParams.parse,
    "remaining_useful_life": RulParams.parse,
}
"""Job name -> its parameter check, run by the build before any data is read."""
