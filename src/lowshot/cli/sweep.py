"""``lowshot sweep SETTING... --seeds ... --runs DIR [--ray [ADDRESS]]``: settings x seeds, resumable."""

from __future__ import annotations

import argparse


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run (or collect) every (setting, seed) job; print one line per job."""
    from lowshot.sweep import plan, sweep

    jobs = plan(args.settings, args.seeds, args.runs, args.set)
    for job, (status, result) in zip(jobs, sweep(jobs, args.ray, args.data_root, args.num_cpus)):
        shown = "  ".join(f"{k} {v:.2f}" for k, v in (result.means() if result else {}).items())
        print(f"{status:8s} {job.setting} seed {job.seed}  {shown}  ({job.run_dir})")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``sweep`` to ``sub``."""
    p = sub.add_parser("sweep", help="paper settings x seeds, one run dir each (resumable; Ray tasks with --ray)")
    p.add_argument("settings", nargs="+", help="paper settings, e.g. clipclap.ucf avca.ucf_cls")
    p.add_argument("--seeds", nargs="+", type=int, default=[42], help="one run per seed")
    p.add_argument("--runs", default="runs/sweep", help="root of the run dirs RUNS/<setting>/seed_<s>")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override (repeatable)")
    p.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="submit the pending jobs as Ray tasks to ADDRESS (or 'local'; extra 'scale')")
    p.add_argument("--num-cpus", type=int, help="CPUs of a local Ray instance (default: all)")
    p.add_argument("--data-root", help="root of the released data (else $LOWSHOT_DATA_ROOT)")
    p.set_defaults(func=cmd_sweep)
