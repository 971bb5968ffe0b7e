"""``lowshot demo``: ClipClap-GZSL on the built-in synthetic benchmark."""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from lowshot.config.paper import load_paper_config
from lowshot.reports.tables import Row, result_rows, to_rich
from lowshot.utils.results import RunResult


def chance_row(summary: RunResult) -> Row:
    """Uniform guessing over the test classes: S = U = HM = 1 / (C_s + C_u), ZSL = 1 / C_u."""
    counts = summary.extra["class_counts"]
    both = 100.0 / (counts["test_seen"] + counts["test_unseen"])
    return Row("chance (uniform guess)", {"S": (both, None), "U": (both, None), "HM": (both, None),
                                           "ZSL": (100.0 / counts["test_unseen"], None)})


def print_result(summary: RunResult, run_dir: Path | None, label: str | None = None,
                 extra_rows: Sequence[Row] = ()) -> None:
    """The test table (mean ± std over seeds, published row beside it), selection per seed, run dir."""
    from rich.console import Console

    console = Console()
    rows = [replace(r, selection=None) for r in (*result_rows(summary, label), *extra_rows)]  # said below
    console.print(to_rich(rows, title=f"{summary.extra['benchmark']} — test, x100"))
    console.print(f"selection: {summary.selection}")
    for seed, sel in summary.extra["selected"].items():
        console.print(f"seed {seed}: selected epoch {sel['best_epoch']}, transferred beta {sel['beta']:.3f}")
    if run_dir is not None:
        console.print(f"run directory: {run_dir}")


def cmd_demo(args: argparse.Namespace) -> int:
    """``demo``: ClipClap-GZSL on the built-in synthetic benchmark, with a chance row.

    The run goes to a temporary directory (deleted afterwards) unless ``--run-dir`` is given.

    Returns:
        Exit status 0.
    """
    from lowshot.recipes.gzsl import run_gzsl

    config = load_paper_config("demo.clipclap_synthetic", args.overrides)
    with tempfile.TemporaryDirectory(prefix="lowshot-demo-") as tmp:
        run_dir = Path(args.run_dir) if args.run_dir else Path(tmp)
        print(f"lowshot demo: ClipClap-GZSL, two-stage protocol, synthetic data in {run_dir}")
        summary = run_gzsl(config, run_dir)
    print_result(summary, Path(args.run_dir) if args.run_dir else None, "ClipClap-GZSL (lowshot)",
                 [chance_row(summary)])
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``demo [k=v ...] [--run-dir]`` to ``sub``."""
    p = sub.add_parser("demo", help="train + evaluate ClipClap-GZSL on built-in synthetic data")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. train.epochs=3")
    p.add_argument("--run-dir", help="keep the run here (default: a temporary directory)")
    p.set_defaults(func=cmd_demo)
