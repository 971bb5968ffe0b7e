"""``lowshot report``: tables from run directories."""

from __future__ import annotations

import argparse
from pathlib import Path

from lowshot.reports.tables import load_rows, to_csv, to_latex, to_markdown, to_rich


def cmd_report(args: argparse.Namespace) -> int:
    rows = load_rows([Path(p) for p in args.runs], with_reference=not args.no_reference)
    if args.format == "table":
        from rich.console import Console

        Console().print(to_rich(rows))
    else:
        print({"md": to_markdown, "csv": to_csv, "latex": to_latex}[args.format](rows), end="")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="tables (md/csv/latex) from GZSL run directories")
    p.add_argument("runs", nargs="+", help="run directories holding result.json")
    p.add_argument("--format", choices=("table", "md", "csv", "latex"), default="table")
    p.add_argument("--no-reference", action="store_true", help="omit the published numbers")
    p.set_defaults(func=cmd_report)
