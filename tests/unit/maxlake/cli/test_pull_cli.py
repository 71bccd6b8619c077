"""``maxlake datasets pull`` as a user meets it: a refusal says how to get a token or a grant
(never another dataset's name), and a split file already in the folder is never silently
replaced."""

from __future__ import annotations

from pathlib import Path

import pytest

from maxlake.cli import main
from tests.unit.lake.curation.test_build_helpers import seeded_lake

_CONTRACT = (
    'id = "nw-research"\ntenant = "northwind-auto"\npurposes = ["research"]\n'
    '[share]\nkinds = ["telemetry", "machine_event", "inspection"]\n'
    '[deidentify]\npseudonymise = ["machine"]\n'
)
_SPEC = (
    'name = "pm"\npurpose = "research"\n[job]\n'
    'name = "tests.unit.lake.curation.test_build_helpers:tag_means"\n'
)


def _principal(name: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["access", "principal", "add", name, "--kind", "model_team"]) == 0
    return capsys.readouterr().out.strip().splitlines()[-1]


def test_refusals_say_how_to_get_a_token_and_a_grant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seeded_lake(tmp_path)
    monkeypatch.setenv("MAXLAKE_LAKE_ROOT", str(tmp_path))
    monkeypatch.delenv("MAXLAKE_TOKEN", raising=False)
    out = tmp_path / "out"

    assert main(["datasets", "pull", "pm", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        "maxlake: error: unauthenticated: a valid token is required (give --token or set "
        "MAXLAKE_TOKEN); the lake operator issues a token with "
        "`maxlake access principal add NAME --kind model_team` (it prints the token once) and "
        "grants the dataset with `maxlake access grant NAME pm`"
    )
    assert main(["datasets", "pull", "pm", "--out", str(out), "--token", "nope"]) == 1
    err = capsys.readouterr().err
    assert "the token given (--token or MAXLAKE_TOKEN) is not one of this lake's" in err
    assert "`maxlake access principal add NAME --kind model_team`" in err

    token = _principal("me", capsys)
    assert main(["datasets", "pull", "pm", "--out", str(out), "--token", token]) == 1
    err = capsys.readouterr().err
    assert err.startswith("maxlake: error: denied: principal 'me' has no grant for 'pm'")
    assert "the lake operator grants it with `maxlake access grant me pm`" in err
    assert "did you mean" not in err
    assert not out.exists()


def _built_and_granted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A seeded lake with set ``pm`` built under a contract, and ``pm-team``'s token granted
    it in ``MAXLAKE_TOKEN``."""
    seeded_lake(tmp_path)
    monkeypatch.setenv("MAXLAKE_LAKE_ROOT", str(tmp_path))
    monkeypatch.setenv("MAXLAKE_SHARING_MIN_GROUP_SIZE", "1")
    contract = tmp_path / "nw.toml"
    contract.write_text(_CONTRACT)
    assert main(["contracts", "add", str(contract)]) == 0
    monkeypatch.setenv("MAXLAKE_TOKEN", _principal("pm-team", capsys))
    assert main(["access", "grant", "pm-team", "pm"]) == 0
    spec = tmp_path / "pm.toml"
    spec.write_text(_SPEC)
    assert main(["datasets", "build", str(spec)]) == 0


def test_a_split_file_already_there_is_kept_when_identical_and_refused_when_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _built_and_granted(tmp_path, monkeypatch, capsys)
    capsys.readouterr()
    out = tmp_path / "out"
    pull = ["datasets", "pull", "pm", "--out", str(out)]
    split = out / "pm-v1-train.parquet"

    assert main(pull) == 0
    assert capsys.readouterr().err.startswith("pulled ")
    pulled = split.read_bytes()
    assert main(pull) == 0
    said = capsys.readouterr()
    assert said.out.strip() == str(split)
    assert said.err.startswith(f"already there: {split} holds the ")
    assert " rows of pm@v1 split train, unchanged" in said.err
    assert split.read_bytes() == pulled

    split.write_text("junk\n")
    assert main(pull) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        f"maxlake: error: invalid: {split} exists with other content than pm@v1 split train"
    )
    assert "nothing pulled: --overwrite replaces it" in err
    assert split.read_text() == "junk\n"
    assert not list(out.glob(".*.tmp"))

    assert main([*pull, "--overwrite"]) == 0
    assert "(replaced the other content of pm-v1-train.parquet: --overwrite)" in (
        capsys.readouterr().err
    )
    assert split.read_bytes() == pulled


def test_an_edited_data_card_or_manifest_is_kept_unless_overwrite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _built_and_granted(tmp_path, monkeypatch, capsys)
    out = tmp_path / "out"
    pull = ["datasets", "pull", "pm", "--out", str(out)]
    card, manifest = out / "README.md", out / "pm-v1.manifest.json"
    assert main(pull) == 0
    assert main([*pull, "--split", "test"]) == 0
    assert '"pm-v1-test.parquet"' in card.read_text()
    capsys.readouterr()

    notes = card.read_text() + "\nmy notes\n"
    card.write_text(notes)
    assert main(pull) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        f"maxlake: error: invalid: {card} exists with other content than the pull of pm@v1 "
        "wrote (edited, or written by an older maxlake); nothing pulled: --overwrite"
    )
    assert card.read_text() == notes

    manifest.write_text("junk\n")
    assert main(pull) == 1
    assert f"{manifest} and {card} exist with other content" in capsys.readouterr().err
    assert manifest.read_text() == "junk\n"

    assert main([*pull, "--overwrite"]) == 0
    err = capsys.readouterr().err
    assert "(replaced the other content of pm-v1.manifest.json, README.md: --overwrite)" in err
    assert "my notes" not in card.read_text()
    assert manifest.read_text() != "junk\n"
    assert main(pull) == 0
    assert capsys.readouterr().err.startswith("already there: ")
