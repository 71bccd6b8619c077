"""Measurement units: the one wrapper of ``pint``.

Tag units in the asset registry and in telemetry readings are pint unit expressions (``degC``,
``l/min``, ``%``, ``kN``). A registry may define extra units (``[[units]]`` entries, pint
definition syntax such as ``spm = 1 / minute``). :func:`unit_system` builds one pint registry per
distinct set of definitions and caches it; pint is slow to import and to build (~1 s the
first time on this machine, then ~0.2 s from pint's on-disk cache).

pint treats radians, turns and counts as plain numbers: its ``rpm`` is 2π rad/min, so it would
convert ``Hz`` (1/s) to ``rpm`` with a factor 60/2π instead of 60. :meth:`UnitSystem.conversion`
therefore refuses a conversion between units that differ in such a dimensionless base unit
(angle, count, bit), and :meth:`UnitSystem.refusal` says why (docs/EVENT_SCHEMAS.md, "Units").
``rev`` is added as a name of pint's ``revolution`` (``rev/s``, ``rev/min``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["BUILTIN_DEFINITIONS", "Conversion", "UnitSystem", "unit_system"]

BUILTIN_DEFINITIONS = ("rev = revolution",)
"""Definitions maxlake adds to pint's own before a registry's ``[[units]]``."""

_HIDDEN_NAMES = {
    "radian": "counts an angle (revolutions, radians, degrees)",
    "count": "counts items",
}

_REFUSALS_KEPT = 4096
"""Most (unit sent, registry unit) answers :meth:`UnitSystem.refusal` keeps (units come from
devices: a flood of distinct strings must not grow memory without bound)."""


@dataclass(frozen=True, slots=True)
class Conversion:
    """How a value in one unit becomes a value in another: ``to = from * scale + offset``.

    ``None`` from :meth:`UnitSystem.conversion` means the units do not convert (different
    dimensions, or a unit pint cannot parse).
    """

    scale: float
    offset: float


class UnitSystem:
    """Parses units and converts values between them (pint underneath)."""

    def __init__(self, definitions: Sequence[str] = ()) -> None:
        """Args:
        definitions: pint definition lines (``symbol = expression``) added to pint's defaults.

        Raises:
            ValueError: a definition pint refuses (the message names it).
        """
        import pint  # noqa: PLC0415 - lazy: pint takes ~1 s to import

        self._ureg: Any = pint.UnitRegistry(
            autoconvert_offset_to_baseunit=True, cache_folder=_cache_folder(pint.__file__)
        )
        for line in (*BUILTIN_DEFINITIONS, *definitions):
            try:
                self._ureg.define(line)
            except Exception as exc:
                raise ValueError(f"bad unit definition {line!r}: {exc}") from exc
        self._conversions: dict[tuple[str, str], Conversion | None] = {}
        self._refusals: dict[tuple[str, str], str | None] = {}

    def check(self, unit: str) -> str | None:
        """None when ``unit`` parses, else pint's complaint (one line)."""
        try:
            self._ureg.Unit(unit)
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}".splitlines()[0]
        return None

    def conversion(self, source: str, target: str) -> Conversion | None:
        """The linear map from ``source`` to ``target`` units, or None when they do not convert
        (see :meth:`refusal` for why)."""
        key = (source, target)
        if key not in self._conversions:
            self._conversions[key] = self._compute(source, target)
        return self._conversions[key]

    def refusal(self, source: str, target: str) -> str | None:
        """Why ``source`` does not convert to ``target`` (one sentence), None when it does.

        The sentence names the ambiguity when pint alone would convert them through a
        dimensionless base unit, e.g. ``Hz`` to ``rpm``. Kept per pair (at most
        :data:`_REFUSALS_KEPT`; pint parses each unit again for every question, ~1 ms, and a
        quarantined batch asks once per dropped reading)."""
        key = (source, target)
        if key in self._refusals:
            return self._refusals[key]
        if len(self._refusals) >= _REFUSALS_KEPT:
            self._refusals.clear()
        why = self._refusals[key] = self._refuse(source, target)
        return why

    def _refuse(self, source: str, target: str) -> str | None:
        if self.conversion(source, target) is not None:
            return None
        for unit in (source, target):
            complaint = self.check(unit)
            if complaint is not None:
                return f"{unit!r} is not a unit pint knows ({complaint})"
        hidden = self._hidden(source), self._hidden(target)
        if hidden[0] != hidden[1] and self._dimensionality_equal(source, target):
            what = [_describe(h) for h in hidden]
            return (
                f"{source!r} {what[0]} but {target!r} {what[1]}; pint treats angles and counts "
                "as plain numbers (it would turn 1 Hz into 9.549 rpm, not 60), so the "
                f"conversion is ambiguous and refused: send {target!r} or a unit of its kind"
            )
        bases = self._basis(source), self._basis(target)
        if bases[0] != bases[1]:
            what = [f"a fraction by {b}" if b else "a plain fraction" for b in bases]
            return (
                f"{source!r} is {what[0]} but {target!r} is {what[1]}; a fraction by mass, "
                "by volume or by amount of substance is a different number for the same "
                f"mixture, so the conversion is refused: send {target!r}"
            )
        if ("delta_" in source) != ("delta_" in target):
            return "a temperature difference (delta_...) and a temperature do not convert"
        return "their dimensions differ"

    def _compute(self, source: str, target: str) -> Conversion | None:
        if source == target:
            return Conversion(1.0, 0.0)
        try:
            zero = self._to(0.0, source, target)
            one = self._to(1.0, source, target)
        except Exception:
            return None
        if self._hidden(source) != self._hidden(target):
            return None
        if self._basis(source) != self._basis(target):
            return None
        return Conversion(one - zero, zero)

    def _hidden(self, unit: str) -> dict[str, float]:
        """Exponents of the dimensionless base units (radian, count, bit) in ``unit``."""
        _, root = self._ureg.get_root_units(unit)
        return {
            name: float(exp)
            for name, exp in root._units.items()
            if self._ureg.Unit(name).dimensionless
        }

    def _basis(self, unit: str) -> str | None:
        """For a dimensionless ratio written with units (``mg/kg``, ``ml/l``), the dimension of
        its numerator (``[mass]``); None for plain numbers (``%``, ``ppm``, ``1``) and for
        units with a dimension."""
        parsed = self._ureg.Unit(unit)
        if not parsed.dimensionless:
            return None
        numerator = self._ureg.Unit("dimensionless")
        for name, exp in parsed._units.items():
            if exp > 0:
                numerator = numerator * self._ureg.Unit(name) ** exp
        return None if numerator.dimensionless else str(numerator.dimensionality)

    def _dimensionality_equal(self, source: str, target: str) -> bool:
        try:
            return bool(
                self._ureg.Unit(source).dimensionality == self._ureg.Unit(target).dimensionality
            )
        except Exception:
            return False

    def _to(self, value: float, source: str, target: str) -> float:
        quantity: Any = self._ureg.Quantity(value, source)
        return float(quantity.to(target).magnitude)

    def convert(
        self, values: npt.NDArray[np.float64], source: str, target: str
    ) -> npt.NDArray[np.float64] | None:
        """``values`` (in ``source``) in ``target`` units; None when the units do not convert."""
        conv = self.conversion(source, target)
        if conv is None:
            return None
        return values * conv.scale + conv.offset


def _describe(hidden: dict[str, float]) -> str:
    if not hidden:
        return "counts neither angles nor items"
    words = [_HIDDEN_NAMES.get(name, f"in {name}") for name in sorted(hidden)]
    return " and ".join(words)


def _cache_folder(pint_file: str) -> Path:
    """pint's on-disk cache, one per pint installation.

    pint's ``:auto:`` folder is shared by every environment of the user and its entries name
    the definition files of the installation that wrote them: once that environment is
    deleted, every other one fails to build a registry (FileNotFoundError).
    """
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    install = hashlib.sha256(str(Path(pint_file).resolve()).encode()).hexdigest()[:16]
    return base / "maxlake" / "pint" / install


@lru_cache(maxsize=8)
def unit_system(definitions: tuple[str, ...] = ()) -> UnitSystem:
    """The shared :class:`UnitSystem` for one set of extra definitions (built once, cached)."""
    return UnitSystem(definitions)
