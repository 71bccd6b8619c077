"""The spool keeps records in order, on disk, across restarts, until they are committed."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.spool import Spool, SpoolCorruptError, SpoolLockedError, encode_record


def _records(n: int, start: int = 0) -> list[tuple[str, bytes | None, bytes]]:
    return [
        ("maxlake.t.telemetry", f"m{i % 3}".encode(), f'{{"n":{i}}}'.encode())
        for i in range(start, start + n)
    ]


def _values(spool: Spool, max_records: int = 1_000_000) -> list[bytes]:
    records, _ = spool.read(max_records)
    return [r.value for r in records]


def test_records_come_back_in_append_order_across_segments(tmp_path: Path) -> None:
    with Spool(tmp_path, segment_bytes=200) as spool:
        for chunk in range(5):
            spool.append(_records(7, chunk * 7))
        assert len(spool) == 35
        assert _values(spool) == [r[2] for r in _records(35)]
    assert len(list(tmp_path.glob("seg-*.spool"))) > 1


def test_keys_and_topics_round_trip_including_no_key(tmp_path: Path) -> None:
    with Spool(tmp_path) as spool:
        spool.append([("a.b.c", None, b"x"), ("d", b"", b""), ("e", b"k", b"\xff\x00")])
        records, _ = spool.read(10)
    assert [(r.topic, r.key, r.value) for r in records] == [
        ("a.b.c", None, b"x"),
        ("d", b"", b""),
        ("e", b"k", b"\xff\x00"),
    ]


def test_pending_records_survive_a_restart_and_commit_removes_them(tmp_path: Path) -> None:
    with Spool(tmp_path, segment_bytes=300) as spool:
        spool.append(_records(20))
        records, position = spool.read(8)
        spool.commit(position, len(records))
        spool.read(5)  # read but not committed: must come back after a restart
    with Spool(tmp_path, segment_bytes=300) as spool:
        assert len(spool) == 12
        assert _values(spool) == [r[2] for r in _records(12, 8)]


def test_rewind_returns_uncommitted_records(tmp_path: Path) -> None:
    with Spool(tmp_path) as spool:
        spool.append(_records(10))
        first, _ = spool.read(4)
        spool.rewind()
        again, _ = spool.read(4)
    assert first == again


def test_fully_drained_spool_deletes_its_segments(tmp_path: Path) -> None:
    with Spool(tmp_path, segment_bytes=100) as spool:
        spool.append(_records(30))
        records, position = spool.read(100)
        spool.commit(position, len(records))
        assert len(spool) == 0
        spool.append(_records(2, 100))
        assert _values(spool) == [r[2] for r in _records(2, 100)]
    remaining = sorted(p.name for p in tmp_path.glob("seg-*.spool"))
    assert len(remaining) == 1


def test_torn_tail_from_a_crash_is_truncated(tmp_path: Path) -> None:
    with Spool(tmp_path) as spool:
        spool.append(_records(3))
    segment = next(tmp_path.glob("seg-*.spool"))
    torn = encode_record("t", b"k", b"a value cut short")[:-5]
    with segment.open("ab") as handle:
        handle.write(torn)
    with Spool(tmp_path) as spool:
        assert len(spool) == 3
        spool.append(_records(1, 3))
        assert _values(spool) == [r[2] for r in _records(4)]


def test_corruption_before_the_newest_segment_raises(tmp_path: Path) -> None:
    with Spool(tmp_path, segment_bytes=50) as spool:
        spool.append(_records(3))
        spool.append(_records(3, 3))
    oldest = sorted(tmp_path.glob("seg-*.spool"))[0]
    data = bytearray(oldest.read_bytes())
    data[12] ^= 0xFF
    oldest.write_bytes(bytes(data))
    with pytest.raises(SpoolCorruptError, match="corrupt record"):
        Spool(tmp_path, segment_bytes=50)


def test_a_second_owner_is_refused(tmp_path: Path) -> None:
    with Spool(tmp_path), pytest.raises(SpoolLockedError, match="in use"):
        Spool(tmp_path)
    Spool(tmp_path).close()
