"""Bad-input injection: one broken message per call, of a class drawn uniformly.

Every class is something real plants send by mistake, and each must end in the lake's quarantine
(or, for ``duplicate_resend``, as a counted duplicate) rather than in silver:

=====================  ==================================================================
malformed_json         the JSON text cut short
not_utf8               a latin-1 byte inside the machine id
empty                  a zero-byte message
missing_field          one required envelope or body field removed
wrong_type             a field of the wrong JSON type (string version, numeric time, ...)
unknown_tag            a tag (telemetry), alarm code (machine_event) or defect code
                       (inspection) the registry does not know
out_of_range           a GOOD reading of 1e9 (beyond every physical range), an alarm severity
                       outside 1..1000, or an inspection window that ends before it starts
nan_or_infinity        a ``NaN``/``Infinity`` literal where a number belongs
future_time            ``event_time`` 30 days after the simulated clock
past_time              ``event_time`` two years before the simulated clock
oversized              more than 256 KiB (a runaway ``notes`` field)
tenant_mismatch        the payload names another tenant than its topic
unknown_schema_version ``schema_version`` 0, 2 or 99
duplicate_resend       an earlier good event re-sent byte-identically
=====================  ==================================================================
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import orjson

from schemas.kinds import ENVELOPE_REQUIRED

__all__ = ["BAD_CLASSES", "QUARANTINE_REASONS", "make_bad", "quarantine_names_line"]

BAD_CLASSES: tuple[str, ...] = (
    "malformed_json",
    "not_utf8",
    "empty",
    "missing_field",
    "wrong_type",
    "unknown_tag",
    "out_of_range",
    "nan_or_infinity",
    "future_time",
    "past_time",
    "oversized",
    "tenant_mismatch",
    "unknown_schema_version",
    "duplicate_resend",
)
QUARANTINE_REASONS: Mapping[str, tuple[str, ...]] = {
    "malformed_json": ("malformed_json",),
    "not_utf8": ("not_utf8",),
    "empty": ("empty",),
    "missing_field": ("missing_field",),
    "wrong_type": ("wrong_type", "invalid_timestamp"),
    "unknown_tag": ("unknown_tag", "unknown_alarm_code", "unknown_defect_code"),
    "out_of_range": (
        "tag_value_not_above_physical_max",
        "tag_value_not_below_physical_min",
        "invalid_value",
    ),
    "nan_or_infinity": ("nan_or_infinity",),
    "future_time": ("event_time_in_future",),
    "past_time": ("event_time_too_old",),
    "oversized": ("oversized",),
    "tenant_mismatch": ("tenant_mismatch",),
    "unknown_schema_version": ("unknown_schema_version",),
    "duplicate_resend": (),
}
"""Bad-input class -> the quarantine reasons (``status``, ``quarantine list``) its messages
carry; ``duplicate_resend`` is counted as a duplicate, not quarantined. The class names are the
simulator's labels; ``unknown_tag`` is ``unknown_alarm_code`` for a machine event and
``unknown_defect_code`` for an inspection, ``out_of_range`` a reading beyond its physical range
(telemetry) or an ``invalid_value`` (alarm severity, inspection window)."""


def quarantine_names_line(classes: Iterable[str]) -> str | None:
    """One line naming, for the bad classes in ``classes`` whose quarantine reasons have other
    names, what ``maxlake status`` and ``quarantine list`` call them (None: none differ)."""
    said = []
    for name in sorted(set(classes)):
        reasons = QUARANTINE_REASONS.get(name)
        if reasons is None or reasons == (name,):
            continue
        said.append(
            f"{name} -> {' or '.join(reasons)}"
            if reasons
            else f"{name} -> counted as a duplicate, not quarantined"
        )
    if not said:
        return None
    return f"(quarantine reasons of these classes: {'; '.join(said)})"


OVERSIZED_BYTES = 256 * 1024
_NAN = "__maxlake_nan__"
_BODY = {
    "telemetry": ("reading", "readings"),
    "machine_event": ("event_type",),
    "inspection": ("part_serial", "lot", "machines", "process_start", "process_end", "result"),
}


def make_bad(
    kind: str, rng: random.Random, good_event: Mapping[str, Any], *, previous: bytes | None = None
) -> tuple[str, bytes]:
    """A bad message derived from ``good_event`` (a valid event of ``kind``).

    Args:
        kind: ``telemetry``, ``machine_event`` or ``inspection``.
        rng: the only source of randomness, so a seeded caller gets the same bytes every time.
        good_event: the event to break; not modified.
        previous: the bytes of an earlier good event, needed by ``duplicate_resend``; without
            it that class is not drawn.

    Returns:
        ``(class name, payload bytes)``, the class one of :data:`BAD_CLASSES`.
    """
    classes = BAD_CLASSES if previous is not None else BAD_CLASSES[:-1]
    bad_class = rng.choice(classes)
    if bad_class == "duplicate_resend":
        assert previous is not None
        return bad_class, previous
    event: dict[str, Any] = orjson.loads(orjson.dumps(good_event))
    return bad_class, _BREAKERS[bad_class](kind, rng, event)


def _dumps(event: Mapping[str, Any], nan: bytes = b"NaN") -> bytes:
    return orjson.dumps(event).replace(f'"{_NAN}"'.encode(), nan)


def _first_reading(event: dict[str, Any]) -> dict[str, Any] | None:
    if isinstance(event.get("reading"), dict):
        return dict(event["reading"])
    readings = event.get("readings")
    return readings[0] if isinstance(readings, list) and readings else None


def _malformed_json(kind: str, rng: random.Random, event: dict[str, Any]) -> bytes:
    text = _dumps(event)
    return text[: rng.randint(1, len(text) - 2)]


def _not_utf8(kind: str, rng: random.Random, event: dict[str, Any]) -> bytes:
    machine = str(event.get("machine", ""))
    text = _dumps(event)
    needle = f'"machine":"{machine}"'.encode()
    return text.replace(needle, f'"machine":"{machine}\u00e9"'.encode("latin-1"), 1)


def _empty(kind: str, rng: random.Random, event: dict[str, Any]) -> bytes:
    return b""


def _missing_field(kind: str, rng: random.Random, event: dict[str, Any]) -> bytes:
    present = [f for f in (*ENVELOPE_REQUIRED, *_BODY.get(kind, ())) if f in event]
    del event[rng.choice(present)]
    return _dumps(event)


def _wrong_type(kind: str, rng: random.Random, event: dict[str, Any]) -> bytes:
    choice = rng.randrange(3)
    if choice == 0:
        event["schema_version"] = str(event.get("schema_version", 1))
    elif choice == 1:
        event["event_time"] = 1_790_000_000
    else:
        reading = _first_reading(event)
        if kind == "telemetry" and reading is not None:
            event.pop("readings", None)
            event["reading"] = {**reading, "value": str(reading.get("value"))}
        elif kind == "inspection":
            event["machines"] = ",".join(event.get("machines", []))
        else:
            event["event_type"] = 7
    return _dumps(event)


def _set_reading(event: dict[str, Any], **changes: Any) -> None:
    reading = _first_reading(event) or {"tag": "x", "value": 0.0}
    event.pop("readings", None)
    event["reading"] = {**reading, **changes}


def _as_alarm(event: dict[str, Any], **alarm: Any) -> None:
    event.pop("state", None)
    event["event_type"] = "ALARM"
    event["alarm"] = {"code": "GEN-1", "severity": 500, "text": "simulated", **alarm}


def _unknown_tag(kind: str, rng: random.Random, event: dict[str, Any]) -> bytes:
    name = f"unknown-{rng.getrandbits(24):06x}"
    if kind == "telemetry":
        _set_reading(event, tag=name)
    elif kind == "machine_event":
        _as_alarm(event, code=name.upper())
    else:
        event["result"] = "FAIL"
        event["defect_codes"] = [name.upper()]
    return _dumps(event)


def _out_of_range(kind: str, rng: random.Random, event: dict[str, Any]) -> bytes:
    if kind == "telemetry":
        _set_reading(event, value=rng.choice((1e9, -1e9)), quality="GOOD")
    elif kind == "machine_event":
        _as_alarm(event, severity=rng.choice((0, 1001, 5000)))
    else:
        event["process_start"], event["process_end"] = event["process_end"], event["process_start"]
    return _dumps(event)


def _nan_or_infinity(kind: str, rng: random.Random, event: dict[str, Any]) -> bytes:
    literal = rng.choice(("NaN", "Infinity", "-Infinity"))
    if kind == "telemetry":
        _set_reading(event, value=_NAN)
    elif kind == "machine_event":
        _as_alarm(event, severity=_NAN)
    else:
        event["dimensions"] = [{"name": "size", "value": _NAN, "unit": "mm"}]
    return _dumps(event, literal.encode())


def _shift_time(event: dict[str, Any], delta: timedelta) -> bytes:
    when = datetime.fromisoformat(str(event["event_time"])) + delta
    event["event_time"] = when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return _dumps(event)


def _future_time(kind: str, rng: random.Random, event: dict[str, Any]) -> bytes:
    return _shift_time(event, timedelta(days=30, seconds=rng.randint(0, 86_400)))


def _past_time(kind: str, rng: random.Random, event: dict[str, Any]) -> bytes:
    return _shift_time(event, -timedelta(days=730, seconds=rng.randint(0, 86_400)))


def _oversized(kind: str, rng: random.Random, event: dict[str, Any]) -> bytes:
    event["notes"] = "overflowing-buffer " * ((OVERSIZED_BYTES + rng.randint(1, 8192)) // 19 + 1)
    return _dumps(event)


def _tenant_mismatch(kind: str, rng: random.Random, event: dict[str, Any]) -> bytes:
    event["tenant"] = f"{event.get('tenant', 'x')}-other"
    return _dumps(event)


def _unknown_schema_version(kind: str, rng: random.Random, event: dict[str, Any]) -> bytes:
    event["schema_version"] = rng.choice((0, 2, 99))
    return _dumps(event)


_BREAKERS: dict[str, Callable[[str, random.Random, dict[str, Any]], bytes]] = {
    "malformed_json": _malformed_json,
    "not_utf8": _not_utf8,
    "empty": _empty,
    "missing_field": _missing_field,
    "wrong_type": _wrong_type,
    "unknown_tag": _unknown_tag,
    "out_of_range": _out_of_range,
    "nan_or_infinity": _nan_or_infinity,
    "future_time": _future_time,
    "past_time": _past_time,
    "oversized": _oversized,
    "tenant_mismatch": _tenant_mismatch,
    "unknown_schema_version": _unknown_schema_version,
}
