"""``lowshot adverbs ...``: video-adverb retrieval commands (glue only).

* ``demo``: synthetic data -> ReGaDa (short) + Priors + S3D pre-trained + AC_CLS -> table.
* ``synth OUT``: write a synthetic dataset in the released layout.
* ``convert SRC [DST] --trust-pickle``: released ``.pth`` features or S3D weights -> safetensors.
* ``priors --splits DIR``: the Priors baseline on every split, next to Table 6.2.
* ``text-cache OUT --splits DIR``: embed every adverb, action and phrase of the splits once
  (e.g. with the S3D text module), so training needs neither S3D weights nor pickles.
* ``train CONFIG [k=v ...]``: run any ``recipe: adverbs`` YAML or paper setting.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from lowshot.errors import DataError

_METRICS = ("map_w", "map_m", "acc_a")


def _table(
    rows: list[tuple[str, dict[str, float], str]], metrics: tuple[str, ...] = _METRICS
) -> str:
    """Markdown table: one row per (label, metrics, selection rule); missing metrics print as '-'."""
    width = max([28] + [len(name) for name, _, _ in rows])
    head = f"| {'method':<{width}} | " + " | ".join(f"{m:>9}" for m in metrics) + " | selection |"
    sep = "|" + "-" * (width + 2) + "|" + "|".join("-" * 11 for _ in metrics) + "|-----------|"
    lines = [head, sep]
    for name, vals, rule in rows:
        cells = " | ".join(f"{vals[m]:9.3f}" if m in vals else f"{'-':>9}" for m in metrics)
        lines.append(f"| {name:<{width}} | {cells} | {rule} |")
    return "\n".join(lines)


def cmd_synth(args: argparse.Namespace) -> int:
    """``adverbs synth OUT``: write a synthetic dataset (released layout) and print its manifest.

    Returns:
        Exit status 0.
    """
    from lowshot.data.adverbs.synth import SynthSpec, generate

    spec = SynthSpec(
        dataset=args.dataset, n_adverb_pairs=args.adverb_pairs, n_actions=args.actions,
        n_clips=args.clips, video_dim=args.video_dim, joint_dim=args.joint_dim,
        int_ids=args.int_ids, seed=args.seed,
    )  # fmt: skip
    manifest = generate(args.out, spec)
    print(json.dumps({k: v for k, v in manifest.items() if k != "spec"}))
    print(f"wrote synthetic {args.dataset} to {args.out}")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    """``adverbs convert SRC [DST]``: released ``.pth`` features or S3D text weights -> safetensors.

    With ``--kind auto`` the file is unpickled (only with ``--trust-pickle``) and treated as
    features when it is a dict with a ``features`` key, else as S3D text weights.

    Returns:
        Exit status 0.

    Raises:
        DataError: ``SRC`` is not a file, or it needs unpickling without ``--trust-pickle``.
    """
    import torch

    from lowshot.data.adverbs.features import convert_features
    from lowshot.data.adverbs.text import convert_s3d_text_weights

    src = Path(args.src)
    if not src.is_file():
        raise DataError(f"file not found: {src}")
    kind = args.kind
    if kind == "auto":
        if not args.trust_pickle:
            convert_features(src, args.dst, trust_pickle=False)  # raises the trust error
        obj = torch.load(src, map_location="cpu", weights_only=False)
        kind = "features" if isinstance(obj, dict) and "features" in obj else "s3d-text"
    if kind == "features":
        out = convert_features(src, args.dst, trust_pickle=args.trust_pickle)
    else:
        out = convert_s3d_text_weights(src, args.dst, trust_pickle=args.trust_pickle)
    print(f"wrote {out}")
    return 0


def cmd_priors(args: argparse.Namespace) -> int:
    """``adverbs priors --splits DIR``: the Priors baseline on every split found.

    Prints a table (ours, the Table 6.2 numbers where published, and the variant without the
    action ground truth), or the raw metrics as JSON with ``--json``.

    Returns:
        Exit status 0.
    """
    from lowshot.protocols.adverbs import PUBLISHED_PRIORS, TRAINING_FREE, priors_table

    table = priors_table(args.splits, unseen=args.unseen)
    if args.json:
        print(json.dumps(table, indent=2))
        return 0
    rows: list[tuple[str, dict[str, float], str]] = []
    for name, vals in table.items():
        rows.append((f"{name} (ours)", vals, TRAINING_FREE))
        if name in PUBLISHED_PRIORS:
            rows.append((f"{name} (Table 6.2)", PUBLISHED_PRIORS[name], TRAINING_FREE))
        no_act = {k[7:]: v for k, v in vals.items() if k.startswith("no_act/")}
        rows.append((f"{name} no action GT", no_act, TRAINING_FREE))
    metrics = ("acc_a", "acc_a_cls", "map_w", "map_m") if args.unseen else _METRICS
    print(_table(rows, metrics))
    return 0


def cmd_text_cache(args: argparse.Namespace) -> int:
    """``adverbs text-cache OUT``: embed every adverb, action and adverb/action phrase once.

    Collects the vocabularies of the requested datasets (default: all splits found, seen and
    unseen-composition), encodes them with ``--encoder`` and writes a safetensors cache.

    Returns:
        Exit status 0.

    Raises:
        DataError: ``adverbs.s3d_text`` without ``--weights``/``--word-dict``, a requested
            dataset has no split, or no split is found below ``--splits``.
    """
    from lowshot.data.adverbs.splits import DATASETS, UNSEEN_DATASETS, load_split
    from lowshot.data.adverbs.text import save_text_cache
    from lowshot.extract.text import build_text_encoder

    kwargs: dict[str, Any] = {}
    if args.encoder == "adverbs.s3d_text":
        if not (args.weights and args.word_dict):
            raise DataError("adverbs.s3d_text needs --weights and --word-dict")
        kwargs = {
            "weights": args.weights,
            "word_dict": args.word_dict,
            "trust_pickle": args.trust_pickle,
        }
    encoder = build_text_encoder(args.encoder, **kwargs)
    texts: dict[str, None] = {}
    names = args.dataset or list(DATASETS)
    for name in names:
        for unseen in (False, True) if name in UNSEEN_DATASETS else (False,):
            try:
                vocab = load_split(args.splits, name, unseen).vocab
            except DataError:
                if args.dataset:
                    raise
                continue
            texts.update(dict.fromkeys(vocab.adverbs + vocab.actions))
            for a in vocab.adverbs:
                for v in vocab.actions:
                    texts.update(dict.fromkeys((f"{a} {v}", f"{v} {a}")))
    if not texts:
        raise DataError(f"no split found below {args.splits}")
    order = list(texts)
    out = save_text_cache(args.out, order, encoder.encode(order))
    print(f"wrote {len(order)} embeddings to {out}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """``adverbs train CONFIG``: run a ``recipe: adverbs`` setting and print its table.

    The run directory defaults to ``runs/<name>``; the published row is printed beside ours
    when the setting has one.

    Returns:
        Exit status 0.
    """
    from lowshot.config.paper import load_paper_config
    from lowshot.recipes.adverbs import run_adverbs

    config = load_paper_config(args.config, args.overrides)
    run_dir = Path(args.run_dir) if args.run_dir else Path("runs") / config["name"]
    res = run_adverbs(config, run_dir, Path(args.data_root) if args.data_root else None)
    print(f"{res.setting}: selection = {res.selection}")
    rows = [(res.method, res.means(), res.selection)]
    if res.expected:
        published = {k: v / 100 for k, v in res.expected.items()}
        rows.append((f"published ({res.provenance['table']})", published, res.extra["expected_selection"]))
    print(_table(rows, tuple(res.metrics)))
    print(f"run directory: {run_dir}")
    return 0


DEMO_SYNTH = {
    "n_clips": 900,
    "n_adverb_pairs": 4,
    "n_actions": 12,
    "video_dim": 64,
    "joint_dim": 32,
    "seed": 0,
}


def demo_configs(epochs: int) -> list[tuple[str, dict[str, Any]]]:
    """The demo's experiments on one synthetic dataset (small ReGaDa, default protocol:
    the epoch is selected on a validation split carved from the training clips, then the
    model is refit on all of them).

    ``trust_pickle`` is on because the demo reads the ``.pth`` files it has just written.
    """
    base: dict[str, Any] = {
        "recipe": "adverbs",
        "data": {"dataset": "vatex", "trust_pickle": True, "video_dim": 64, "joint_dim": 32},
        "train": {
            "epochs": epochs,
            "batch_size": 128,
            "lr": 1e-3,
            "eval_interval": max(1, epochs // 5),
            "num_threads": 1,
        },  # fmt: skip
    }
    small = {
        "emb_dim": 64,
        "layers_gated": 2,
        "layers_residual": 2,
        "text_dropout": 0.3,
        "video_dropout": 0.1,
    }
    return [
        ("Priors", base | {"name": "priors", "method": "adverbs.priors"}),
        ("S3D pre-trained (zero-shot)", base | {"name": "s3d", "method": "adverbs.s3d_pretrained"}),
        (
            "AC_CLS",
            base
            | {
                "name": "ac_cls",
                "method": "adverbs.ac_cls",
                "model": {"d_k": 64, "hidden": [64, 64]},
            },
        ),
        (
            "ReGaDa",
            base
            | {"name": "regada", "method": "adverbs.regada", "model": small | {"lambda_adv": 2.0}},
        ),
    ]


def cmd_demo(args: argparse.Namespace) -> int:
    """``adverbs demo``: synthetic VATEX-layout data -> Priors, S3D, AC_CLS and ReGaDa -> table.

    The synthetic data is generated once under ``<out>/data`` (reused when its manifest
    exists); ``--out`` defaults to a fresh temporary folder.

    Returns:
        Exit status 0.
    """
    from lowshot.data.adverbs.synth import SynthSpec, generate
    from lowshot.recipes.adverbs import run_adverbs

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="lowshot_adverbs_demo_"))
    t0 = time.perf_counter()
    data_dir = out / "data"
    if not (data_dir / "synth_manifest.json").exists():
        generate(data_dir, SynthSpec(**DEMO_SYNTH))
    rows = []
    for label, cfg in demo_configs(args.epochs):
        res = run_adverbs(cfg, out / cfg["name"], data_dir)
        rows.append((label, res.means(), res.selection))
        print(f"  {label}: done ({time.perf_counter() - t0:.0f}s)", flush=True)
    print("\nSynthetic VATEX-layout data; no row selects anything on test data:")
    print(_table(rows))
    print(f"\nrun directories under {out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``adverbs`` command and its sub-commands to ``sub``."""
    p = sub.add_parser("adverbs", help="video-adverb retrieval (ReGaDa and baselines)")
    s = p.add_subparsers(dest="adverbs_command", required=True, metavar="SUBCOMMAND")

    d = s.add_parser("demo", help="synthetic data -> ReGaDa + baselines -> table (~1-2 min on CPU)")
    d.add_argument("--out", help="output folder (default: a temporary folder)")
    d.add_argument("--epochs", type=int, default=30)
    d.set_defaults(func=cmd_demo)

    y = s.add_parser("synth", help="write a synthetic dataset in the released layout")
    y.add_argument("out")
    y.add_argument("--dataset", default="VATEX_Adverbs", help="folder name (a ReGaDa dataset name)")
    y.add_argument("--adverb-pairs", type=int, default=4)
    y.add_argument("--actions", type=int, default=12)
    y.add_argument("--clips", type=int, default=600)
    y.add_argument("--video-dim", type=int, default=64)
    y.add_argument("--joint-dim", type=int, default=32)
    y.add_argument("--int-ids", action="store_true", help="integer clip ids (HowTo100M style)")
    y.add_argument("--seed", type=int, default=0)
    y.set_defaults(func=cmd_synth)

    c = s.add_parser("convert", help="released .pth (features or S3D weights) -> safetensors")
    c.add_argument("src")
    c.add_argument("dst", nargs="?", help="default: SRC with suffix .safetensors")
    c.add_argument("--kind", choices=("auto", "features", "s3d-text"), default="auto")
    c.add_argument("--trust-pickle", action="store_true", help="allow unpickling SRC (runs code!)")
    c.set_defaults(func=cmd_convert)

    q = s.add_parser("priors", help="Priors baseline from the split CSVs (Table 6.2)")
    q.add_argument("--splits", required=True, help="folder holding splits/s3d/... (or s3d/...)")
    q.add_argument("--unseen", action="store_true", help="the unseen-composition splits")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_priors)

    e = s.add_parser("text-cache", help="embed all adverbs/actions/phrases once (safetensors)")
    e.add_argument("out", help="output .safetensors (use with text.encoder=adverbs.text_cache)")
    e.add_argument("--splits", required=True, help="folder holding splits/s3d/...")
    e.add_argument("--dataset", nargs="*", help="datasets (default: all found)")
    e.add_argument("--encoder", default="adverbs.s3d_text", help="ENCODERS name")
    e.add_argument("--weights", help="s3d_howto100m.pth or its converted .safetensors")
    e.add_argument("--word-dict", help="s3d_dict.npy")
    e.add_argument("--trust-pickle", action="store_true")
    e.set_defaults(func=cmd_text_cache)

    t = s.add_parser("train", help="run a recipe=adverbs config (paper setting or YAML path)")
    t.add_argument("config", help="e.g. regada.vatex or path/to/config.yaml")
    t.add_argument("overrides", nargs="*", help="key=value overrides")
    t.add_argument("--run-dir")
    t.add_argument("--data-root")
    t.set_defaults(func=cmd_train)
