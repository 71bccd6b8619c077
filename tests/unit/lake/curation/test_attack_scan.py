"""The gate's identifier checks (SECURITY C3), attacked (/work/attack-report.md, S1-S10): ids
in another letter case, dash or spacing, made of hex digits, inside compressed or escaped side
files, binary, nested or Enum columns, of rows or machines the contract does not share, of a
company that withdrew, or of a machine renamed since the build are found; figures and words
that merely contain a short id are not. Each test failed on the code before its fix."""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import lzma
import zipfile
from datetime import datetime, timedelta, tzinfo
from pathlib import Path

import polars as pl
import pytest

from lake.curation import (
    CuratedArea,
    JobInputs,
    JobOutput,
    Manifest,
    build_dataset,
    parse_spec,
)
from lake.curation import build as build_module
from lake.curation.scan import scan_machines, scan_version
from lake.curation.spec import DatasetSpec
from lake.registry_store import RegistryStore
from lake.sharing import IdentifierLeak, SharedInputs, UncheckableFile
from lake.sharing.leaks import (
    file_texts,
    frame_leaks,
    leaked_values,
    parquet_statistics,
    text_mentions,
)
from tests.unit.lake.curation.test_build_helpers import (
    JOB_NAME,
    JOBS,
    T0,
    TENANT,
    registry,
    seeded_lake,
    tag_means,
    write_inspection,
)
from tests.unit.lake.sharing.helpers import Sharing, contract_toml
from tests.unit.lake.sharing.test_attacks import RIVAL, _registry, _rival_telemetry


def _build(
    tmp_path: Path,
    *,
    description: str = "spindle temperature means",
    job: object = tag_means,
    serial: str = "SN-0001",
    lot: str = "lot-1",
) -> Manifest:
    store = seeded_lake(tmp_path / "lake")
    write_inspection(store, serial, ["cnc-101"], T0 + timedelta(minutes=3), lot=lot)
    sharing = Sharing(tmp_path, min_group_size=1)
    sharing.add(contract_toml("nw-a"))
    jobs = {**JOBS, JOB_NAME: job}
    spec = parse_spec(
        {
            "name": "spindle",
            "description": description,
            "purpose": "predictive-maintenance-research",
            "job": JOB_NAME,
            "filters": {"tenants": [TENANT]},
        },
        jobs=jobs,
    )
    area = CuratedArea(str(tmp_path / "curated"), cache_dir=tmp_path / "cache")
    return build_dataset(
        store,
        spec,
        registry=registry(),
        jobs=jobs,  # type: ignore[arg-type]
        sharing=sharing.gate,
        out_root=area,
    )


@pytest.mark.parametrize(
    "description",
    ["spindle means of CNC-101 only", "spindle means of the Stuttgart plant", "BLOCK-L1 spindles"],
)
def test_an_identifier_in_another_case_in_the_description_stops_the_build(
    tmp_path: Path, description: str
) -> None:
    """[defect] The byte scan is case-sensitive; ids are case-sensitive ASCII
    (``ID_PATTERN`` allows both cases) but a reader is not: ``CNC-101`` names cnc-101."""
    with pytest.raises(IdentifierLeak):
        _build(tmp_path, description=description)


def test_a_hex_part_serial_of_16_digits_in_the_description_stops_the_build(
    tmp_path: Path,
) -> None:
    """[defect] An id made of 16 or more hex digits is itself a 'run of 16 hex digits', so
    ``leaked_values`` never counts it anywhere in bytes (manifest, card, side files,
    statistics): serials such as EPC/RFID or UUID-without-dashes are never found
    (``leaked_values(b"scrapped part 5e1f0a9b3c7d2e48", ["5e1f0a9b3c7d2e48"]) == []``)."""
    serial = "5e1f0a9b3c7d2e48"
    with pytest.raises(IdentifierLeak):
        _build(tmp_path, serial=serial, description=f"without the scrapped part {serial}")


def test_an_id_without_its_separator_is_named_only_when_long_enough() -> None:
    assert text_mentions(b"cnc101 and CNC 101", ["cnc-101"]) == ["cnc-101"]
    assert text_mentions(b"stand f 1, xcnc101, cnc-1010", ["f-1", "cnc-101"]) == []


def test_a_short_id_inside_a_word_or_a_figure_is_not_named() -> None:
    assert text_mentions(b'"description": "labels chosen for f1-score"', ["f1"]) == []
    assert text_mentions(b'"build_seconds": 12.3, "created_at": "2026-12-01"', ["12", "01"]) == []
    assert text_mentions(b"stands F1 and (f2).", ["f1", "f2"]) == ["f1", "f2"]


