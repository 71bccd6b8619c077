"""A spec's and a job's problems, found together, make one error whose message lists each once."""

from __future__ import annotations

import pytest

from lake.curation import SpecError
from lake.curation.errors import CurationError
from lake.curation.jobs.errors import JobParamError
from maxlake.errors import ConfigError


def test_a_spec_error_of_several_problems_lists_each_once() -> None:
    problems = [
        ("purpose", "is empty"),
        ("filters.tenant", "must be a string"),
        ("purpose", "is empty"),
    ]
    error = SpecError.of("spec.toml", problems)
    assert str(error) == (
        "spec.toml: 2 problems:\n  purpose: is empty\n  filters.tenant: must be a string"
    )
    assert error.problems == (("purpose", "is empty"), ("filters.tenant", "must be a string"))
    assert (error.source, error.key, error.problem) == ("spec.toml", "purpose", "is empty")
    one = SpecError.of("spec.toml", problems[:1])
    assert (
        str(one)
        == str(SpecError("spec.toml", "purpose", "is empty"))
        == "spec.toml: purpose: is empty"
    )
    assert one.problems == (("purpose", "is empty"),)


def test_a_job_parameter_error_of_several_problems_lists_each_once() -> None:
    problems = [
        ("horizn_h", "is not a parameter"),
        ("window", "must be a duration"),
        ("horizn_h", "is not a parameter"),
    ]
    error = JobParamError.of("pm", problems)
    assert str(error) == (
        "job pm: 2 parameter problems:\n"
        "  parameter 'horizn_h' is not a parameter\n"
        "  parameter 'window' must be a duration"
    )
    assert error.problems == (("horizn_h", "is not a parameter"), ("window", "must be a duration"))
    assert (error.job, error.key, error.problem) == ("pm", "horizn_h", "is not a parameter")
    one = JobParamError.of("pm", problems[:1])
    assert str(one) == str(JobParamError("pm", "horizn_h", "is not a parameter"))
    assert str(one) == "job pm: parameter 'horizn_h' is not a parameter"


@pytest.mark.parametrize("error", [SpecError("s", "k", "p"), JobParamError("j", "k", "p")])
def test_both_are_configuration_errors_of_the_curation_package(error: Exception) -> None:
    assert isinstance(error, CurationError)
    assert isinstance(error, ConfigError)
