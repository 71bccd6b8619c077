"""Plain-text tables for the terminal, each column as wide as its widest cell."""

from __future__ import annotations

from collections.abc import Sequence


def render_table(header: Sequence[str], rows: Sequence[Sequence[object]], right: str = "") -> str:
    """The table as lines joined by newlines, columns separated by two spaces.

    ``header`` names the columns; each row has one cell per column (``None`` prints as ``-``,
    integers with thousands separators). A column whose header appears in ``right`` (a
    space-separated list of header names) is right-aligned; the last column is never padded.
    """
    right_aligned = set(right.split())
    cells = [list(header)] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    out: list[str] = []
    for line in cells:
        parts = []
        for i, text in enumerate(line):
            if i == len(line) - 1 and header[i] not in right_aligned:
                parts.append(text)
            elif header[i] in right_aligned:
                parts.append(text.rjust(widths[i]))
            else:
                parts.append(text.ljust(widths[i]))
        out.append("  ".join(parts).rstrip())
    return "\n".join(out)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)
