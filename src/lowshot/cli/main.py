"""Entry point of the ``lowshot`` command.

Each command family lives in its own module exposing ``register(subparsers)``; this file
only assembles them and turns :class:`~lowshot.errors.LowshotError` into a clean message.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

from lowshot.errors import LowshotError

#: modules that add sub-commands (missing ones are skipped so optional parts stay optional)
COMMAND_MODULES = (
    "lowshot.cli.core",  # list, show
    "lowshot.cli.gzsl",  # demo, train, reproduce
    "lowshot.cli.gfsl",  # lowshot-curve
    "lowshot.cli.data",  # data convert / synth / inspect
    "lowshot.cli.adverbs",  # adverbs ...
    "lowshot.cli.comm",  # comm demo ...
    "lowshot.cli.report",  # report ...
    "lowshot.cli.table",  # table <id>: a paper table over seeds
    "lowshot.cli.extract",  # extract
    "lowshot.cli.predict",  # predict
    "lowshot.cli.sweep",  # sweep (Ray tasks with --ray)
)


def build_parser() -> argparse.ArgumentParser:
    """The ``lowshot`` parser with the sub-commands of every importable ``COMMAND_MODULES`` entry."""
    parser = argparse.ArgumentParser(
        prog="lowshot",
        description="Multimodal data-efficient learning: audio-visual (G)ZSL, video-adverb "
        "retrieval, communicating MLLMs.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        if importlib.util.find_spec(name) is None:
            continue
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``lowshot`` command line.

    ``key=value`` words left after the options are appended to ``args.overrides`` when the
    command takes overrides; other unknown words are a usage error (exit 2).

    Args:
        argv: the arguments (default: ``sys.argv[1:]``).

    Returns:
        The command's exit status; 2 (one-line message on stderr) for a
        :class:`~lowshot.errors.LowshotError` or an ``OSError``; 130 on Ctrl-C.
    """
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # key=value overrides may also follow options (`reproduce X --run-dir R a.b=1`)
    if extra and hasattr(args, "overrides") and all("=" in e and not e.startswith("-") for e in extra):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return int(args.func(args) or 0)
    except LowshotError as err:
        print(f"lowshot: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a path the user gave: read-only, missing, a file where a folder belongs
        where = f"{err.filename}: " if err.filename else ""
        print(f"lowshot: error: {where}{err.strerror or err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lowshot: interrupted; the run can be resumed with the same command", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
