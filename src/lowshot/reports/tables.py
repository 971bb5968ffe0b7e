"""Result tables from ``result.json`` files of GZSL and video-adverb runs.

Rows are runs (or reference rows such as the paper's numbers and chance); columns are
S / U / HM / ZSL as ``mean ± std`` (x100), or for video-adverb runs mAP W / mAP M / Acc-A /
Acc-A (cls) (0-1, three decimals) followed by the selection rule that produced each row
("test-selected (published)" for the paper's numbers). Renders to markdown, CSV, LaTeX or
a rich table.
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
ADVERB_COLUMNS = ("map_w", "map_m", "acc_a", "acc_a_cls")


class RunNotReadable(LowshotError):
    """A run directory given to a report is missing, unfinished or holds no readable result."""


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _is_adverb_result(summary: Any) -> bool:
    return isinstance(summary, dict) and summary.get("config", {}).get("recipe") == "adverbs"


def load_summary(run: Path) -> dict[str, Any]:
    """The aggregated ``result.json`` of a finished GZSL or video-adverb run directory, checked.

    Raises:
        RunNotReadable: ``run`` is missing, a file, unfinished, or its result is neither a GZSL
            summary (``metrics: {S: {mean, std}, ...}``) nor an adverb one (``mean`` / ``std``).
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
    if _is_adverb_result(summary):
        mean, std = summary.get("mean"), summary.get("std")
        if not (isinstance(mean, dict) and isinstance(std, dict) and mean
                and all(_is_number(v) for v in mean.values()) and "selection" in summary):
            raise RunNotReadable(f"{path} is not the result of a video-adverb run "
                                 "(expected numeric 'mean' and 'std' metrics and a 'selection' rule)")
        return summary
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
    """GZSL columns, or the adverb metrics present when any row is a video-adverb row."""
    if any(c in r.values for r in rows for c in ADVERB_COLUMNS):
        return tuple(c for c in ADVERB_COLUMNS if any(c in r.values for r in rows))
    return COLUMNS


def _extra(rows: Sequence[Row]) -> tuple[str, ...]:
    return ("selection",) if any(r.selection for r in rows) else ()


def adverb_rows(summary: dict[str, Any], with_reference: bool = True) -> list[Row]:
    """A video-adverb result (``recipe: adverbs``) and, optionally, its published numbers."""
    n = int(summary.get("n_seeds", 1))
    values = {k: (v, summary["std"][k] if n > 1 else None) for k, v in summary["mean"].items()}
    rows = [Row(f"{summary['name']} ({n} seed{'s' if n > 1 else ''})", values, summary["selection"], 3)]
    expected = summary.get("expected_x100") or {}
    if with_reference and expected:
        table = summary.get("config", {}).get("provenance", {}).get("table", "")
        rows.append(Row(f"published ({table})" if table else "published",
                        {k: (v / 100, None) for k, v in expected.items()}, summary["expected_selection"], 3))
    return rows


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
    """The rows of several run directories, in order.

    A GZSL run gives its mean ± std row and, with ``with_reference``, the paper's row; a
    video-adverb run gives the rows of :func:`adverb_rows`.

    Raises:
        RunNotReadable: a run directory is missing, unfinished or holds no readable result.
    """
    rows: list[Row] = []
    for run in run_dirs:
        summary = load_summary(run)
        if _is_adverb_result(summary):
            rows.extend(adverb_rows(summary, with_reference))
            continue
        rows.append(row_from_summary(summary))
        if with_reference:
            rows.extend(reference_rows(summary))
    return rows


def to_markdown(rows: Sequence[Row]) -> str:
    """A markdown table of ``rows`` (newline-terminated).

    Columns are the GZSL metrics, or the adverb metrics present in any row, plus a
    ``selection`` column when any row has a selection rule.
    """
    cols, extra = _columns(rows), _extra(rows)
    lines = ["| run | " + " | ".join(cols + extra) + " |", "|---|" + "---|" * len(cols + extra)]
    lines += [f"| {r.label} | " + " | ".join([r.cell(c) for c in cols] + [r.selection or "–" for _ in extra]) + " |"
              for r in rows]
    return "\n".join(lines) + "\n"


def to_csv(rows: Sequence[Row]) -> str:
    """CSV text of ``rows``: ``run``, then ``<col>`` and ``<col>_std`` per column (raw numbers).

    Columns are the GZSL metrics, or the adverb metrics present in any row, plus a
    ``selection`` column when any row has a selection rule.
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

    Columns are the GZSL metrics, or the adverb metrics present in any row, plus a
    ``selection`` column when any row has a selection rule.
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

    Columns are the GZSL metrics, or the adverb metrics present in any row, plus a
    ``selection`` column when any row has a selection rule.
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
