"""``lowshot table <id>``: run or collect every setting of a paper table over seeds and render it.

Each (setting, seed) runs through the setting's recipe (as ``lowshot reproduce`` does) into
``<out>/<setting>/seed_<s>/``. A run dir holding a readable result is collected, never rerun;
an unfinished one resumes (the recipes resume from their checkpoints), so the command can be
killed and restarted any number of times. ``--set`` overrides apply to every run.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from lowshot.errors import DataError, LowshotError
from lowshot.reports.paper_tables import (
    RENDERERS,
    PlannedCell,
    Problem,
    RenderedTable,
    cell_result,
    format_plan,
    load_table,
    plan_table,
    select,
)
from lowshot.sweep import Job, finished, run_dir, run_job
from lowshot.utils.results import RunResult

DEFAULT_SEEDS = (42, 43, 44)


def run_one(setting: str, seed: int, overrides: Sequence[str], path: Path, data_root: Path | None) -> RunResult | None:
    """Collect or run ``setting`` for ``seed`` in ``path`` (the sweep's job: claimed by a lock
    file, so two processes never run it twice); None while another process holds it."""
    return run_job(Job(setting, seed, path, tuple(overrides)), data_root)[1]


def collect(cells: Sequence[PlannedCell], seeds: Sequence[int], out: Path, overrides: Sequence[str],
            data_root: Path | None, run: bool, log=print) -> tuple[dict, list[Problem]]:
    """Run (when ``run``) or collect every existing cell over ``seeds``.

    Returns:
        (row, column) -> :class:`~lowshot.reports.paper_tables.CellResult`, and the problems
        (no setting, missing features, an error, or not run with ``--collect-only``).
    """
    results, problems = {}, []
    for c in cells:
        if not c.exists:
            problems.append(Problem(c.row, c.column, c.setting, f"no setting (not implemented yet){c.hint}"))
            continue
        got, missing, why = [], [], None
        for seed in seeds:
            path = run_dir(out, c.setting, seed)
            res = finished(path)
            if res is None and run and why is None:
                log(f"[{c.setting} seed {seed}] running in {path}")
                try:
                    res = run_one(c.setting, seed, overrides, path, data_root)
                except DataError as err:
                    why = f"missing features: {err}"
                except (LowshotError, OSError, RuntimeError, ValueError) as err:
                    why = f"error: {type(err).__name__}: {err}"
            elif res is not None:
                log(f"[{c.setting} seed {seed}] collected from {path}")
            if res is not None:
                got.append(res)
                continue
            missing.append(seed)
            if run and why is None:
                why = "being run by another process (lock file)"
        if got:
            results[(c.row, c.column)] = cell_result(got)
        if missing:
            reason = why or ("not run (--collect-only)" if not run else "unfinished")
            if got:
                reason += f" (seeds {', '.join(map(str, missing))}; shown over {len(got)} seed(s))"
            problems.append(Problem(c.row, c.column, c.setting, reason))
    return results, problems


def _progress(*words: object) -> None:
    print(*words, file=sys.stderr, flush=True)


def cmd_table(args: argparse.Namespace) -> int:
    """``table ID``: the run plan (``--dry-run``), or run/collect the settings and render the table.

    Returns:
        Exit status 0.
    """
    spec = select(load_table(args.id), args.rows or (), args.columns or ())
    overrides = list(args.set or ())
    seeds = tuple(args.seeds)
    out = Path(args.out) if args.out else Path("runs") / f"table_{spec.table}"
    cells = plan_table(spec, overrides)
    if args.dry_run:
        done = {(c.setting, s): finished(run_dir(out, c.setting, s)) is not None
                for c in cells if c.exists for s in seeds}
        print(format_plan(spec, cells, seeds, done), end="")
        return 0
    data_root = Path(args.data_root) if args.data_root else None
    results, problems = collect(cells, seeds, out, overrides, data_root, run=not args.collect_only, log=_progress)
    legacy: dict[str, tuple[str, ...]] = {}
    for c in cells:
        legacy[c.row] = tuple(dict.fromkeys((*legacy.get(c.row, ()), *(f"{c.setting}: {k}" for k in c.legacy))))
    table = RenderedTable(spec, results, tuple(problems), legacy)
    text = RENDERERS[args.format](table)
    if args.format == "csv":  # CSV has no room for notes
        print("\n".join(table.footer()), file=sys.stderr)
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"table_{spec.table}.{'tex' if args.format == 'latex' else args.format}"
    target.write_text(text, encoding="utf-8")
    print(text, end="")
    print(f"wrote {target}", file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``table ID [--dry-run] [--seeds ...] [--set k=v ...] ...`` to ``sub``."""
    p = sub.add_parser("table", help="run or collect a paper table's settings over seeds and render it "
                                     "(published numbers beside ours)")
    p.add_argument("id", help="table id (2.2, A.1, 3.1, 5.1, ...) or a table YAML path")
    p.add_argument("--dry-run", action="store_true", help="print the run plan and its estimated cost only")
    p.add_argument("--collect-only", action="store_true", help="render from existing run dirs, run nothing")
    p.add_argument("--seeds", type=int, nargs="+", default=list(DEFAULT_SEEDS))
    p.add_argument("--data-root", help="root of the released (or synthetic) data")
    p.add_argument("--out", help="run dirs and the rendered table go here (default runs/table_<id>)")
    p.add_argument("--format", choices=sorted(RENDERERS), default="md")
    p.add_argument("--set", nargs="+", action="extend", metavar="KEY=VALUE",
                   help="override applied to every run, e.g. train.epochs=1")
    p.add_argument("--rows", nargs="+", metavar="LABEL", help="only these rows (labels as in the table file)")
    p.add_argument("--columns", nargs="+", metavar="GROUP", help="only these column groups (datasets)")
    p.set_defaults(func=cmd_table)
