"""``lowshot report``: tables and figures from run directories."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from lowshot.reports.tables import RunNotReadable, load_rows, to_csv, to_latex, to_markdown, to_rich
from lowshot.utils.io import read_json


def read_history(path: Path) -> list[dict[str, Any]]:
    """A seed's ``history.json``, checked to be a list of epoch records."""
    history = read_json(path)
    if not isinstance(history, list) or not all(
        isinstance(r, dict) and {"stage", "epoch", "loss"} <= r.keys() for r in history
    ):
        raise RunNotReadable(f"{path} is not a lowshot history (a list of records with stage, epoch and loss)")
    return history


def cmd_report(args: argparse.Namespace) -> int:
    """``report RUN [RUN ...]``: one table over run directories, optionally with figures.

    Prints a rich table or md/csv/latex text; with ``--figures DIR`` also writes each seed's
    learning curves and, with ``--tsne``, a t-SNE of the test embeddings per run.

    Returns:
        Exit status 0.

    Raises:
        RunNotReadable: ``--figures`` names a file, or a run/history file is not readable.
    """
    runs = [Path(p) for p in args.runs]
    if args.figures and Path(args.figures).exists() and not Path(args.figures).is_dir():
        raise RunNotReadable(f"--figures {args.figures} is a file, not a folder")
    rows = load_rows(runs, with_reference=not args.no_reference)
    if args.format == "table":
        from rich.console import Console

        Console().print(to_rich(rows))
    else:
        print({"md": to_markdown, "csv": to_csv, "latex": to_latex}[args.format](rows), end="")
    if args.figures:
        from lowshot.reports.figures import plot_learning_curves

        out = Path(args.figures)
        for run in runs:
            for seed_dir in sorted(run.glob("seed_*")):
                if (seed_dir / "history.json").exists():
                    path = plot_learning_curves(read_history(seed_dir / "history.json"),
                                                out / f"{run.name}_{seed_dir.name}_curves.png", f"{run.name} {seed_dir.name}")
                    print(f"wrote {path}")
            if args.tsne:
                from lowshot.recipes.gzsl import load_final_method
                from lowshot.reports.tsne import run_tsne

                exp, method, bench = load_final_method(run)
                path = run_tsne(method, exp.method, bench, out / f"{run.name}_tsne.png",
                                title=f"{exp.name}: test embeddings")
                print(f"wrote {path}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``report`` command to ``sub``."""
    p = sub.add_parser("report", help="tables (md/csv/latex) and figures from GZSL or video-adverb run directories")
    p.add_argument("runs", nargs="+", help="run directories holding result.json")
    p.add_argument("--format", choices=("table", "md", "csv", "latex"), default="table")
    p.add_argument("--no-reference", action="store_true", help="omit the published numbers")
    p.add_argument("--figures", metavar="DIR", help="also write learning curves (PNG) here")
    p.add_argument("--tsne", action="store_true", help="with --figures: t-SNE of test embeddings (Fig. 5.3)")
    p.set_defaults(func=cmd_report)
