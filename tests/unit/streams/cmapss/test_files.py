"""Reading the C-MAPSS files: the real FD001 files, and malformed ones named by file and line."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from streams.cmapss import CmapssFileError, find_files, read_rul, read_runs, subset_of
from tests.conftest import realdata_dir


def test_fd001_has_the_documented_shape() -> None:
    train_file, test_file, rul_file = find_files(realdata_dir() / "cmapss", "fd001")
    train, test = read_runs(train_file), read_runs(test_file)
    truth = read_rul(rul_file, len(test.engines))

    assert len(train.units) == 20_631
    assert len(test.units) == 13_096
    assert train.engines == list(range(1, 101))
    assert test.engines == list(range(1, 101))
    assert train.values.shape == (20_631, 24)
    assert train.values[0, 3] == pytest.approx(518.67)  # sensor 1, T2, degR
    assert truth[:3] == [112, 98, 69]
    assert min(train.last_cycles().values()) == 128
    assert subset_of(train_file) == "fd001"


def _write(path: Path, text: str) -> Path:
    if path.suffix == ".gz":
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


ROW = " ".join(["1", "{c}"] + ["0.5"] * 24) + "  \n"


def test_plain_and_gzip_files_read_alike(tmp_path: Path) -> None:
    text = ROW.format(c=1) + ROW.format(c=2)
    plain = read_runs(_write(tmp_path / "train_FD004.txt", text))
    packed = read_runs(_write(tmp_path / "train_FD004.txt.gz", text))
    assert plain.cycles.tolist() == packed.cycles.tolist() == [1, 2]
    assert subset_of(tmp_path / "train_FD004.txt.gz") == "fd004"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (ROW.format(c=1) + "1 2 0.5\n", ":2: 3 numbers, expected 26"),
        (ROW.format(c=1) + ROW.format(c=3), ":2: engine 1: cycle 3 where 2 was expected"),
        (ROW.format(c="x"), ":1: not a number"),
        ("", ": no rows"),
    ],
)
def test_a_malformed_run_file_names_file_and_line(tmp_path: Path, text: str, problem: str) -> None:
    path = _write(tmp_path / "train_FD001.txt", text)
    with pytest.raises(CmapssFileError, match=problem):
        read_runs(path)


def test_rul_count_must_match_the_test_engines(tmp_path: Path) -> None:
    path = _write(tmp_path / "RUL_FD001.txt", "12\n30\n")
    with pytest.raises(CmapssFileError, match="2 RUL values for 3 test engines"):
        read_rul(path, 3)


def test_missing_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(CmapssFileError, match="no such folder"):
        find_files(tmp_path / "nothing")
    with pytest.raises(CmapssFileError, match=r"neither train_FD002\.txt\.gz nor train_FD002\.txt"):
        find_files(tmp_path, "fd002")