def test_the_scan_names_a_16_digit_hex_serial_but_not_a_short_id_inside_a_hash() -> None:
    assert leaked_values(b"scrapped part 5e1f0a9b3c7d2e48", ["5e1f0a9b3c7d2e48"]) == [
        "5e1f0a9b3c7d2e48"
    ]
    assert leaked_values(b'"sha256": "01f6808d0ad40f4eff102c42496b0082"', ["f2", "f4"]) == []


# --- side files in a form the byte search did not read (attack S3) ----------------------


def _with_side_file(name: str, data: bytes) -> object:
    def job(inputs: JobInputs) -> JobOutput:
        out = tag_means(inputs)
        return JobOutput(
            splits=out.splits,
            features=out.features,
            label_columns=out.label_columns,
            key_columns=out.key_columns,
            files={**out.files, name: data},
        )

    return job


def _zipped(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


def _parquet(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd")
    return buffer.getvalue()


LOOKUP = json.dumps({"machines": ["cnc-101", "cnc-102"]}).encode()


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("lookup.json.gz", gzip.compress(LOOKUP)),
        ("lookup.json.xz", lzma.compress(LOOKUP)),
        ("lookup.zip", _zipped("lookup.json", LOOKUP)),
        ("lookup.zip", _zipped("cnc-101.json", b"{}")),
        ("lookup.json.gz.gz", gzip.compress(gzip.compress(LOOKUP))),
        ("lookup.parquet", _parquet(pl.DataFrame({"m": ["a"] * 50 + ["cnc-101"] + ["z"] * 50}))),
    ],
    ids=["gzip", "xz", "zip", "zip-member-name", "gzip-twice", "parquet"],
)
def test_a_compressed_side_file_with_a_raw_machine_id_stops_the_build(
    tmp_path: Path, name: str, data: bytes
) -> None:
    """Side files were searched as raw bytes: a compressed file of ids a job looked up
    elsewhere was published."""
    with pytest.raises(IdentifierLeak):
        _build(tmp_path, job=_with_side_file(name, data))


@pytest.mark.parametrize(
    "data",
    [
        b'{"machine": "\\u0063nc-101"}',
        b"machine,cnc%2D101\n",
        b"<p>&#99;nc-101</p>",
        "cnc-101".encode("utf-16"),
    ],
    ids=["json-escape", "url-escape", "html-entity", "utf-16"],
)
def test_a_raw_id_written_escaped_in_a_side_file_stops_the_build(
    tmp_path: Path, data: bytes
) -> None:
    """Every reader of these decodes ``cnc-101``; the byte search saw none."""
    with pytest.raises(IdentifierLeak):
        _build(tmp_path, job=_with_side_file("lookup.txt", data))


def test_a_side_file_the_check_cannot_read_is_refused(tmp_path: Path) -> None:
    """A form the check does not know (here the id XOR-ed, as any private encoding would):
    it cannot be shown clean, so it is not published."""
    data = bytes(b ^ 0x5A for b in b"\x00\x01cnc-101\xff")
    with pytest.raises(UncheckableFile, match="cannot be checked"):
        _build(tmp_path, job=_with_side_file("lookup.bin", data))


def test_clean_side_files_in_every_form_the_check_reads_are_published(tmp_path: Path) -> None:
    """No false refusal: the same forms without an id."""
    clean = json.dumps({"scale": [31.12, 2.5], "note": "caf\u00e9"}).encode()
    files = {
        "a.json.gz": gzip.compress(clean),
        "b.zip": _zipped("b.json", clean),
        "c.json": clean,
        "d.parquet": _parquet(pl.DataFrame({"m": ["a", "b"], "x": [1.5, 12.0]})),
    }

    def job(inputs: JobInputs) -> JobOutput:
        out = tag_means(inputs)
        return dataclasses.replace(out, files={**out.files, **files})

    assert _build(tmp_path, job=job).rows > 0


# --- columns whose type the value scan skipped (attack S5, S10) --------------------------


def _with_column(column: pl.Series) -> object:
    def job(inputs: JobInputs) -> JobOutput:
        out = tag_means(inputs)
        splits = {
            k: v.with_columns(
                pl.Series(column.name, [column[i % len(column)] for i in range(v.height)])
            )
            for k, v in out.splits.items()
        }
        return dataclasses.replace(out, splits=splits)

    return job


