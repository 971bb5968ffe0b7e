"""Paper tables: their definitions (``paper_tables/<id>.yaml``), run plan, cost estimate and rendering.

A table file names, per row (a method as printed in the thesis) and column group (a dataset),
the paper setting that produces the cell and the published numbers (x100)::

    table: "3.1"
    title: "GZSL on the cls features (S/U/HM/ZSL; x100)"
    source: "thesis Table 3.1 (Mercea et al., ECCV 2022)"
    family: av_gzsl            # av_gzsl | av_gfsl | adverbs | comm
    columns: [vggsound, ucf, activitynet]
    metrics: [S, U, HM, ZSL]
    rows:
      - label: TCaF
        settings: {vggsound: tcaf.vggsound_cls, ucf: tcaf.ucf_cls, activitynet: tcaf.activitynet_cls}
        published: {ucf: {S: 67.14, U: 40.83, HM: 50.78, ZSL: 44.64}, ...}
        note: ""

A setting that does not exist yet is allowed (the plan lists it as "no setting"). Running the
settings is the CLI's job (``lowshot table``, which calls the recipes); this module plans,
estimates and renders from :class:`~lowshot.utils.results.RunResult` s.

Cost model (``--dry-run``): seconds = seeds x work units x seconds per unit. A unit is one
training batch when the setting has ``train.n_batches`` (GZSL/GFSL: ``2 x epochs x
n_batches``, i.e. stage 1 plus a stage-2 refit as long as stage 1, an upper bound), else one
epoch (``train.epochs``; adverbs), else one policy update (comm: ``loop.interactions /
loop.episodes_per_update``). Seconds per unit are :data:`SECONDS_PER_UNIT` (measured on a
2-core CPU, one thread, published batch sizes; ``docs/benchmarks.md``) or the unit's default
for methods not measured. Evaluation and data loading are not counted.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from lowshot._registry import did_you_mean
from lowshot.config.paper import load_paper_config, paper_config_names
from lowshot.config.schema import load_yaml
from lowshot.errors import ConfigError
from lowshot.utils.results import FAMILIES, RunResult, legacy_options
from lowshot.utils.seed import seed_mean_std

#: seconds per work unit, measured (CPU, 1 thread; docs/benchmarks.md): method -> seconds
SECONDS_PER_UNIT: dict[str, float] = {
    "clipclap": 0.027,  # ClipClap step, batch 64
    "avca": 0.119,  # AVCA step, batch 256, averaged features
    "tcaf": 1.29,  # TCaF step, batch 64, depth 6, packed tokens
    "adverbs.regada": 25.0,  # ReGaDa epoch, 22 steps of batch 512
}
#: seconds per unit of a method not in SECONDS_PER_UNIT
DEFAULT_SECONDS = {"batch": 0.1, "epoch": 1.0, "update": 0.5}
#: the legacy mark of a row whose settings use published-code behaviour
LEGACY_MARK = "†"
TABLE_KEYS = {"table", "title", "source", "family", "columns", "metrics", "rows"}
ROW_KEYS = {"label", "settings", "published", "note"}


@dataclass(frozen=True)
class TableRow:
    """One row: the label printed in the thesis, a setting and published numbers per column group."""

    label: str
    settings: dict[str, str]
    published: dict[str, dict[str, float]]
    note: str = ""


@dataclass(frozen=True)
class TableSpec:
    """A paper table definition (see the module docstring)."""

    table: str
    title: str
    source: str
    family: str
    columns: tuple[str, ...]
    metrics: tuple[str, ...]
    rows: tuple[TableRow, ...]
    path: Path = field(default=Path(), compare=False)


def _tables_dir() -> Path:
    return Path(str(resources.files("lowshot") / "reports" / "paper_tables"))


def table_ids() -> list[str]:
    """The ids of every shipped table (``2.2``, ``A.1``, ...)."""
    return sorted(p.stem for p in _tables_dir().glob("*.yaml"))


def _check(ok: bool, path: Path, key: str, what: str) -> None:
    if not ok:
        raise ConfigError(f"{path}: {key}: {what}")


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def parse_table(data: Any, path: Path) -> TableSpec:
    """Validate a table mapping (read from ``path``, named in errors).

    Raises:
        ConfigError: a missing or unknown key, a wrong type, an unknown family, or a row naming
            a column group or metric the table does not declare (names the file, row and key).
    """
    _check(isinstance(data, dict), path, "(top level)", "must be a mapping")
    unknown = sorted(set(data) - TABLE_KEYS)
    _check(not unknown, path, unknown[0] if unknown else "", f"unknown key{did_you_mean(unknown[0], TABLE_KEYS)}"
           if unknown else "")
    for key in sorted(TABLE_KEYS - {"source"}):
        _check(key in data, path, key, "is missing")
    _check(data["family"] in FAMILIES, path, "family", f"must be one of {list(FAMILIES)}, got {data['family']!r}")
    for key in ("columns", "metrics"):
        v = data[key]
        _check(isinstance(v, list) and v and all(isinstance(x, str) for x in v) and len(set(v)) == len(v),
               path, key, "must be a non-empty list of distinct names")
    columns, metrics = tuple(data["columns"]), tuple(data["metrics"])
    _check(isinstance(data["rows"], list) and data["rows"], path, "rows", "must be a non-empty list")
    rows = []
    for i, row in enumerate(data["rows"]):
        where = f"rows[{i}]"
        _check(isinstance(row, dict), path, where, "must be a mapping")
        where = f"rows[{i}] ({row.get('label', '?')})"
        bad = sorted(set(row) - ROW_KEYS)
        _check(not bad, path, where, f"unknown key '{bad[0]}'{did_you_mean(bad[0], ROW_KEYS)}" if bad else "")
        _check(isinstance(row.get("label"), str) and row["label"], path, where, "needs a label")
        settings, published = row.get("settings", {}), row.get("published", {})
        _check(isinstance(settings, dict) and all(isinstance(v, str) for v in settings.values()), path,
               f"{where}.settings", "must map column groups to setting names")
        _check(isinstance(published, dict), path, f"{where}.published", "must map column groups to metrics")
        for col in (*settings, *published):
            _check(col in columns, path, f"{where}", f"column group '{col}' is not in columns {list(columns)}"
                   f"{did_you_mean(col, columns)}")
        for col, cell in published.items():
            _check(isinstance(cell, dict), path, f"{where}.published.{col}", "must map metrics to numbers")
            for m, v in cell.items():
                _check(m in metrics, path, f"{where}.published.{col}.{m}", f"is not in metrics {list(metrics)}")
                _check(_number(v), path, f"{where}.published.{col}.{m}", f"must be a number, got {v!r}")
        rows.append(TableRow(row["label"], dict(settings), {c: dict(v) for c, v in published.items()},
                             str(row.get("note") or "")))
    labels = [r.label for r in rows]
    dup = next((x for x in labels if labels.count(x) > 1), None)
    _check(dup is None, path, "rows", f"label '{dup}' appears twice")
    return TableSpec(str(data["table"]), str(data["title"]), str(data.get("source", "")), data["family"],
                     columns, metrics, tuple(rows), path)


def load_table(table_id: str) -> TableSpec:
    """The table ``table_id`` (a shipped id such as ``3.1``, or a path to a YAML file).

    Raises:
        ConfigError: unknown id (with a did-you-mean) or an invalid file.
    """
    path = Path(table_id)
    if path.suffix not in {".yaml", ".yml"}:
        path = _tables_dir() / f"{table_id}.yaml"
        if not path.is_file():
            ids = table_ids()
            raise ConfigError(f"unknown paper table '{table_id}'{did_you_mean(table_id, ids)}; known: {', '.join(ids)}")
    return parse_table(load_yaml(path), path)


def select(spec: TableSpec, rows: Sequence[str] = (), columns: Sequence[str] = ()) -> TableSpec:
    """``spec`` restricted to the rows labelled ``rows`` and column groups ``columns`` (empty: all).

    Raises:
        ConfigError: a label or column group the table does not have.
    """
    labels = [r.label for r in spec.rows]
    for x in rows:
        if x not in labels:
            raise ConfigError(f"table {spec.table} has no row '{x}'{did_you_mean(x, labels)}")
    for c in columns:
        if c not in spec.columns:
            raise ConfigError(f"table {spec.table} has no column group '{c}'{did_you_mean(c, spec.columns)}")
    keep_cols = tuple(c for c in spec.columns if not columns or c in columns)
    keep_rows = tuple(
        TableRow(r.label, {c: s for c, s in r.settings.items() if c in keep_cols},
                 {c: p for c, p in r.published.items() if c in keep_cols}, r.note)
        for r in spec.rows if not rows or r.label in rows
    )
    return TableSpec(spec.table, spec.title, spec.source, spec.family, keep_cols, spec.metrics, keep_rows, spec.path)


# --------------------------------------------------------------------------- plan and cost
@dataclass(frozen=True)
class PlannedCell:
    """One (row, column group) cell: its setting, whether it exists, its legacy switches and cost."""

    row: str
    column: str
    setting: str
    exists: bool
    legacy: tuple[str, ...] = ()
    units: float | None = None
    unit: str = ""
    seconds_per_unit: float | None = None
    hint: str = ""  # for a missing setting: "; did you mean ...?" when a close name exists

    def seconds(self, n_seeds: int) -> float | None:
        """Estimated seconds for ``n_seeds`` seeds (None when the setting is missing or has no cost)."""
        if self.units is None or self.seconds_per_unit is None:
            return None
        return n_seeds * self.units * self.seconds_per_unit


def work_units(config: Mapping[str, Any]) -> tuple[float, str] | None:
    """(units, unit name) of one seed of ``config`` under the cost model (module docstring)."""
    train, loop = config.get("train") or {}, config.get("loop") or {}
    if "epochs" in train and "n_batches" in train:
        return 2.0 * train["epochs"] * train["n_batches"], "batch"
    if "epochs" in train:
        return float(train["epochs"]), "epoch"
    if "interactions" in loop:
        return float(loop["interactions"]) / float(loop.get("episodes_per_update", 3)), "update"
    return None


def _hint(setting: str, names: set[str]) -> str:
    """A did-you-mean among the settings of the same family (a typo, not a method still to come)."""
    family = setting.split(".")[0]
    return did_you_mean(setting, sorted(n for n in names if n.split(".")[0] == family))


def plan_table(spec: TableSpec, overrides: Sequence[str] = ()) -> list[PlannedCell]:
    """The cells of ``spec`` in row-major order, each resolved with ``overrides``."""
    names = set(paper_config_names())
    cells = []
    for row in spec.rows:
        for col in spec.columns:
            setting = row.settings.get(col)
            if setting is None:
                continue
            if setting not in names:
                cells.append(PlannedCell(row.label, col, setting, False, hint=_hint(setting, names)))
                continue
            config = load_paper_config(setting, list(overrides))
            cost = work_units(config)
            units, unit = cost if cost is not None else (None, "")
            method = str(config.get("method", ""))
            spu = SECONDS_PER_UNIT.get(method, DEFAULT_SECONDS.get(unit)) if unit else None
            cells.append(PlannedCell(row.label, col, setting, True, legacy_options(config), units, unit, spu))
    return cells


def format_duration(seconds: float) -> str:
    """``seconds`` as ``1.5 h`` / ``12 min`` / ``40 s``."""
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


def format_plan(spec: TableSpec, cells: Sequence[PlannedCell], seeds: Sequence[int],
                done: Mapping[tuple[str, int], bool] | None = None) -> str:
    """The run plan: every row x column setting x seeds, missing settings, legacy switches and the
    estimated cost (``done``: (setting, seed) -> finished already, not counted)."""
    done = done or {}
    lines = [f"Table {spec.table}: {spec.title}", f"seeds: {' '.join(map(str, seeds))}", ""]
    total, runs, missing, unknown = 0.0, 0, [], 0
    for row in spec.rows:
        lines.append(f"{row.label}:")
        for c in (c for c in cells if c.row == row.label):
            if not c.exists:
                lines.append(f"  {c.column:12s} {c.setting:34s} no setting{c.hint}")
                missing.append(c.setting)
                continue
            todo = [s for s in seeds if not done.get((c.setting, s))]
            secs = c.seconds(len(todo))
            runs += len(todo)
            if secs is None:
                unknown += len(todo)
            else:
                total += secs
            cost = "?" if secs is None else format_duration(secs)
            what = f"{len(todo)} run(s), ~{cost}" if todo else "all seeds finished (collected)"
            legacy = f"  {LEGACY_MARK} legacy: {', '.join(c.legacy)}" if c.legacy else ""
            lines.append(f"  {c.column:12s} {c.setting:34s} {what}{legacy}")
    lines += ["", f"{runs} run(s) to do over {len([c for c in cells if c.exists])} setting(s); "
              f"{len(missing)} cell(s) without a setting" + (f": {', '.join(missing)}" if missing else ""),
              f"estimated cost: ~{format_duration(total)}" + (f" (+ {unknown} run(s) of unknown cost)" if unknown else ""),
              "cost model: seeds x units x seconds/unit; unit = a training batch (2 x epochs x n_batches: stage 1 + "
              "a refit as long), an epoch (adverbs) or a policy update (comm); seconds/unit measured on a 2-core "
              f"CPU, 1 thread ({', '.join(f'{k} {v:g}' for k, v in SECONDS_PER_UNIT.items())}), else "
              f"{', '.join(f'{k} {v:g}' for k, v in DEFAULT_SECONDS.items())}; evaluation not counted"]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- rendering
@dataclass(frozen=True)
class CellResult:
    """Our numbers of one cell (x100): metric -> (mean, std) over the seeds that finished."""

    values: dict[str, tuple[float, float]]
    n_seeds: int


@dataclass(frozen=True)
class Problem:
    """A cell that could not run: row, column group, setting and why."""

    row: str
    column: str
    setting: str
    reason: str


def cell_result(results: Sequence[RunResult]) -> CellResult:
    """Mean and population std (x100) over the one-seed-or-more ``results`` of a cell, per metric."""
    per_seed = []
    for r in results:
        for seed in r.per_seed:
            scale = 100.0 if r.unit == "fraction" else 1.0
            per_seed.append({k: v * scale for k, v in r.per_seed[seed].items()})
    stats = seed_mean_std(per_seed)
    return CellResult({k: (s["mean"], s["std"]) for k, s in stats.items()}, len(per_seed))


@dataclass(frozen=True)
class RenderedTable:
    """What the table shows: the spec, our cells, problems and legacy switches per row."""

    spec: TableSpec
    cells: dict[tuple[str, str], CellResult]
    problems: tuple[Problem, ...]
    legacy: dict[str, tuple[str, ...]]

    def label(self, row: TableRow) -> str:
        """The row label, with the legacy mark when a setting of the row uses a legacy option."""
        return row.label + (f" {LEGACY_MARK}" if self.legacy.get(row.label) else "")

    def text(self, row: TableRow, col: str, metric: str) -> str:
        """``ours ± std (published)``, ``– (published)`` or ``–``."""
        pub = row.published.get(col, {}).get(metric)
        ours = self.cells.get((row.label, col))
        mine = "–"
        if ours is not None and metric in ours.values:
            mean, std = ours.values[metric]
            mine = f"{mean:.2f} ± {std:.2f}" if ours.n_seeds > 1 else f"{mean:.2f}"
        return mine if pub is None else f"{mine} ({pub:.2f})"

    def footer(self) -> list[str]:
        """Notes: how to read a cell, the legacy switches, the rows' notes, the rows that could not run."""
        lines = ["Cells: ours, mean ± std over seeds (x100), published in parentheses."]
        for label, keys in self.legacy.items():
            if keys:
                lines.append(f"{LEGACY_MARK} {label}: published-code behaviour on ({', '.join(keys)})")
        lines += [f"{r.label}: {r.note}" for r in self.spec.rows if r.note]
        if self.problems:
            lines.append("Not run:")
            lines += [f"- {p.row} / {p.column} ({p.setting}): {p.reason}" for p in self.problems]
        return lines


