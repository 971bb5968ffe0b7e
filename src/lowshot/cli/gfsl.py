"""``lowshot lowshot-curve`` and the printed result of a GFSL run."""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_curve(args: argparse.Namespace) -> int:
    """``lowshot-curve METHOD... --dataset DS``: table and plot of HM / novel accuracy against k."""
    from lowshot.recipes.lowshot_curve import run_curve
    from lowshot.reports.lowshot_curve import aggregate_curve, curve_markdown, write_curve

    rows = run_curve(
        args.methods, args.dataset, Path(args.out), tuple(args.shots), tuple(args.seeds), args.set,
        args.synthetic_size, Path(args.data_root) if args.data_root else None,
    )  # fmt: skip
    write_curve(rows, Path(args.out), f"{args.dataset}: HM and novel accuracy against shots")
    print(curve_markdown(aggregate_curve(rows)), end="")
    print(f"wrote {Path(args.out) / 'curve.csv'}, curve.md, curve.png")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``lowshot-curve`` to ``sub``."""
    p = sub.add_parser(
        "lowshot-curve",
        help="evaluate audio-visual methods at k = 0 (GZSL) and k = 1, 5, 10, 20 (GFSL) on one class partition",
    )
    p.add_argument("methods", nargs="+", help="registry names (avca tcaf clipclap avdiff) or paper settings")
    p.add_argument("--dataset", default="ucf", help="ucf | activitynet | vggsound")
    p.add_argument("--shots", type=int, nargs="+", default=[0, 1, 5, 10, 20])
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="overrides for every setting (train.epochs=2) or one method (tcaf:model.depth=1)")
    p.add_argument("--synthetic-size", type=float, help="run on synthetic data of this size instead of the released features")
    p.add_argument("--data-root", help="root of the released GZSL features (else $LOWSHOT_DATA_ROOT)")
    p.add_argument("--out", default="runs/lowshot_curve", help="output folder")
    p.set_defaults(func=cmd_curve)
