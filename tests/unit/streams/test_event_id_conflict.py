"""A reused ``event_id`` with other content is not a duplicate: it is quarantined as
``event_id_conflict`` with its raw bytes, in one batch, across batches and after a restart
(dedupe warmed from silver); a resend of the same content (even with a new ``sent_time``)
stays a duplicate, and the accounting invariant holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import orjson
import polars as pl
import pytest
import xxhash
from hypothesis import given
from hypothesis import settings as examples
from hypothesis import strategies as st

from lake import DeltaStore
from lake.accounting import check_accounting
from streams import content_hash as hashing
from streams.content_hash import (
    UNKNOWN,
    canonical_payload,
    content_hash,
    content_hashes,
    kept_digests,
)
from streams.replay import replay_quarantine
from streams.sightings import Sightings, id_array
from tests.unit.lake.batches import TOPIC, gateway, messages, pipeline, settings, telemetry


def _event(value: float, *, sent_time: str | None = "2026-12-01T10:00:00.000Z") -> bytes:
    event: dict[str, Any] = orjson.loads(telemetry(1)[0].payload)
    event["event_id"] = "nu-dup"
    event["sent_time"] = sent_time
    reading = dict(event["readings"][0])
    reading["value"] = value
    event["readings"] = [reading]
    return orjson.dumps(event)


def _table(root: Path, name: str, columns: list[str]) -> pl.DataFrame:
    frame = DeltaStore(root).read_frame(name, columns=columns)
    return pl.DataFrame() if frame is None else frame


def test_the_content_hash_ignores_sent_time_only() -> None:
    first = _event(41.0)
    assert content_hash(first) == content_hash(_event(41.0, sent_time="2026-12-01T10:05:00Z"))
    assert content_hash(first) == content_hash(_event(41.0, sent_time=None))
    assert content_hash(first) != content_hash(_event(85.0))
    assert b"sent_time" not in canonical_payload(first)
    assert content_hash(b"") != UNKNOWN
    spaced = b'{"a": 1, "sent_time" : "2026-12-01T10:00:00Z" , "b": 2}'
    assert canonical_payload(spaced) == b'{"a": 1,  "b": 2}'
    assert canonical_payload(b'{"a": 1, "sent_time": 5}') == b'{"a": 1, "sent_time": 5}'
    # A producer that appends sent_time to an event that had none sends the same event.
    bare = orjson.loads(first)
    del bare["sent_time"]
    appended = {**bare, "sent_time": "2026-12-01T10:07:00Z"}
    assert content_hash(orjson.dumps(appended)) == content_hash(orjson.dumps(bare))
    assert canonical_payload(b'{"a": 1 , "sent_time": null }') == b'{"a": 1  }'


def test_the_content_hash_is_xxh3_64_as_specified() -> None:
    # XXH3_64bits of no input, from the xxHash specification's test vectors: a value stored in
    # silver today compares with one computed by any later release.
    assert content_hash(b"") == np.int64(np.uint64(0x2D06800538D394C2).astype(np.int64))


_SENT_FORMS = st.sampled_from(
    [
        b'"sent_time":"2026-12-01T10:00:00.123Z",',
        b'"sent_time":"2026-12-01T10:00:00Z"',
        b'"sent_time" : "x" ,',
        b'"sent_time":"x" ,',
        b',"sent_time":"x"',
        b', "sent_time":"x"}',
        b'"sent_time":null,',
        b'"sent_time": "x",',
        b'"sent_time":"unterminated',
        b'"sent_time":5,',
        b"",
    ]
)


_LOOPS = pytest.mark.parametrize("loop", ["native", "python"])
"""Each hash property runs with maxlake_native's loop and with the Python one."""


def _with(loop: str) -> Any:
    if loop == "native" and hashing._native_hashes is None:
        pytest.skip("maxlake_native is not built")
    native = hashing._native_hashes if loop == "native" else None
    return mock.patch.object(hashing, "_native_hashes", native)


@_LOOPS
@given(st.binary(max_size=40), _SENT_FORMS, st.binary(max_size=40))
def test_every_payload_hashes_as_its_canonical_form(
    loop: str, head: bytes, sent: bytes, tail: bytes
) -> None:
    raw = head + sent + tail
    want = np.frombuffer(xxhash.xxh3_64_digest(canonical_payload(raw)), ">i8")[0]
    with _with(loop):
        assert content_hashes([raw])[0] == (want if want != UNKNOWN else 1)


_MEMBERS = st.sampled_from(
    [
        b'"sent_time":"2026-12-01T10:00:00.123Z"',
        b'"sent_time":"x"',
        b'"sent_time":null',
        b'"sent_time" : "x"',
        b'"sent_time":"a\\"b"',
        b'"sent_time":"unterminated',
        b'"sent_time":5',
        b'"note":"sent_time"',
        b'"note":"\\"sent_time\\":\\"x\\","',
        b'"note":"\\"sent_time\\""',
        b'"note":"x\\"y"',
        b'"sent_time"',
        b'"a":1',
        b'"value":41.5',
        b'"tag":"spindle_speed"',
    ]
)
_SEPARATORS = st.sampled_from([b",", b",", b", ", b" ,", b",\n", b""])


@st.composite
def _payloads(draw: st.DrawFn) -> bytes | None:
    """JSON-like objects whose members include ``sent_time`` first, last, twice or not at all,
    inside other values and with escaped quotes; some with arbitrary bytes around them."""
    if draw(st.integers(0, 9)) == 0:
        return None
    members = draw(st.lists(_MEMBERS, max_size=5))
    body = b"{"
    for i, member in enumerate(members):
        body += (draw(_SEPARATORS) if i else b"") + member
    body += b"}"
    if draw(st.booleans()):
        body = draw(st.binary(max_size=8)) + body + draw(st.binary(max_size=8))
    return body


