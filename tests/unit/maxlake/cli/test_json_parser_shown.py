"""``maxlake config`` and ``maxlake status`` name the JSON parser a worker of this install runs,
from the same source as the worker's log line and its gauge (:mod:`maxlake.native_parser`)."""

from __future__ import annotations

import json
from pathlib import Path
from unittest import mock

import pytest

from maxlake import native_parser
from maxlake.cli import main
from maxlake.cli.ops_cmd import render_status
from maxlake.settings import Settings
from streams.metrics import WorkerMetrics
from streams.status import collect_status

_FALLBACK = "maxlake_native is not importable (No module named 'maxlake_native'); ..."


@pytest.mark.parametrize("parser", ["native", "arrow"])
def test_config_names_the_parser(parser: str, capsys: pytest.CaptureFixture[str]) -> None:
    why = None if parser == "native" else _FALLBACK
    with (
        mock.patch.object(native_parser, "PARSER", parser),
        mock.patch.object(native_parser, "UNAVAILABLE", why),
    ):
        assert main(["config"]) == 0

    shown = json.loads(capsys.readouterr().out)["json_parser"]
    assert shown["parser"] == parser
    if parser == "native":
        assert shown["detail"].startswith("native (maxlake_native ")
    else:
        assert shown["detail"] == f"arrow (fallback: {_FALLBACK})"


def test_status_names_the_parser_the_worker_logs_and_exports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAXLAKE_LAKE_ROOT", str(tmp_path / "lake"))
    status = collect_status(Settings(), kafka=False)

    assert status["json_parser"] == native_parser.report()
    gauge = WorkerMetrics(process_collectors=False).registry.get_sample_value(
        "maxlake_decoder_json_parser", {"parser": status["json_parser"]["parser"]}
    )
    assert gauge == 1
    rendered = render_status(status).splitlines()
    assert f"decoder JSON parser of this install: {native_parser.describe()}" in rendered