@pytest.mark.parametrize(
    "column",
    [
        pl.Series("note", [b"a", b"cnc-101", b"z"], pl.Binary),
        pl.Series("note", [{"m": "a"}, {"m": "cnc-101"}, {"m": "z"}]),
        pl.Series("note", [[{"m": "a"}], [{"m": "b"}, {"m": "cnc-101"}], []]),
        pl.Series("note", [{"s": {"t": ["a", "cnc-101"]}}] * 3),
    ],
    ids=["binary", "struct", "list-of-struct", "nested"],
)
def test_a_raw_id_in_a_binary_or_nested_column_stops_the_build(
    tmp_path: Path, column: pl.Series
) -> None:
    """Only String, Categorical and List[String] columns were read; others were left to the
    Parquet statistics, which hold each row group's min and max only."""
    with pytest.raises(IdentifierLeak, match=r"column '\w+\.note'"):
        _build(tmp_path, job=_with_column(column))


def test_an_unused_enum_category_holding_a_raw_id_stops_the_build(tmp_path: Path) -> None:
    """An Enum's categories are in the file's Arrow schema (a reader sees them in
    ``dtype.categories``) even when no row uses one."""

    def job(inputs: JobInputs) -> JobOutput:
        out = tag_means(inputs)
        status = pl.Enum(["ok", "cnc-101"])
        splits = {
            k: v.with_columns(pl.lit("ok").cast(status).alias("status"))
            for k, v in out.splits.items()
        }
        return dataclasses.replace(out, splits=splits)

    with pytest.raises(IdentifierLeak, match=r"column '\w+\.status'"):
        _build(tmp_path, job=job)


def test_the_parquet_metadata_scan_reads_enum_categories(tmp_path: Path) -> None:
    """``parquet_statistics`` (the written file's check, also ``datasets scan``'s) skipped the
    serialised Arrow schema as 'column names only'."""
    path = tmp_path / "a.parquet"
    pl.DataFrame({"status": pl.Series(["ok"], dtype=pl.Enum(["ok", "cnc-101"]))}).write_parquet(
        path
    )
    assert any("cnc-101" in v for v in parquet_statistics(path))


# --- a digits-only id and the set's own figures (attack S4) ------------------------------


def test_a_numeric_lot_id_does_not_refuse_an_innocent_build(tmp_path: Path) -> None:
    """A lot of digits only (``12``) was found in float statistics ("31.12...") or figures
    of a side file: a set naming nothing was refused."""
    files = {"scale.json": json.dumps({"mean": 31.125, "at": "2026-12-01T12:00"}).encode()}

    def job(inputs: JobInputs) -> JobOutput:
        out = tag_means(inputs)
        splits = {
            k: v.with_columns(pl.lit(3.12).alias("gain"), pl.lit(120).alias("n12"))
            for k, v in out.splits.items()
        }
        return dataclasses.replace(out, splits=splits, files={**out.files, **files})

    assert _build(tmp_path, lot="12", job=job).rows > 0


class _AtMinute12(datetime):
    """The build's clock at 11:12:53 (whole seconds too: isoformat then has no fraction)."""

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> _AtMinute12:
        return cls(2026, 12, 2, 11, 12, 12, tzinfo=tz)


