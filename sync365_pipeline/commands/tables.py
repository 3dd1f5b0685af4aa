"""Tables fitted to a terminal: what `sync365 status` and `sync365 renewals` print."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from sync365_pipeline.core.redaction import redact

# The widths long text (names, messages) is cut to, widest first, while a table is too wide;
# below the narrowest, columns are left out instead.
TEXT_WIDTHS = (80, 60, 40, 30, 20)
GAP = "  "


def fitted_table(
    frame: pd.DataFrame,
    columns: Mapping[str, str],
    width: int,
    *,
    cut: Sequence[str],
    keep: int = 2,
) -> str:
    """`frame`'s `columns` (column: heading, the most needed first) as a plain table at most
    `width` wide: the `cut` columns' text shortened (to `TEXT_WIDTHS`), then the least
    needed columns left out, down to `keep` of them (which may then be wider than `width`).
    Text is aligned left, numbers right. Each cell is redacted before it is cut: a cut secret
    might no longer look like one."""
    chosen = frame[list(columns)].rename(columns=columns)
    numeric = {heading for heading in chosen if pd.api.types.is_numeric_dtype(chosen[heading])}
    shown = chosen.astype(str).map(redact).where(chosen.notna(), "")
    cut_headings = [columns[column] for column in cut]
    table = ""
    for count in range(len(columns), keep - 1, -1):
        for text_width in TEXT_WIDTHS:
            trimmed = shown.iloc[:, :count].copy()
            for heading in cut_headings:
                if heading in trimmed:
                    trimmed[heading] = trimmed[heading].map(lambda t, w=text_width: _cut(t, w))
            table = _plain(trimmed, numeric)
            if max(map(len, table.splitlines())) <= width:
                return table
    return table


def _plain(frame: pd.DataFrame, numeric: set[str]) -> str:
    """A heading line and one line per row, columns two spaces apart, no trailing spaces."""
    widths = {heading: max([len(heading), *map(len, frame[heading])]) for heading in frame}

    def line(cells: Sequence[str]) -> str:
        aligned = (
            cell.rjust(widths[heading]) if heading in numeric else cell.ljust(widths[heading])
            for heading, cell in zip(frame.columns, cells, strict=True)
        )
        return GAP.join(aligned).rstrip()

    return "\n".join([line(list(frame.columns)), *(line(row) for row in frame.to_numpy())])


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "\u2026"