@_LOOPS
@examples(max_examples=400, deadline=None)
@given(st.lists(st.tuples(_payloads(), st.booleans()), max_size=12))
def test_a_batch_hashes_each_kept_payload_as_its_canonical_form(
    loop: str, batch: list[tuple[bytes | None, bool]]
) -> None:
    values = [raw for raw, _ in batch]
    keep = np.array([kept for _, kept in batch], bool)
    want = []
    for raw, kept in batch:
        if raw is None or not kept:
            want.append(UNKNOWN)
            continue
        digest = np.frombuffer(xxhash.xxh3_64_digest(canonical_payload(raw)), ">i8")[0]
        want.append(digest if digest != UNKNOWN else 1)
    with _with(loop):
        assert kept_digests(values, keep).tolist() == want
        if all(raw is not None for raw in values):
            everything = np.ones(len(values), bool)
            assert kept_digests(values, everything).tolist() == [
                content_hash(raw) for raw in values if raw is not None
            ]


def test_same_id_other_value_in_one_batch_is_quarantined_not_dropped(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    payloads = [_event(41.0), _event(41.0), _event(85.0)]
    result = pipeline(root).process("telemetry", messages(payloads))
    assert (result.silver_events, result.duplicates, result.quarantined) == (1, 1, 1)

    silver = _table(root, "silver/telemetry", ["event_id", "value", "content_hash"])
    assert silver.select("event_id", "value").rows() == [("nu-dup", 41.0)]
    assert silver["content_hash"].to_list() == [content_hash(payloads[0])]
    duplicates = _table(root, "ops/duplicates", ["kafka_offset", "original_offset"])
    assert duplicates.rows() == [(1, 0)]
    quarantine = _table(
        root, "quarantine/telemetry", ["kafka_offset", "stage", "reasons", "details", "raw"]
    )
    row = quarantine.row(0, named=True)
    assert (row["kafka_offset"], row["stage"], row["reasons"]) == (
        2,
        "dedupe",
        ["event_id_conflict"],
    )
    assert f"{TOPIC}[0]@0" in row["details"][0]
    assert row["raw"] == payloads[2], "the differing reading is kept, byte for byte"
    report = check_accounting(DeltaStore(root), committed={(TOPIC, 0): 3})
    assert report.ok, [str(v) for v in report.violations]


def test_a_conflict_is_found_across_batches_and_after_a_restart(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    worker = pipeline(root)
    assert worker.process("telemetry", messages([_event(41.0)])).silver_events == 1
    later = worker.process("telemetry", messages([_event(85.0)], first_offset=1))
    assert (later.quarantined, later.duplicates) == (1, 0)

    restarted = pipeline(root)  # a new process: dedupe state warmed from silver
    resend = _event(41.0, sent_time="2026-12-01T11:00:00.000Z")
    other_partition = restarted.process(
        "telemetry", messages([resend, _event(85.0)], partition=1, first_offset=0)
    )
    assert (other_partition.duplicates, other_partition.quarantined) == (1, 1)
    quarantine = _table(root, "quarantine/telemetry", ["kafka_partition", "reasons", "details"])
    assert quarantine["reasons"].to_list() == [["event_id_conflict"]] * 2
    assert all(f"{TOPIC}[0]@0" in d[0] for d in quarantine["details"].to_list())
    report = check_accounting(DeltaStore(root), committed={(TOPIC, 0): 2, (TOPIC, 1): 2})
    assert report.ok, [str(v) for v in report.violations]
    assert report.quarantined["telemetry"] == 2


def test_a_first_copy_of_unknown_content_keeps_repeats_duplicates() -> None:
    """Silver rows written before content hashes carry none: a repeat of them is a
    duplicate, as before."""
    seen = Sightings()
    ids = id_array(["a", "b"])
    seen.set_many(ids, np.array([0, 0]), np.array([0, 1]))
    _, _, digest = seen.first_copies(ids, np.array([0, 0]), np.array([5, 6]), np.array([7, 8]))
    assert digest.tolist() == [UNKNOWN, UNKNOWN]
    seen.set_many(id_array(["c"]), np.array([0]), np.array([2]), np.array([9]))
    _, offset, digest = seen.first_copies(id_array(["c"]), np.array([0]), np.array([7]))
    assert (offset.tolist(), digest.tolist()) == ([2], [9])


def test_a_replayed_conflict_stays_quarantined_under_its_reason(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    pipeline(root).process("telemetry", messages([_event(41.0), _event(85.0)]))
    report = replay_quarantine(settings(root), "telemetry", gateway=gateway())
    assert (report.replayed, report.duplicates, report.still_invalid) == (0, 0, 1)
    assert report.still_invalid_by_reason == {"event_id_conflict": 1}
    assert _table(root, "silver/telemetry", ["value"])["value"].to_list() == [41.0]
    accounting = check_accounting(DeltaStore(root), committed={(TOPIC, 0): 2})
    assert accounting.ok, [str(v) for v in accounting.violations]


def _declining(values: Any) -> None:
    """What the native module does with a payload that is not exactly bytes: reads them all,
    then declines."""
    list(values)


@pytest.mark.parametrize("native", [_declining, None], ids=["native-declines", "python"])
def test_a_one_shot_iterator_of_payloads_is_hashed_whole(native: Any) -> None:
    payloads = [b'{"event_id":"a","sent_time":"2026-01-01T00:00:00Z","v":1}', b'{"v":2}']
    expected = hashing.content_hashes(payloads)

    with mock.patch.object(hashing, "_native_hashes", native):
        got = hashing.content_hashes(raw for raw in payloads)

    assert got.tolist() == expected.tolist()
    assert len(got) == 2
