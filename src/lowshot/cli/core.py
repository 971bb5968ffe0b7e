"""``lowshot list`` and ``lowshot show``."""

from __future__ import annotations

import argparse
import os

import yaml

from lowshot import _registry
from lowshot.config.paper import load_paper_config, paper_config_names

KINDS = ("configs", "models", "methods", "benchmarks", "encoders", "recipes")


def _load_all() -> None:
    """Import the modules that register things, so the registries are filled."""
    from lowshot.catalog import load_all

    for skipped in load_all():
        print(f"(not loaded: {skipped})")


def cmd_list(args: argparse.Namespace) -> int:
    """``list [KIND]``: print the registered names of one kind (default: every kind).

    Returns:
        Exit status 0.
    """
    kinds = [args.kind] if args.kind else list(KINDS)
    if kinds != ["configs"]:
        _load_all()
    for kind in kinds:
        names = paper_config_names() if kind == "configs" else getattr(_registry, kind.upper()).names()
        print(f"{kind}:")
        for name in names:
            print(f"  {name}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """``show NAME [k=v ...]``: print a paper setting, overrides applied, as YAML.

    Returns:
        Exit status 0.
    """
    data = load_paper_config(args.name, args.overrides)
    print(yaml.safe_dump(data, sort_keys=False), end="")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``list``, ``show`` and ``reproduce`` to ``sub``."""
    p = sub.add_parser("list", help="list registered configs, models, methods, ...")
    p.add_argument("kind", nargs="?", choices=KINDS)
    p.set_defaults(func=cmd_list)
    p = sub.add_parser("show", help="print a paper setting (with overrides applied)")
    p.add_argument("name", help="paper setting such as clipclap.ucf, or a YAML path")
    p.add_argument("overrides", nargs="*", help="key=value overrides")
    p.set_defaults(func=cmd_show)
    register_reproduce(sub)


def cmd_reproduce(args: argparse.Namespace) -> int:
    """Run a paper setting through the recipe it names (``recipe:`` key)."""
    from pathlib import Path

    from lowshot.catalog import load_recipe

    config = load_paper_config(args.name, args.overrides)
    recipe = load_recipe(config["recipe"])
    run_dir = Path(args.run_dir) if args.run_dir else Path("runs") / config["name"]
    summary = recipe(config, run_dir, Path(args.data_root) if args.data_root else None)
    if os.environ.get("RANK", "0") != "0":  # under torchrun only rank 0 reports
        return 0
    if config["recipe"] == "gzsl":
        from lowshot.cli.gzsl import print_result

        print_result(summary, run_dir)
    else:  # any other family: its result (one schema) as a table, published row beside it
        from lowshot.reports.tables import result_rows, to_markdown

        print(to_markdown(result_rows(summary)), end="")
        print(f"run directory: {run_dir}")
    return 0


def register_reproduce(sub: argparse._SubParsersAction) -> None:
    """Add ``reproduce NAME [k=v ...] [--run-dir] [--data-root]`` to ``sub``."""
    p = sub.add_parser("reproduce", help="run a paper setting, e.g. clipclap.ucf or regada.vatex")
    p.add_argument("name", help="paper setting (see `lowshot list configs`) or a YAML path")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. train.epochs=3")
    p.add_argument("--run-dir", help="output directory (default runs/<name>); resumes if present")
    p.add_argument("--data-root", help="root of the released data (else $LOWSHOT_DATA_ROOT)")
    p.set_defaults(func=cmd_reproduce)
