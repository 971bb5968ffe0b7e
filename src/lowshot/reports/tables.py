"""Result tables from the ``result.json`` of run directories (:mod:`lowshot.utils.results`).

Rows are runs (or reference rows such as the paper's numbers and chance); columns are their
metrics as ``mean ± std``: S / U / HM / ZSL (x100), or for video-adverb runs mAP W / mAP M /
Acc-A / Acc-A (cls) (0-1, three decimals), followed by the selection rule that produced each
row ("test-selected (published)" for the adverb papers' numbers). Renders to markdown, CSV,
LaTeX or a rich table.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lowshot.utils.results import RunNotReadable, RunResult, read_result

COLUMNS = ("S", "U", "HM", "ZSL")
ADVERB_COLUMNS = ("map_w", "map_m", "acc_a", "acc_a_cls")


@dataclass(frozen=True)
class Row:
    """One table row: a label, per-column (mean, std or None) and the selection rule."""

    label: str
    values: dict[str, tuple[float, float | None]]
    selection: str | None = None
    digits: int = 2

    def cell(self, column: str, digits: int | None = None) -> str:
        """``column`` as ``mean`` or ``mean ± std`` with ``digits`` decimals (default: the row's); "–" if absent."""
        if column not in self.values:
            return "–"
        d = self.digits if digits is None else digits
        mean, std = self.values[column]
        return f"{mean:.{d}f}" if std is None else f"{mean:.{d}f} ± {std:.{d}f}"


def _columns(rows: Sequence[Row]) -> tuple[str, ...]:
    """The metrics of any row: the known GZSL / adverb orders first, then the rest as they appear."""
    present = list(dict.fromkeys(c for r in rows for c in r.values))
    known = [c for c in (*COLUMNS, *ADVERB_COLUMNS) if c in present]
    return tuple(known + [c for c in present if c not in known])


def _extra(rows: Sequence[Row]) -> tuple[str, ...]:
    return ("selection",) if any(r.selection for r in rows) else ()


def result_rows(result: RunResult, label: str | None = None, with_reference: bool = True) -> list[Row]:
    """The row of a run (mean ± std over its seeds; std shown from two seeds on) and, with
    ``with_reference``, the paper's row (``expected``, x100, shown in the run's unit).

    GZSL numbers (x100) print with two decimals, fractions (adverbs, comm) with three.
    """
    n = len(result.seeds) or 1
    digits = 3 if result.unit == "fraction" else 2
    values = {k: (m.mean, m.std if n > 1 else None) for k, m in result.metrics.items()}
    rows = [Row(label or f"{result.setting} ({n} seed{'s' if n > 1 else ''})", values, result.selection, digits)]
    expected = {k: v for k, v in result.expected.items() if k in result.metrics}
    if with_reference and expected:
        paper, table = str(result.provenance.get("paper", "")), str(result.provenance.get("table", ""))
        table = table if not table or table.startswith("Table") else f"Table {table}"
        where = ", ".join(x for x in (paper.split(" (")[0], table) if x)  # paper without its parenthesis
        scale = 100.0 if result.unit == "fraction" else 1.0
        rows.append(Row(f"published ({where})" if where else "published",
                        {k: (v / scale, None) for k, v in expected.items()},
                        result.extra.get("expected_selection"), digits))
    return rows


def load_rows(run_dirs: Sequence[Path], with_reference: bool = True) -> list[Row]:
    """The rows of several run directories (:func:`result_rows` of each), in order.

    Raises:
        RunNotReadable: a run directory is missing, unfinished or holds no readable result.
    """
    return [row for run in run_dirs for row in result_rows(read_result(run), with_reference=with_reference)]


def to_markdown(rows: Sequence[Row]) -> str:
    """A markdown table of ``rows`` (newline-terminated).

    Columns are the metrics of any row (:func:`_columns`), plus a ``selection`` column when
    any row has a selection rule.
    """
    cols, extra = _columns(rows), _extra(rows)
    lines = ["| run | " + " | ".join(cols + extra) + " |", "|---|" + "---|" * len(cols + extra)]
    lines += [f"| {r.label} | " + " | ".join([r.cell(c) for c in cols] + [r.selection or "–" for _ in extra]) + " |"
              for r in rows]
    return "\n".join(lines) + "\n"


def to_csv(rows: Sequence[Row]) -> str:
    """CSV text of ``rows``: ``run``, then ``<col>`` and ``<col>_std`` per column (raw numbers).

    Columns are the metrics of any row (:func:`_columns`), plus a ``selection`` column when
    any row has a selection rule.
    """
    cols, extra = _columns(rows), _extra(rows)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["run"] + [f"{c}{s}" for c in cols for s in ("", "_std")] + list(extra))
    for r in rows:
        cells: list[Any] = [r.label]
        for c in cols:
            mean, std = r.values.get(c, (None, None))
            cells += [mean, std]
        writer.writerow(cells + [r.selection for _ in extra])
    return buf.getvalue()


def to_latex(rows: Sequence[Row]) -> str:
    """A booktabs LaTeX ``tabular`` of ``rows`` (``_`` and ``%`` escaped).

    Columns are the metrics of any row (:func:`_columns`), plus a ``selection`` column when
    any row has a selection rule.
    """
    cols, extra = _columns(rows), _extra(rows)
    tex = lambda x: x.replace("_", r"\_").replace("%", r"\%")  # noqa: E731
    body = [" & ".join([tex(r.label)] + [r.cell(c).replace("±", r"$\pm$") for c in cols]
                       + [tex(r.selection or "–") for _ in extra]) + r" \\"
            for r in rows]
    head = "Run & " + " & ".join(tex(c) for c in cols + extra) + r" \\"
    return "\n".join([r"\begin{tabular}{l" + "c" * len(cols) + "l" * len(extra) + "}", r"\toprule",
                      head, r"\midrule", *body, r"\bottomrule", r"\end{tabular}"]) + "\n"


def to_rich(rows: Sequence[Row], title: str = "") -> Any:
    """A ``rich.table.Table`` of ``rows`` with an optional title.

    Columns are the metrics of any row (:func:`_columns`), plus a ``selection`` column when
    any row has a selection rule.
    """
    from rich.table import Table

    cols, extra = _columns(rows), _extra(rows)
    table = Table(title=title or None)
    table.add_column("run")
    for c in cols:
        table.add_column(c, justify="right")
    for c in extra:
        table.add_column(c)
    for r in rows:
        table.add_row(r.label, *(r.cell(c) for c in cols), *(r.selection or "–" for _ in extra))
    return table


__all__ = ["Row", "RunNotReadable", "load_rows", "result_rows", "to_csv", "to_latex", "to_markdown", "to_rich"]
