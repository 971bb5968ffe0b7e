"""Result tables from ``result.json`` files of GZSL runs.

Rows are runs (or reference rows such as the paper's numbers and chance); columns are
S / U / HM / ZSL as ``mean ± std`` (x100). Renders to markdown, CSV, LaTeX or a rich table.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lowshot.errors import LowshotError
from lowshot.utils.io import read_json

COLUMNS = ("S", "U", "HM", "ZSL")


class RunNotReadable(LowshotError):
    """A run directory given to a report is missing, unfinished or not a GZSL run."""


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def load_summary(run: Path) -> dict[str, Any]:
    """The aggregated ``result.json`` of a finished GZSL run directory, checked.

    Raises:
        RunNotReadable: ``run`` is missing, a file, unfinished, or its result is not a GZSL summary.
        CorruptFileError: ``result.json`` is not valid JSON.
    """
    run = Path(run)
    path = run / "result.json"
    if not run.exists():
        raise RunNotReadable(f"run dir {run} does not exist")
    if not run.is_dir():
        raise RunNotReadable(f"{run} is a file, not a run dir (pass the folder that holds result.json)")
    if not path.is_file():
        why = ("the run has not finished (killed or still running); rerun its command to resume it"
               if (run / "config.yaml").exists() else "this is not a lowshot run dir")
        raise RunNotReadable(f"{run} has no result.json: {why}")
    summary = read_json(path)
    metrics = summary.get("metrics") if isinstance(summary, dict) else None
    if not isinstance(metrics, dict) or not all(
        isinstance(metrics.get(k), dict) and _is_number(metrics[k].get("mean"))
        and (metrics[k].get("std") is None or _is_number(metrics[k]["std"]))
        for k in COLUMNS
    ):
        raise RunNotReadable(
            f"{path} is not the result of a GZSL run (expected metrics {list(COLUMNS)} with a numeric mean and std)"
        )
    return summary


@dataclass(frozen=True)
class Row:
    """One table row: a label and per-column (mean, std or None)."""

    label: str
    values: dict[str, tuple[float, float | None]]

    def cell(self, column: str, digits: int = 2) -> str:
        if column not in self.values:
            return "–"
        mean, std = self.values[column]
        return f"{mean:.{digits}f}" if std is None else f"{mean:.{digits}f} ± {std:.{digits}f}"


def row_from_summary(summary: dict[str, Any], label: str | None = None) -> Row:
    """Row of an aggregated run result (``metrics: {S: {mean, std}, ...}``)."""
    metrics = summary["metrics"]
    n = len(summary.get("seeds", [])) or 1
    values = {k: (v["mean"], v.get("std") if n > 1 else None) for k, v in metrics.items() if k in COLUMNS}
    return Row(label or f"{summary.get('name', 'run')} ({n} seed{'s' if n > 1 else ''})", values)


def reference_rows(summary: dict[str, Any]) -> list[Row]:
    """The paper's expected numbers (when the config carries them)."""
    expected = summary.get("expected") or {}
    if not expected:
        return []
    prov = summary.get("provenance", {})
    where = ", ".join(x for x in (prov.get("paper", ""), f"Table {prov['table']}" if prov.get("table") else "") if x)
    return [Row(f"published ({where})" if where else "published", {k: (v, None) for k, v in expected.items() if k in COLUMNS and _is_number(v)})]


def load_rows(run_dirs: Sequence[Path], with_reference: bool = True) -> list[Row]:
    rows: list[Row] = []
    for run in run_dirs:
        summary = load_summary(run)
        rows.append(row_from_summary(summary))
        if with_reference:
            rows.extend(reference_rows(summary))
    return rows


def to_markdown(rows: Sequence[Row]) -> str:
    lines = ["| run | " + " | ".join(COLUMNS) + " |", "|---|" + "---|" * len(COLUMNS)]
    lines += [f"| {r.label} | " + " | ".join(r.cell(c) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def to_csv(rows: Sequence[Row]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["run"] + [f"{c}{s}" for c in COLUMNS for s in ("", "_std")])
    for r in rows:
        cells: list[Any] = [r.label]
        for c in COLUMNS:
            mean, std = r.values.get(c, (None, None))
            cells += [mean, std]
        writer.writerow(cells)
    return buf.getvalue()


def to_latex(rows: Sequence[Row]) -> str:
    body = [" & ".join([r.label.replace("_", r"\_")] + [r.cell(c).replace("±", r"$\pm$") for c in COLUMNS]) + r" \\"
            for r in rows]
    return "\n".join([r"\begin{tabular}{l" + "c" * len(COLUMNS) + "}", r"\toprule",
                      "Run & " + " & ".join(COLUMNS) + r" \\", r"\midrule", *body, r"\bottomrule", r"\end{tabular}"]) + "\n"


def to_rich(rows: Sequence[Row], title: str = "") -> Any:
    from rich.table import Table

    table = Table(title=title or None)
    table.add_column("run")
    for c in COLUMNS:
        table.add_column(c, justify="right")
    for r in rows:
        table.add_row(r.label, *(r.cell(c) for c in COLUMNS))
    return table
