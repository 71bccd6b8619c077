"""A read without a grant is denied without saying whether the set exists (a partner must not
learn which sets there are), but the message says that a misspelled name looks the same."""

from __future__ import annotations

from pathlib import Path

from lake.access.decide import check_read
from lake.access.principals import Principal
from lake.sharing import ContractStore


def test_a_denied_read_names_the_typo_case_without_revealing_existence(tmp_path: Path) -> None:
    reader = Principal("pm-team", "model_team", None, "k1", "s", "h", grants=("part-quality",))
    contracts = ContractStore(tmp_path / "contracts")
    typo = check_read(reader, "part-qualty", None, None, lake_root=tmp_path, contracts=contracts)
    other = check_read(reader, "anomaly", None, None, lake_root=tmp_path, contracts=contracts)
    assert (typo.outcome, typo.status) == ("denied", 403)
    assert "has no grant for 'part-qualty' (or no dataset has that name" in typo.detail
    assert other.detail.replace("anomaly", "part-qualty") == typo.detail