def render_markdown(t: RenderedTable) -> str:
    """The table in the thesis layout as markdown (column group x metric), then the notes."""
    s = t.spec
    head = ["Model", *(f"{c} {m}" for c in s.columns for m in s.metrics)]
    lines = [f"**Table {s.table}**: {s.title}", "", "| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    lines += ["| " + " | ".join([t.label(r), *(t.text(r, c, m) for c in s.columns for m in s.metrics)]) + " |"
              for r in s.rows]
    return "\n".join(lines + [""] + t.footer()) + "\n"


def render_latex(t: RenderedTable) -> str:
    """A booktabs ``tabular`` with one multicolumn group per dataset, then the notes as comments."""
    s = t.spec
    tex = lambda x: x.replace("_", r"\_").replace("%", r"\%").replace("±", r"$\pm$").replace(LEGACY_MARK, r"$^\dagger$")  # noqa: E731
    n = len(s.metrics)
    lines = [r"\begin{tabular}{l" + ("|" + "c" * n) * len(s.columns) + "}", r"\toprule",
             " & " + " & ".join(rf"\multicolumn{{{n}}}{{c}}{{{tex(c)}}}" for c in s.columns) + r" \\",
             "Model & " + " & ".join(tex(m) for _ in s.columns for m in s.metrics) + r" \\", r"\midrule"]
    lines += [" & ".join([tex(t.label(r)), *(tex(t.text(r, c, m)) for c in s.columns for m in s.metrics)]) + r" \\"
              for r in s.rows]
    lines += [r"\bottomrule", r"\end{tabular}"] + [f"% {tex(x)}" for x in t.footer()]
    return "\n".join(lines) + "\n"


def render_csv(t: RenderedTable) -> str:
    """One line per row: label, legacy flag, then published / mean / std / seeds per column group x metric."""
    s = t.spec
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["row", "legacy"] + [f"{c}/{m}/{k}" for c in s.columns for m in s.metrics
                                    for k in ("published", "mean", "std", "seeds")])
    for r in s.rows:
        cells: list[Any] = [r.label, ";".join(t.legacy.get(r.label, ()))]
        for c in s.columns:
            ours = t.cells.get((r.label, c))
            for m in s.metrics:
                mean, std = ours.values.get(m, (None, None)) if ours else (None, None)
                cells += [r.published.get(c, {}).get(m), mean, std, ours.n_seeds if ours and mean is not None else 0]
        w.writerow(cells)
    return buf.getvalue()


RENDERERS = {"md": render_markdown, "latex": render_latex, "csv": render_csv}

__all__ = [
    "CellResult", "PlannedCell", "Problem", "RENDERERS", "RenderedTable", "TableRow", "TableSpec", "cell_result",
    "format_plan", "load_table", "parse_table", "plan_table", "select", "table_ids", "work_units",
]