def test_a_numeric_lot_id_does_not_refuse_a_build_made_at_minute_12(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cause of the flaky innocent-build test: the manifest's ``created_at``
    (``2026-12-02T11:12:12Z``) was taken for a mention of lot ``12`` by the prose check
    (``:12:`` delimits a token there), so a build run at minute 12 of any hour, or at second
    12 of a whole second, was refused for naming a lot it does not name."""
    monkeypatch.setattr(build_module, "datetime", _AtMinute12)
    manifest = _build(tmp_path, lot="12")
    assert manifest.created_at == "2026-12-02T11:12:12Z"
    assert manifest.rows > 0


def test_a_numeric_id_in_a_full_time_of_day_is_not_a_mention_in_prose() -> None:
    for text in (b'"created_at": "2026-12-02T11:12:53.5Z"', b"11:54:12Z", b"12:00:00"):
        assert text_mentions(text, ["12"]) == [], text
    for text in (b"lot 12: scrapped", b"(12)", b"lots 12, 13", b"lot 12.", b'"12"'):
        assert text_mentions(text, ["12"]) == ["12"], text


def test_ids_listed_with_separators_in_prose_are_each_found() -> None:
    """An author cannot hide lot numbers from the scan by joining them (``12,13``); a short
    time or a fraction that may be a list of ids is read as one (the author rephrases)."""
    for text in (b"Lots 12,13 were scrapped", b"lots 12/13 merged", b"lot 12+13", b"7:12"):
        assert text_mentions(text, ["12", "13", "7"]) == [
            i for i in ("12", "13", "7") if i.encode() in text
        ], text
    for text in (b"at 12:00", b"1/12"):
        assert text_mentions(text, ["12"]) == ["12"], text


def test_a_numeric_id_standing_alone_in_a_side_file_is_still_found() -> None:
    assert leaked_values(b'{"lot": "12"}', ["12"]) == ["12"]
    assert leaked_values(b"lot-12 scrapped", ["12"]) == ["12"]
    assert leaked_values(b"31.12, 2026-12-01, 120, 1e12, n12", ["12"]) == []
    values = pl.DataFrame({"v": ["lot-12", "12", "n12", "31.12", "2026-12-01", "120"]})
    assert frame_leaks(values, ["12"]) == {"v": 2}


# --- identifiers outside the set's contracts (attack S7, S8, S9) -------------------------


def _spec(description: str, tenants: list[str]) -> DatasetSpec:
    return parse_spec(
        {
            "name": "spindle",
            "description": description,
            "purpose": "predictive-maintenance-research",
            "job": JOB_NAME,
            "filters": {"tenants": tenants},
        },
        jobs=JOBS,
    )


def test_a_serial_of_a_kind_the_contract_does_not_share_in_the_description_stops_the_build(
    tmp_path: Path,
) -> None:
    """Under a telemetry-only contract the build looked only for serials of released rows;
    a description naming one of the company's part serials was published (and ``datasets
    scan`` then reported it)."""
    store = seeded_lake(tmp_path / "lake")
    write_inspection(store, "SN-7781", ["cnc-101"], T0 + timedelta(minutes=3))
    sharing = Sharing(tmp_path, min_group_size=1)
    sharing.add(
        (
            f'id = "nw-t"\ntenant = "{TENANT}"\npurposes = ["predictive-maintenance-*"]\n'
            '[share]\nkinds = ["telemetry"]\n[deidentify]\nsuppress_rare = false\n'
        ).encode()
    )
    spec = _spec("spindle means; the spindle of part SN-7781 was replaced", [TENANT])
    area = CuratedArea(str(tmp_path / "curated"), cache_dir=tmp_path / "cache")
    with pytest.raises(IdentifierLeak, match=r"manifest\.json"):
        build_dataset(
            store, spec, registry=registry(), jobs=JOBS, sharing=sharing.gate, out_root=area
        )


def test_a_machine_of_a_suppressed_rare_type_in_the_description_stops_the_build(
    tmp_path: Path,
) -> None:
    """Machine ids were taken after rare-type suppression: a machine suppressed because its
    type would single the company out was not looked for."""
    store = seeded_lake(tmp_path / "lake")
    sharing = Sharing(tmp_path, min_group_size=2)
    sharing.add(contract_toml("nw-a", suppress_rare=True))
    area = CuratedArea(str(tmp_path / "curated"), cache_dir=tmp_path / "cache")
    with pytest.raises(IdentifierLeak, match=r"manifest\.json"):
        build_dataset(
            store,
            _spec("spindle means without cnc-101", [TENANT]),
            registry=registry(),
            jobs=JOBS,
            sharing=sharing.gate,
            out_root=area,
            allow_failed_quality=True,
        )


@pytest.mark.parametrize(
    "description",
    [
        "spindle means; from v2 without northwind-auto",
        "spindle means; the Stuttgart plant left",
        "spindle means; cnc-101 is gone",
    ],
)
def test_a_withdrawn_company_named_in_the_next_versions_description_stops_the_build(
    tmp_path: Path, description: str
) -> None:
    """Once a company revoked, its ids were looked for nowhere: the next version's
    description could say who left (SECURITY C8/C8b)."""
    store = seeded_lake(tmp_path / "lake")
    _rival_telemetry(store)
    sharing = Sharing(tmp_path, min_group_size=1)
    sharing.add(contract_toml("nw-a"))
    sharing.add(contract_toml("rv-a", tenant=RIVAL))
    sharing.store.revoke("nw-a", reason="leaves")
    area = CuratedArea(str(tmp_path / "curated"), cache_dir=tmp_path / "cache")
    with pytest.raises(IdentifierLeak, match=r"manifest\.json"):
        build_dataset(
            store,
            _spec(description, [TENANT, RIVAL]),
            registry=_registry(tmp_path),
            jobs=JOBS,
            sharing=sharing.gate,
            out_root=area,
            allow_failed_quality=True,
        )


def test_the_scan_finds_a_withdrawn_companys_id_in_a_version_published_without_the_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``datasets scan`` looked only for the ids of the manifest's contracts."""
    store = seeded_lake(tmp_path / "lake")
    _rival_telemetry(store)
    sharing = Sharing(tmp_path, min_group_size=1)
    sharing.add(contract_toml("nw-a"))
    sharing.add(contract_toml("rv-a", tenant=RIVAL))
    sharing.store.revoke("nw-a", reason="leaves")
    area = CuratedArea(str(tmp_path / "curated"), cache_dir=tmp_path / "cache")
    monkeypatch.setattr(SharedInputs, "check_prose", lambda *_, **__: None)
    manifest = build_dataset(
        store,
        _spec("spindle means; cnc-101 is gone", [TENANT, RIVAL]),
        registry=_registry(tmp_path),
        jobs=JOBS,
        sharing=sharing.gate,
        out_root=area,
        allow_failed_quality=True,
    )
    machines = pl.from_arrow(_registry(tmp_path).machines())
    assert isinstance(machines, pl.DataFrame)
    report = scan_version(area, manifest, contracts=sharing.store, store=store, machines=machines)
    assert "cnc-101" in report.values


