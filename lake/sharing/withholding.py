"""Monotonic withholding of a set's structure columns across its versions.

A structure column (``tenant``, ``plant``, ``line``) is published only when every contract of a
build releases it. Decided per build, the column would reappear in the next version when the
last company not releasing it leaves, and tell every partner that such a company left. So once
a version of a set built under contracts (the only ones served) has withheld a column, every
later one withholds it too, whatever its contracts say, until the lake operator resets it by
name for one build
(``build_dataset(..., reset_withheld=["plant"])``, ``maxlake datasets build --reset-withheld
plant``). The stored manifest records what was withheld, what was carried over from which
version, and what was reset, so the decision can be audited.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from lake.sharing.errors import WithholdingResetError

__all__ = ["STRUCTURE", "Withholding", "withholding"]

STRUCTURE = ("tenant", "plant", "line")
"""Columns that give away a company's shape; withheld unless every contract releases them."""


@dataclass(frozen=True)
class Withholding:
    """What the set's previous published version withheld, and what the operator resets.

    Attributes:
        previous_version: the set's latest published version, or None for a first version.
        previous: the structure columns that version withheld.
        reset: columns the operator lets this build decide afresh from its contracts.
    """

    previous_version: int | None = None
    previous: frozenset[str] = frozenset()
    reset: tuple[str, ...] = ()

    @property
    def carried(self) -> frozenset[str]:
        """Columns withheld because the previous version withheld them (and were not reset)."""
        return self.previous - set(self.reset)

    def record(self, withheld: Collection[str], by_contracts: Collection[str]) -> dict[str, Any]:
        """The manifest's audit entries: ``withheld_columns`` (all), ``withheld_carried``
        (withheld only because ``previous_version`` withheld them), ``withheld_reset`` and
        ``withheld_previous_version``."""
        return {
            "withheld_columns": [c for c in STRUCTURE if c in withheld],
            "withheld_carried": [c for c in STRUCTURE if c in self.carried - set(by_contracts)],
            "withheld_reset": list(self.reset),
            "withheld_previous_version": self.previous_version,
        }


def withholding(
    dataset: str,
    previous: tuple[int, Mapping[str, Any] | None] | None,
    reset: Collection[str] = (),
) -> Withholding:
    """The withholding a new version of ``dataset`` inherits.

    Args:
        dataset: the set's name (for messages).
        previous: (version, stored manifest ``sharing`` entry or None) of the set's latest
            published version, or None when there is none. Versions from before this record
            existed are read from their disclosure report; a version built without contracts
            withheld nothing.
        reset: structure columns to decide afresh from this build's contracts.

    Raises:
        WithholdingResetError: ``reset`` names a column the previous version did not withhold.
    """
    version = previous[0] if previous is not None else None
    sharing = (previous[1] if previous is not None else None) or {}
    recorded = sharing.get("withheld_columns")
    if recorded is None:
        recorded = (sharing.get("disclosure") or {}).get("withheld_columns", [])
    withheld = frozenset(c for c in recorded if c in STRUCTURE)
    for column in reset:
        if column not in withheld:
            shown = ", ".join(c for c in STRUCTURE if c in withheld) or "nothing"
            where = f"v{version}" if version is not None else "no earlier version"
            raise WithholdingResetError(
                f"dataset {dataset!r}: cannot reset the withholding of {column!r}: {where} "
                f"withheld {shown}; name only columns the latest version withheld"
            )
    return Withholding(version, withheld, tuple(c for c in STRUCTURE if c in set(reset)))
