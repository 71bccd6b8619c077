"""The worker's state paths come from Settings and are created with their parents."""

from __future__ import annotations

from pathlib import Path

from maxlake.settings import Settings
from streams.worker import build_app


def test_worker_creates_its_faust_datadir_with_parents(tmp_path: Path) -> None:
    datadir = tmp_path / "no" / "such" / "faust"
    settings = Settings(faust_datadir=datadir, lake_root=str(tmp_path / "lake"))
    app = build_app(settings, tenants=["northwind-auto"])
    assert datadir.is_dir()
    assert Path(app.conf.datadir) == datadir
