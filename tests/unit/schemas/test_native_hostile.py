"""Hostile inputs for the compiled parser that the property tests draw rarely or never.

The Arrow fallback set aside every message holding a backslash, a NUL or a ``\\r``, so the fast
path's column checks never saw a string written with escapes; ``maxlake_native`` reads them. These
tests decode batches of events whose every string field (envelope and reading) holds control
characters, escapes, non-ASCII and near-miss ids and times, both ways, and require the exact
decoder's result. They also hold the native parser to orjson on decimal tokens at the rounding
midpoints of doubles, check two threads parsing at once, and check that without the module the
decoder still works and says why.
"""

from __future__ import annotations

import json
import math
import random
import struct
import subprocess
import sys
import threading
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest

from schemas import _native
from schemas.events.telemetry import _PARSE_SCHEMA, FAST_MIN_BATCH
from tests.unit.schemas.events import NOW, telemetry
from tests.unit.schemas.test_decode_fast import _assert_same, _both

pytestmark = pytest.mark.skipif(
    not _native.available(), reason=f"native parser not built: {_native.UNAVAILABLE}"
)

_HOSTILE = ["\x00", "\n", "\r", "\t", "\x7f", "\u2028", "\ufeff", "\u0085", "é", "e\u0301",
            "\U0001f600", "\ufffe", "\uffff", "/", "\\", '"', " ", "２０２６-11-26T10:00:00Z",
            "2026-11-26T10:00:00Z", "2026-11-26T10:00:00Z\n", "\n2026-11-26T10:00:00Z",
            "2026-11-26T10:00:00.123Z", "spindle_speed", "spindle_speed\n", "GOOD", "GOOD\x00",
            "telemetry", "telemetry\n", "northwind-auto", "northwind-auto\x00", "cnc-101",
            "x" * 128, "é" * 128, "é" * 129, "\U0001f600" * 128]  # fmt: skip
_ENVELOPE = ["event_id", "kind", "tenant", "plant", "line", "machine", "event_time", "sent_time"]


def _spelled(rng: random.Random, event: dict[str, Any]) -> bytes:
    """``event`` as JSON: compact, ASCII-only escapes, or raw UTF-8 with ``\\/`` for ``/``."""
    how = rng.randrange(3)
    if how == 0:
        return orjson.dumps(event)
    if how == 1:
        return json.dumps(event, ensure_ascii=True).encode()
    return json.dumps(event, ensure_ascii=False).replace("/", "\\/").encode()


def _hostile_event(rng: random.Random, i: int) -> bytes:
    event = telemetry(event_id=f"t-{i}")
    if rng.random() < 0.5:
        del event["reading"]
        event["readings"] = [
            {"tag": "spindle_speed", "value": rng.choice([1, 1.5, 2**53 + 1, 10**17 + 1, 5e-324])}
            for _ in range(rng.randint(1, 3))
        ]
    for _ in range(rng.choice([0, 1, 1, 2])):
        text = rng.choice(_HOSTILE) + (rng.choice(_HOSTILE) if rng.random() < 0.3 else "")
        if rng.random() < 0.6:
            event[rng.choice(_ENVELOPE)] = text
        else:
            item = event.get("reading") or event["readings"][0]
            item[rng.choice(["tag", "unit", "quality"])] = text
    return _spelled(rng, event)


@pytest.mark.parametrize("seed", range(4))
def test_strings_with_escapes_decode_as_the_exact_decoder(seed: int) -> None:
    rng = random.Random(seed)
    messages = [_hostile_event(rng, i) for i in range(FAST_MIN_BATCH + 100)]
    for tenant in (None, "northwind-auto"):
        fast, exact = _both(messages, tenant, NOW)
        assert fast is not None
        _assert_same(fast, exact)
    parsed = _native.parse(messages, 1 << 20, _PARSE_SCHEMA)
    assert parsed is not None
    escaped = [i for i in parsed[1].tolist() if b"\\" in messages[i]]
    assert escaped, "no message written with escapes reached the fast path's checks"


def _midpoint_token(rng: random.Random) -> str:
    """A decimal token at (or a digit away from) the midpoint of two adjacent doubles."""
    while True:
        bits = rng.choice(
            [rng.getrandbits(63), rng.getrandbits(52), rng.randrange(1 << 52, 1 << 53)]
        )
        low, high = struct.unpack("<2d", struct.pack("<2Q", bits, bits + 1))
        if math.isfinite(high):
            break
    with localcontext() as ctx:
        ctx.prec = 1100
        mid = (Decimal(low) + Decimal(high)) / 2
        text = format(mid, "e")
    mantissa, exponent = text.split("e")
    how = rng.randrange(3)
    if how == 1:
        mantissa = mantissa[: rng.randint(3, len(mantissa))].rstrip(".")
    elif how == 2 and "." in mantissa:
        mantissa += "0" * rng.randint(1, 40) + "1"
    return ("-" if rng.random() < 0.3 else "") + f"{mantissa}e{exponent}"


def test_float_tokens_at_rounding_midpoints_equal_orjson() -> None:
    """The hard cases of decimal-to-double conversion (ties and near-ties, subnormals): every
    kept value is orjson's bit for bit."""
    rng = random.Random(11)
    schema = pa.schema([pa.field("f", pa.float64())])
    tokens = [_midpoint_token(rng) for _ in range(3000)]
    messages = [f'{{"f":{t}}}'.encode() for t in tokens]
    out = _native.parse(messages, 1 << 20, schema)
    assert out is not None
    table, index, _ = out
    got = table.column("f").to_pylist()
    assert len(index) > len(messages) * 0.9
    for value, i in zip(got, index.tolist(), strict=True):
        want = float(orjson.loads(messages[i])["f"])
        assert struct.pack("<d", value) == struct.pack("<d", want), tokens[i]


def test_two_threads_parse_at_once_as_one_does() -> None:
    """The GIL is released while a batch is parsed: concurrent batches do not mix."""
    rng = random.Random(5)
    batches = [[_hostile_event(rng, i) for i in range(300)] for _ in range(4)]
    alone = []
    for batch in batches:
        out = _native.parse(batch, 1 << 20, _PARSE_SCHEMA)
        assert out is not None
        alone.append((out[0].to_pylist(), out[1].tolist()))
    wrong: list[int] = []

    def run(k: int) -> None:
        for j in range(30):
            n = (k + j) % len(batches)
            out = _native.parse(batches[n], 1 << 20, _PARSE_SCHEMA)
            if out is None or (out[0].to_pylist(), out[1].tolist()) != alone[n]:
                wrong.append(n)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


_WITHOUT_NATIVE = """
import importlib.abc, logging, sys

class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "maxlake_native":
            raise ImportError("blocked by the test")

sys.meta_path.insert(0, _Block())
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
import orjson
from schemas import EventKind, _native, event_schema_for
from streams import content_hash
from tests.unit.schemas.events import NOW, telemetry

messages = [orjson.dumps(telemetry(event_id=f"x-{i}")) for i in range(300)] + [b"{"]
result = event_schema_for(EventKind.TELEMETRY).decode(messages, now=NOW)
hashes = content_hash.content_hashes(messages)
print(_native.PARSER, result.rows.num_rows, len(result.rejections), len(set(hashes.tolist())))
"""


def test_without_the_native_module_the_decoder_works_and_says_why() -> None:
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_NATIVE],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["arrow", "300", "1", "301"]
    assert "WARNING decoder JSON parser: arrow (fallback: maxlake_native is not importable" in (
        done.stderr
    )
    assert "blocked by the test" in done.stderr
