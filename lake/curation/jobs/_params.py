"""Reading and checking the spec's ``[job]`` table.

Every job reads its parameters through :class:`Params`, which applies the documented default,
checks the type and names the job and key in the error, so a typo in a spec fails before any
data is read.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from lake.curation.jobs.errors import JobParamError
from maxlake.errors import did_you_mean

SPLIT_NAMES = ("train", "validation", "test")
"""The split names every job returns, in this order."""

DEFAULT_SPLIT: Mapping[str, float] = {"train": 0.7, "validation": 0.15, "test": 0.15}

_DURATION = re.compile(r"^([1-9][0-9]*)(us|ms|s|m|h|d)$")
_UNIT_US = {"us": 1, "ms": 1_000, "s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000}
_UNIT_US["d"] = 24 * _UNIT_US["h"]

T = TypeVar("T")


@dataclass(frozen=True)
class Params:
    """Typed access to one job's parameters; unknown keys are rejected up front.

    Each accessor returns the value, or records the problem and returns the default, so a
    job's ``parse`` reads every parameter and then calls :meth:`done`, which raises one
    :class:`JobParamError` with every problem found.
    """

    job: str
    values: Mapping[str, Any]
    problems: list[tuple[str, str]] = field(default_factory=list, compare=False)

    def problem(self, key: str, problem: str) -> None:
        """Record a problem of ``key`` (reported by :meth:`done`)."""
        self.problems.append((key, problem))

    def done(self) -> None:
        """Raise every problem recorded so far as one error.

        Raises:
            JobParamError: one or more problems; ``problems`` holds ``(key, problem)`` each.
        """
        if self.problems:
            raise JobParamError.of(self.job, self.problems)

    def _read(self, key: str, read: Callable[[Params], T]) -> T:
        try:
            return read(self)
        except JobParamError as exc:
            self.problems.extend(exc.problems)
        without = {k: v for k, v in self.values.items() if k != key}
        return read(Params(self.job, without))

    def check_keys(self, known: Sequence[str]) -> None:
        """Record each key the table holds that the job does not read (a likely typo), with
        the closest parameter when one is close."""
        valid = sorted(known)
        for key in sorted(set(self.values) - set(known)):
            self.problem(
                key,
                f"is not a parameter of this job{did_you_mean(key, valid)} "
                f"(valid: {', '.join(valid)})",
            )

    def duration_us(self, key: str, default: str) -> int:
        """A fixed duration such as ``"1h"``, ``"10s"``, ``"5m"`` in microseconds."""
        return self._read(key, lambda p: p._duration_us(key, default))

    def _duration_us(self, key: str, default: str) -> int:
        raw = self.values.get(key, default)
        match = _DURATION.match(raw) if isinstance(raw, str) else None
        if match is None:
            raise JobParamError(
                self.job, key, f"must be a duration like '10s', '5m', '1h' (got {raw!r})"
            )
        return int(match.group(1)) * _UNIT_US[match.group(2)]

    def number(
        self, key: str, default: float, *, minimum: float = 0.0, why_positive: str | None = None
    ) -> float:
        """A finite number >= ``minimum``; > 0 as well when ``why_positive`` says why."""
        return self._read(key, lambda p: p._number(key, default, minimum, why_positive))

    def _number(self, key: str, default: float, minimum: float, why_positive: str | None) -> float:
        raw = self.values.get(key, default)
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
            raise JobParamError(self.job, key, f"must be a number (got {raw!r})")
        if raw < minimum:
            raise JobParamError(self.job, key, f"must be >= {minimum} (got {raw!r})")
        if why_positive is not None and raw <= 0:
            raise JobParamError(self.job, key, f"must be > 0 (got {raw!r}): {why_positive}")
        return float(raw)

    def integer(self, key: str, default: int, *, minimum: int = 0) -> int:
        """An integer >= ``minimum``."""
        return self._read(key, lambda p: p._integer(key, default, minimum))

    def _integer(self, key: str, default: int, minimum: int) -> int:
        raw = self.values.get(key, default)
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise JobParamError(self.job, key, f"must be an integer (got {raw!r})")
        if raw < minimum:
            raise JobParamError(self.job, key, f"must be >= {minimum} (got {raw!r})")
        return raw

    def boolean(self, key: str, default: bool) -> bool:
        """A TOML boolean."""
        return self._read(key, lambda p: p._boolean(key, default))

    def _boolean(self, key: str, default: bool) -> bool:
        raw = self.values.get(key, default)
        if not isinstance(raw, bool):
            raise JobParamError(self.job, key, f"must be true or false (got {raw!r})")
        return raw

    def choice(self, key: str, default: str, options: Sequence[str]) -> str:
        """One of ``options``."""
        return self._read(key, lambda p: p._choice(key, default, options))

    def _choice(self, key: str, default: str, options: Sequence[str]) -> str:
        raw = self.values.get(key, default)
        if raw not in options:
            close = did_you_mean(raw, list(options)) if isinstance(raw, str) else ""
            raise JobParamError(
                self.job, key, f"{raw!r} is not an option{close} (valid: {', '.join(options)})"
            )
        return str(raw)

    def string(self, key: str, default: str) -> str:
        """A string."""
        return self._read(key, lambda p: p._string(key, default))

    def _string(self, key: str, default: str) -> str:
        raw = self.values.get(key, default)
        if not isinstance(raw, str):
            raise JobParamError(self.job, key, f"must be a string (got {raw!r})")
        return raw

    def strings(self, key: str, default: Sequence[str] | None) -> tuple[str, ...] | None:
        """A list of strings, returned sorted and deduplicated; None when absent and no default."""
        return self._read(key, lambda p: p._strings(key, default))

    def _strings(self, key: str, default: Sequence[str] | None) -> tuple[str, ...] | None:
        raw = self.values.get(key, default)
        if raw is None:
            return None
        if not isinstance(raw, list | tuple) or not all(isinstance(s, str) for s in raw):
            raise JobParamError(self.job, key, f"must be a list of strings (got {raw!r})")
        return tuple(sorted(set(raw)))

    def split(self, key: str = "split") -> dict[str, float]:
        """Shares of ``train``/``validation``/``test``: each >= 0, summing to 1."""
        return self._read(key, lambda p: p._split(key))

    def _split(self, key: str) -> dict[str, float]:
        raw = self.values.get(key, DEFAULT_SPLIT)
        self._table_keys(key, raw, SPLIT_NAMES, "split")
        shares = {name: raw[name] for name in SPLIT_NAMES}
        for name, share in shares.items():
            if isinstance(share, bool) or not isinstance(share, int | float) or share < 0:
                raise JobParamError(self.job, f"{key}.{name}", f"must be >= 0 (got {share!r})")
        if not math.isclose(sum(shares.values()), 1.0, abs_tol=1e-9):
            raise JobParamError(self.job, key, f"shares must sum to 1 (got {shares})")
        return {name: float(share) for name, share in shares.items()}

    def _table_keys(self, key: str, raw: Any, names: Sequence[str], what: str) -> None:
        """Raise unless ``raw`` is a table of exactly ``names``; every unknown key (with the
        closest name) and every missing one is named."""
        valid = ", ".join(names)
        if not isinstance(raw, Mapping):
            raise JobParamError(
                self.job, key, f"must be a table with exactly the keys {valid} (got {raw!r})"
            )
        found = [
            (f"{key}.{k}", f"is not a {what}{did_you_mean(str(k), list(names))} (valid: {valid})")
            for k in raw
            if k not in names
        ]
        missing = [name for name in names if name not in raw]
        if missing:
            found.append(
                (key, f"misses {', '.join(missing)} (a table with exactly the keys {valid})")
            )
        if found:
            raise JobParamError.of(self.job, found)

    def cuts(self, key: str = "cuts") -> tuple[int, int] | None:
        """Pinned cut instants ``{validation = T1, test = T2}`` in us since the epoch, or None.

        ``T1`` starts validation and ``T2`` starts test (RFC 3339 strings with an offset or
        TOML offset datetimes, ``T1 <= T2``). Pinned cuts replace the ``split`` shares, so data
        added later lands only in the test split.
        """
        return self._read(key, lambda p: p._cuts(key))

    def _cuts(self, key: str) -> tuple[int, int] | None:
        raw = self.values.get(key)
        if raw is None:
            return None
        if "split" in self.values:
            raise JobParamError(self.job, key, "replaces 'split': give one of them, not both")
        names = ("validation", "test")
        self._table_keys(key, raw, names, "cut")
        instants = [self._instant_us(f"{key}.{name}", raw[name]) for name in names]
        if instants[0] > instants[1]:
            raise JobParamError(self.job, f"{key}.test", "must not be before cuts.validation")
        return instants[0], instants[1]

    def _instant_us(self, key: str, raw: Any) -> int:
        form = "an RFC 3339 time with an offset, e.g. 2026-01-31T00:00:00Z"
        value = raw
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                value = None
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise JobParamError(self.job, key, f"must be {form} (got {raw!r})")
        delta = value.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
        return delta // _ONE_US


_ONE_US = datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)


def duration_text(us: int) -> str:
    """A duration for people: ``15 min``, ``1 h``, ``10 s``, ``2 d``, ``500 ms``, ``7 us``."""
    for unit, text in (("d", "d"), ("h", "h"), ("m", "min"), ("s", "s"), ("ms", "ms")):
        if us >= _UNIT_US[unit] and us % _UNIT_US[unit] == 0:
            return f"{us // _UNIT_US[unit]} {text}"
    return f"{us} us"


def iso_us(us: int) -> str:
    """An instant (us since the epoch) as RFC 3339 UTC text ending in ``Z``."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return (epoch + us * _ONE_US).isoformat().replace("+00:00", "Z")


def cut_meta(cuts: tuple[int, int] | None, *, pinned: bool) -> dict[str, Any]:
    """The split cut instants as recorded in the manifest's ``job_meta``."""
    if cuts is None:
        return {"cuts": {}, "cuts_pinned": pinned}
    iso = [iso_us(us) for us in cuts]
    return {"cuts": {"validation": iso[0], "test": iso[1]}, "cuts_pinned": pinned}


def cut_points(shares: Mapping[str, float]) -> tuple[float, float]:
    """The cumulative fractions where validation and test start."""
    first = shares["train"]
    return first, first + shares["validation"]


def required_splits(shares: Mapping[str, float], pinned: tuple[int, int] | None) -> tuple[str, ...]:
    """The splits a spec asks for: every one under pinned cuts, else those with a share > 0."""
    if pinned is not None:
        return SPLIT_NAMES
    return tuple(name for name in SPLIT_NAMES if shares[name] > 0)
