"""The C-MAPSS engines as assets of the reference tenant: ids, the machine type and its tags.

One sub-dataset (``fd001``) is one plant of tenant :data:`TENANT`; its training engines
(run to failure) are machines of line ``train``, its test engines (cut off before failure) of
line ``test``; engine 7 of the FD001 training file is machine ``fd001-train-007``. The tags are
the 3 operational settings and the 21 sensors with the units of the NASA documentation
(Saxena et al., 2008); the physical ranges are wide enough for every sub-dataset (sea level to
42,000 ft), so a reading outside them is a real fault of the file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "MACHINE_TYPE",
    "TAGS",
    "TENANT",
    "TEST_LINE",
    "TRAIN_LINE",
    "UNITS",
    "CmapssTag",
    "machine_id",
    "registry_fragment",
]

TENANT = "nasa-cmapss"
"""The reference tenant holding public benchmark data."""

MACHINE_TYPE = "turbofan_cmapss"
TRAIN_LINE = "train"
TEST_LINE = "test"


@dataclass(frozen=True)
class CmapssTag:
    """One column of the run files as a registry tag.

    Attributes:
        tag: tag id (the NASA symbol; ``op_setting_N`` for the settings).
        column: 0-based index among the 24 value columns (settings 1-3, sensors 1-21).
        unit: unit of the NASA documentation (``1`` = dimensionless).
        min: physical minimum (unit).
        max: physical maximum (unit).
        nominal: typical FD001 value (unit).
        meaning: what the column measures.
    """

    tag: str
    column: int
    unit: str
    min: float
    max: float
    nominal: float
    meaning: str


_DEFS: tuple[tuple[str, str, float, float, float, str], ...] = (
    ("op_setting_1", "1", -100.0, 100.0, 0.0, "operational setting 1 (altitude in FD002/FD004)"),
    ("op_setting_2", "1", -10.0, 10.0, 0.0, "operational setting 2 (Mach number in FD002/FD004)"),
    ("op_setting_3", "1", 0.0, 200.0, 100.0, "operational setting 3 (throttle resolver angle)"),
    ("T2", "degR", 300.0, 700.0, 518.67, "sensor 1: total temperature at fan inlet"),
    ("T24", "degR", 400.0, 900.0, 642.5, "sensor 2: total temperature at LPC outlet"),
    ("T30", "degR", 1000.0, 2000.0, 1590.0, "sensor 3: total temperature at HPC outlet"),
    ("T50", "degR", 900.0, 1800.0, 1409.0, "sensor 4: total temperature at LPT outlet"),
    ("P2", "psia", 0.0, 30.0, 14.62, "sensor 5: pressure at fan inlet"),
    ("P15", "psia", 0.0, 50.0, 21.61, "sensor 6: total pressure in bypass duct"),
    ("P30", "psia", 0.0, 1000.0, 553.4, "sensor 7: total pressure at HPC outlet"),
    ("Nf", "rpm", 0.0, 5000.0, 2388.1, "sensor 8: physical fan speed"),
    ("Nc", "rpm", 0.0, 15000.0, 9065.0, "sensor 9: physical core speed"),
    ("epr", "1", 0.0, 5.0, 1.3, "sensor 10: engine pressure ratio (P50/P2)"),
    ("Ps30", "psia", 0.0, 100.0, 47.5, "sensor 11: static pressure at HPC outlet"),
    ("phi", "pps/psi", 0.0, 1000.0, 521.4, "sensor 12: ratio of fuel flow to Ps30"),
    ("NRf", "rpm", 0.0, 5000.0, 2388.1, "sensor 13: corrected fan speed"),
    ("NRc", "rpm", 0.0, 15000.0, 8143.0, "sensor 14: corrected core speed"),
    ("BPR", "1", 0.0, 20.0, 8.44, "sensor 15: bypass ratio"),
    ("farB", "1", 0.0, 1.0, 0.03, "sensor 16: burner fuel-air ratio"),
    ("htBleed", "1", 0.0, 1000.0, 393.0, "sensor 17: bleed enthalpy"),
    ("Nf_dmd", "rpm", 0.0, 5000.0, 2388.0, "sensor 18: demanded fan speed"),
    ("PCNfR_dmd", "rpm", 0.0, 200.0, 100.0, "sensor 19: demanded corrected fan speed"),
    ("W31", "lbm/s", 0.0, 100.0, 38.8, "sensor 20: HPT coolant bleed"),
    ("W32", "lbm/s", 0.0, 100.0, 23.3, "sensor 21: LPT coolant bleed"),
)

TAGS: tuple[CmapssTag, ...] = tuple(
    CmapssTag(tag, i, unit, lo, hi, nominal, meaning)
    for i, (tag, unit, lo, hi, nominal, meaning) in enumerate(_DEFS)
)
"""The 24 value columns of a run file, in file order."""


UNITS: tuple[tuple[str, str, str], ...] = (
    ("psia", "psi", "pounds per square inch, absolute"),
    ("lbm", "pound", "pound mass"),
    ("pps", "pound / second", "pounds (mass) per second"),
)
"""Units of the NASA documentation pint does not know (or reads otherwise), as registry units."""


def machine_id(subset: str, line: str, engine: int) -> str:
    """``<subset>-<line>-<engine, 3 digits>``, e.g. ``fd001-train-007``."""
    return f"{subset}-{line}-{engine:03d}"


def registry_fragment(subsets: Mapping[str, tuple[Sequence[int], Sequence[int]]]) -> str:
    """The registry additions for the imported sub-datasets, as registry TOML.

    Args:
        subsets: sub-dataset (``fd001``) -> (training engine numbers, test engine numbers).

    Returns:
        TOML text with the machine type :data:`MACHINE_TYPE`, the :data:`UNITS` and tenant
        :data:`TENANT` with one plant per sub-dataset, lines ``train`` and ``test``.
    """
    out = [
        f"[machine_types.{MACHINE_TYPE}]",
        'description = "Turbofan engine of the NASA C-MAPSS simulation (Saxena et al., 2008)"',
        "tags = [",
    ]
    for t in TAGS:
        out.append(
            f'  {{ tag = "{t.tag}", unit = "{t.unit}", min = {t.min!r}, max = {t.max!r}, '
            f"nominal = {t.nominal!r} }},"
        )
    out += ["]", ""]
    for symbol, definition, meaning in UNITS:
        out += [
            "[[units]]",
            f'symbol = "{symbol}"',
            f'definition = "{definition}"',
            f'description = "{meaning}"',
            "",
        ]
    out += [
        "[[tenants]]",
        f'id = "{TENANT}"',
        'name = "NASA C-MAPSS turbofan run-to-failure data (public domain reference)"',
        'industry = "aerospace"',
    ]
    for subset in sorted(subsets):
        train, test = subsets[subset]
        out += [
            "",
            "[[tenants.plants]]",
            f'id = "{subset}"',
            f'name = "C-MAPSS sub-dataset {subset.upper()}"',
            'timezone = "UTC"',
        ]
        for line, engines, what in (
            (TRAIN_LINE, train, "training engines, run to failure"),
            (TEST_LINE, test, "test engines, cut off before failure"),
        ):
            out += [
                "",
                "[[tenants.plants.lines]]",
                f'id = "{line}"',
                f'name = "{subset.upper()} {what}"',
                "machines = [",
                *(
                    f'  {{ id = "{machine_id(subset, line, e)}", '
                    f'machine_type = "{MACHINE_TYPE}" }},'
                    for e in engines
                ),
                "]",
            ]
    return "\n".join(out) + "\n"
