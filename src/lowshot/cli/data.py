"""``lowshot data``: synth, convert and inspect audio-visual GZSL data trees."""

from __future__ import annotations

import argparse
import time


def cmd_synth(args: argparse.Namespace) -> int:
    from lowshot.data.synth import write_synthetic

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
        f"load it with: load_gzsl_benchmark('{args.out}', '{args.dataset}', '{path.name}', split, trust_pickle=True)"
    )
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from lowshot.data.safe_format import convert_feature_dir

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
        f"converted tree at {path} ({time.perf_counter() - start:.1f} s); use --root {args.out} (or LOWSHOT_DATA_ROOT)"
    )
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from lowshot.data.summary import summarize

    print(
        summarize(
            args.root, args.dataset, args.feature_dir, trust_pickle=args.trust_pickle
        ).format()
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from lowshot.data.synth import PRESETS

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
    p.add_argument(
        "--trust-pickle", action="store_true", help="allow reading a pickled --embeddings file"
    )
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
    p.add_argument("--trust-pickle", action="store_true", help="allow reading the released pickles")
    p.set_defaults(func=cmd_convert)

    p = dsub.add_parser("inspect", help="print class/video counts per stage and feature dims")
    p.add_argument("root", nargs="?", default=None, help="data root (default: $LOWSHOT_DATA_ROOT)")
    p.add_argument("dataset")
    p.add_argument("feature_dir")
    p.add_argument("--trust-pickle", action="store_true", help="allow reading the released pickles")
    p.set_defaults(func=cmd_inspect)
