"""``lowshot data``: synth, convert and inspect audio-visual GZSL data trees."""

from __future__ import annotations

import argparse
import sys
import time

#: problem lines printed by ``data inspect`` (the rest are counted)
MAX_PROBLEM_LINES = 50
TRUST_HELP = (
    "allow the full unpickler (which can run code) for a pickle that holds more than "
    "dicts/lists/strings/numpy arrays; the released files are read without it"
)


def cmd_synth(args: argparse.Namespace) -> int:
    """``data synth OUT``: write a synthetic benchmark in a released layout and say how to load it.

    Returns:
        Exit status 0.
    """
    if args.kshot is not None:
        from lowshot.data.av.fsl import write_synthetic_kshot

        path = write_synthetic_kshot(args.out, args.dataset, args.kshot, args.seed, args.size)
        print(f"wrote {path}")
        print(f"load it with: load_kshot_benchmark('{args.out}', '{args.dataset}', {args.kshot})")
        return 0
    from lowshot.data.av.synth import write_synthetic

    path = write_synthetic(
        args.out,
        preset=args.preset,
        dataset=args.dataset,
        seed=args.seed,
        size=args.size,
        class_split=args.class_split,
        embeddings=args.embeddings,
        trust_pickle=args.trust_pickle,
    )
    print(f"wrote {path}")
    print(
        f"load it with: load_gzsl_benchmark('{args.out}', '{args.dataset}', '{path.name}', split)"
    )
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    """``data convert``: a released feature folder -> the pickle-free memory-mapped format.

    Returns:
        Exit status 0.
    """
    from lowshot.data.av.safe_format import convert_feature_dir

    start = time.perf_counter()
    path = convert_feature_dir(
        args.src_root,
        args.dataset,
        args.feature_dir,
        args.out,
        trust_pickle=args.trust_pickle,
        split=args.split,
    )
    print(
        f"converted tree at {path} ({time.perf_counter() - start:.1f} s); use it as the data root: "
        f"--data-root {args.out} (lowshot reproduce), data.root, or LOWSHOT_DATA_ROOT"
    )
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    """``data inspect``: print counts, dims and NaN/inf per stage, and the data problems.

    At most ``MAX_PROBLEM_LINES`` problems are printed (to stderr); the rest are counted.

    Returns:
        0 when no problem was found, else 2.
    """
    from lowshot.data.av.summary import summarize

    summary = summarize(args.root, args.dataset, args.feature_dir, trust_pickle=args.trust_pickle)
    print(summary.format())
    if not summary.problems:
        return 0
    for line in summary.problems[:MAX_PROBLEM_LINES]:
        print(f"lowshot: data problem: {line}", file=sys.stderr)
    if len(summary.problems) > MAX_PROBLEM_LINES:
        print(f"lowshot: ... and {len(summary.problems) - MAX_PROBLEM_LINES} more", file=sys.stderr)
    print(
        f"lowshot: error: {len(summary.problems)} problem(s); "
        f"{summary.path} is not usable as it is",
        file=sys.stderr,
    )
    return 2


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``data`` command (``synth``, ``convert``, ``inspect``) to ``sub``."""
    from lowshot.data.av.synth import PRESETS

    data = sub.add_parser("data", help="synthesise, convert and inspect audio-visual data trees")
    dsub = data.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")

    p = dsub.add_parser("synth", help="write a synthetic benchmark in a released layout")
    p.add_argument("out", help="data root to write <DATASET>/ under")
    p.add_argument("--preset", choices=sorted(PRESETS), default="clipclap")
    p.add_argument("--dataset", default="UCF", help="UCF | ActivityNet | VGGSound")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--size",
        type=float,
        default=0.05,
        help="fraction of the real video counts (1.0 = real scale)",
    )
    p.add_argument("--class-split", help="a real <DS>/class-split folder to mimic")
    p.add_argument(
        "--embeddings", help="a fastText dict file whose vectors are the class semantics"
    )
    p.add_argument("--trust-pickle", action="store_true", help=TRUST_HELP)
    p.add_argument(
        "--kshot", type=int, metavar="K",
        help="write the released k-shot GFSL layout (<DS>/features/<K>-shot, three draws) instead",
    )  # fmt: skip
    p.set_defaults(func=cmd_synth)

    p = dsub.add_parser(
        "convert", help="convert a released feature folder to the pickle-free memory-mapped format"
    )
    p.add_argument("src_root", help="data root of the released tree")
    p.add_argument("dataset")
    p.add_argument("feature_dir", help="folder under <src_root>/<dataset>/features/")
    p.add_argument("out", help="data root of the converted tree")
    p.add_argument(
        "--split", choices=("main", "cls"), help="check afterwards that this split loads"
    )
    p.add_argument("--trust-pickle", action="store_true", help=TRUST_HELP)
    p.set_defaults(func=cmd_convert)

    p = dsub.add_parser(
        "inspect",
        help="measure counts, dims and NaN/inf per stage and check the class embeddings "
        "(exit 2 if the data is not usable)",
    )
    p.add_argument("root", nargs="?", default=None, help="data root (default: $LOWSHOT_DATA_ROOT)")
    p.add_argument("dataset")
    p.add_argument("feature_dir")
    p.add_argument("--trust-pickle", action="store_true", help=TRUST_HELP)
    p.set_defaults(func=cmd_inspect)
