"""``maxlake lake`` commands given a table name the lake does not hold."""

from __future__ import annotations

from pathlib import Path

import pytest

from maxlake.cli.lake_cmd import _tables
from maxlake.errors import ConfigError
from tests.unit.lake.curation.test_build_helpers import seeded_lake


def test_a_misspelled_table_suggests_the_closest(tmp_path: Path) -> None:
    store = seeded_lake(tmp_path)
    with pytest.raises(ConfigError, match=r"silver/telemtry \(did you mean silver/telemetry\?\)"):
        _tables(store, ["silver/telemtry"])
