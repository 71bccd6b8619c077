"""Curated, versioned, reproducible training sets built from the silver tables.

A spec file (:func:`load_spec`) names a feature job and its filters; :func:`build_dataset`
pins the sources, runs the job and publishes ``curated/<name>/v<N>`` with a manifest; model
teams read published versions with :func:`load`, :func:`iter_batches` and :func:`pull`.
"""

from typing import TYPE_CHECKING

from maxlake.lazy import lazy_exports

if TYPE_CHECKING:
    from lake.curation.area import CURATED_DIR, CuratedArea
    from lake.curation.build import Progress, build_dataset, curated_root
    from lake.curation.catalog import (
        DatasetSummary,
        iter_batches,
        list_datasets,
        load,
        parse_ref,
        pull,
        show,
    )
    from lake.curation.errors import (
        DatasetNotFound,
        FailedQualityRefused,
        InvalidDatasetRef,
        KeyProblemsError,
        QualityCheckFailed,
        SchemaChanged,
        SpecError,
        VersionRevoked,
    )
    from lake.curation.job import FeatureInfo, Job, JobInputs, JobOutput, LabelInfo
    from lake.curation.manifest import Manifest, SourceInfo, SplitInfo
    from lake.curation.output_checks import QualityReport, check_output
    from lake.curation.revoke import (
        mark_revoked,
        revoke_contract,
        revoked_contracts_of,
        versions_under,
    )
    from lake.curation.spec import DatasetSpec, Filters, load_spec, parse_spec, spec_hash
    from lake.curation.summary import one_line, summary_lines

__all__ = [
    "CURATED_DIR",
    "CuratedArea",
    "DatasetNotFound",
    "DatasetSpec",
    "DatasetSummary",
    "FailedQualityRefused",
    "FeatureInfo",
    "Filters",
    "InvalidDatasetRef",
    "Job",
    "JobInputs",
    "JobOutput",
    "KeyProblemsError",
    "LabelInfo",
    "Manifest",
    "Progress",
    "QualityCheckFailed",
    "QualityReport",
    "SchemaChanged",
    "SourceInfo",
    "SpecError",
    "SplitInfo",
    "VersionRevoked",
    "build_dataset",
    "check_output",
    "curated_root",
    "iter_batches",
    "list_datasets",
    "load",
    "load_spec",
    "mark_revoked",
    "one_line",
    "parse_ref",
    "parse_spec",
    "pull",
    "revoke_contract",
    "revoked_contracts_of",
    "show",
    "spec_hash",
    "summary_lines",
    "versions_under",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "lake.curation.area": ("CURATED_DIR", "CuratedArea"),
        "lake.curation.build": ("Progress", "build_dataset", "curated_root"),
        "lake.curation.catalog": (
            "DatasetSummary",
            "iter_batches",
            "list_datasets",
            "load",
            "parse_ref",
            "pull",
            "show",
        ),
        "lake.curation.errors": (
            "DatasetNotFound",
            "FailedQualityRefused",
            "InvalidDatasetRef",
            "KeyProblemsError",
            "QualityCheckFailed",
            "SchemaChanged",
            "SpecError",
            "VersionRevoked",
        ),
        "lake.curation.job": ("FeatureInfo", "Job", "JobInputs", "JobOutput", "LabelInfo"),
        "lake.curation.manifest": ("Manifest", "SourceInfo", "SplitInfo"),
        "lake.curation.output_checks": ("QualityReport", "check_output"),
        "lake.curation.revoke": (
            "mark_revoked",
            "revoke_contract",
            "revoked_contracts_of",
            "versions_under",
        ),
        "lake.curation.spec": ("DatasetSpec", "Filters", "load_spec", "parse_spec", "spec_hash"),
        "lake.curation.summary": ("one_line", "summary_lines"),
    },
)