# --- datasets scan against the registry of the build (attack S6) -------------------------


def test_the_scan_looks_for_machines_the_registry_no_longer_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``datasets scan`` took the ids from the live registry: once a machine was renamed (or
    removed, or its company offboarded), a version naming it scanned clean. The scan now
    also reads the registry version the manifest records."""
    registries = RegistryStore(tmp_path / "lake")
    seed = registries.get(0)
    document = json.loads(
        json.dumps(seed.registry.document()).replace("Northwind Automotive", "Northwind AG")
    )
    built = registries.commit(document, base=seed, author="ops", reason="company renamed")
    monkeypatch.setattr(SharedInputs, "check_prose", lambda *_, **__: None)
    store = seeded_lake(tmp_path / "lake")
    write_inspection(store, "SN-0001", ["cnc-101"], T0 + timedelta(minutes=3))
    sharing = Sharing(tmp_path, min_group_size=1)
    sharing.add(contract_toml("nw-a"))
    area = CuratedArea(str(tmp_path / "curated"), cache_dir=tmp_path / "cache")
    manifest = build_dataset(
        store,
        _spec("spindle means of cnc-101 only", [TENANT]),
        registry=built.registry,
        registry_version=built.version,
        jobs=JOBS,
        sharing=sharing.gate,
        out_root=area,
    )
    renamed = json.loads(json.dumps(document).replace('"cnc-101"', '"cnc-111"'))
    live = registries.commit(renamed, base=built, author="ops", reason="machine renamed").registry
    assert "cnc-101" not in pl.from_arrow(live.machines()).get_column("machine").to_list()  # type: ignore[union-attr]

    machines, sources = scan_machines(manifest, live, registries)
    report = scan_version(area, manifest, contracts=sharing.store, store=store, machines=machines)

    assert "cnc-101" in report.values
    assert sources == ["the live registry", f"registry version {built.version} (the build's)"]


# --- letter case and dashes in values and files (attack S1's variants) -------------------


@pytest.mark.parametrize(
    "description",
    [
        "spindle means of cnc\u2013101 only",  # en dash, as word processors write '-'
        "spindle means of cnc\u2011101 only",  # non-breaking hyphen (the manifest writes \u2011)
        "spindle means of \uff23\uff2e\uff23-101 only",  # full-width letters
        "spindle means of cnc101 only",
        "spindle means of CNC 101 only",
        "spindle means; Northwind Auto left",
    ],
    ids=["en-dash", "non-breaking-hyphen", "full-width", "no-dash", "space", "tenant-words"],
)
def test_an_identifier_written_with_another_dash_in_the_description_stops_the_build(
    tmp_path: Path, description: str
) -> None:
    """A reader reads each of these as cnc-101."""
    with pytest.raises(IdentifierLeak, match=r"manifest\.json"):
        _build(tmp_path, description=description)


def test_a_raw_id_in_another_case_in_a_split_column_stops_the_build(tmp_path: Path) -> None:
    """Values were searched case-sensitively: a job that upper-cased the machine ids it looked
    up elsewhere published them."""
    column = pl.Series("note", ["A", "CNC-101", "Z"])
    with pytest.raises(IdentifierLeak, match=r"column '\w+\.note'"):
        _build(tmp_path, job=_with_column(column))


@pytest.mark.parametrize(
    "data", [b'{"machine": "CNC-101"}', "machine: cnc\u2013101".encode()], ids=["upper", "dash"]
)
def test_a_raw_id_in_another_case_or_dash_in_a_side_file_stops_the_build(
    tmp_path: Path, data: bytes
) -> None:
    with pytest.raises(IdentifierLeak, match=r"lookup\.txt"):
        _build(tmp_path, job=_with_side_file("lookup.txt", data))


def test_a_decompression_bomb_or_a_broken_archive_is_not_a_file_the_check_reads() -> None:
    """Decoding is bounded (64 MiB): a side file beyond it cannot be checked, nor can a
    gzip file that does not decompress; a file that only starts like an archive and is text
    is read as text."""
    assert file_texts(gzip.compress(bytes(65 * 2**20))) is None
    assert file_texts(b"\x1f\x8b" + bytes(40)) is None
    texts = file_texts(b"BZh is how the note starts; cnc-101")
    assert texts is not None
    assert any(leaked_values(t, ["cnc-101"]) for t in texts)


def test_a_serial_outside_the_specs_filters_in_the_description_stops_the_build(
    tmp_path: Path,
) -> None:
    """The build collected serials and lots from the rows the spec's filters read, and
    ``datasets scan`` from every row of the pinned versions: a part inspected before the
    spec's time range, named in its description, was published (and then reported by the
    scan). The build now looks for every row's serials too."""
    store = seeded_lake(tmp_path / "lake")
    write_inspection(store, "SN-0042", ["cnc-101"], T0 - timedelta(days=30))
    sharing = Sharing(tmp_path, min_group_size=1)
    sharing.add(contract_toml("nw-a"))
    spec = parse_spec(
        {
            "name": "spindle",
            "description": "spindle means; part SN-0042 was scrapped before",
            "purpose": "predictive-maintenance-research",
            "job": JOB_NAME,
            "filters": {"tenants": [TENANT], "start": (T0 - timedelta(days=1)).isoformat()},
        },
        jobs=JOBS,
    )
    area = CuratedArea(str(tmp_path / "curated"), cache_dir=tmp_path / "cache")
    with pytest.raises(IdentifierLeak, match=r"manifest\.json"):
        build_dataset(
            store,
            spec,
            registry=registry(),
            jobs=JOBS,
            sharing=sharing.gate,
            out_root=area,
            allow_failed_quality=True,
        )


def test_a_raw_id_as_a_struct_field_name_stops_the_build(tmp_path: Path) -> None:
    """A nested field's name is in every reader's schema (``df.schema``, Delta Sharing's
    ``schemaString``) but in no value, and the card lists top-level columns only."""

    def job(inputs: JobInputs) -> JobOutput:
        out = tag_means(inputs)
        note = pl.struct(pl.lit(1.0).alias("cnc-101")).alias("note")
        return dataclasses.replace(
            out, splits={k: v.with_columns(note) for k, v in out.splits.items()}
        )

    with pytest.raises(IdentifierLeak, match=r"column '\w+\.note'"):
        _build(tmp_path, job=job)


def test_a_raw_id_inside_a_column_name_stops_the_build(tmp_path: Path) -> None:
    """A whole column name is a token of the card (held); one holding the id inside a longer
    name (``mean_cnc-101``) was in every reader's schema and found nowhere."""

    def job(inputs: JobInputs) -> JobOutput:
        out = tag_means(inputs)
        column = pl.lit(1.0).alias("mean_cnc-101")
        return dataclasses.replace(
            out, splits={k: v.with_columns(column) for k, v in out.splits.items()}
        )

    with pytest.raises(IdentifierLeak, match=r"mean_cnc-101"):
        _build(tmp_path, job=job)


def test_a_short_id_inside_a_column_name_does_not_refuse_the_set(tmp_path: Path) -> None:
    """The steel company's stands are ``f1``..``f4`` (looked for in every set, as another
    company's ids): a column ``f1_score`` names none of them, a column ``f1`` would."""

    def job(inputs: JobInputs) -> JobOutput:
        out = tag_means(inputs)
        column = pl.lit(0.5).alias("f1_score")
        return dataclasses.replace(
            out, splits={k: v.with_columns(column) for k, v in out.splits.items()}
        )

    assert _build(tmp_path, job=job).rows > 0
