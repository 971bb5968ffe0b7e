"""Audio-visual GZSL baselines: epoch time and peak RSS at UCF-cls size, and S/U/HM/ZSL on the
built-in synthetic UCF-cls data next to AVCA / TCaF / ClipClap.

Usage (figures in docs/benchmarks.md)::

    python benchmarks/av_baselines.py perf --steps 10          # one subprocess per method
    python benchmarks/av_baselines.py quality --seeds 42 43 44  # short two-stage runs

``perf`` builds each setting's method at the real input sizes of its cell (VGGish 128 + C3D
4096 and fastText 300, or CLAP 1024 + CLIP 512 and CLIP ⊕ CLAP labels), times ``--steps``
training steps (collate + loss + backward + Adam step) at the cell's batch size on synthetic
UCF-cls data of real shape (real sequence lengths, ``--size`` of the video count) and
extrapolates one epoch as ``n_batches`` steps (the per-epoch validation pass is not included);
peak RSS is the subprocess's ``ru_maxrss``. ``quality`` runs each setting through the
two-stage protocol on generated data (shortened schedule, see ``QUALITY`` and ``LONGER``).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

#: setting -> synthetic preset of its features
SETTINGS = {
    "cjme.ucf_cls": "cls_averaged",
    "avgzslnet.ucf_cls": "cls_averaged",
    "attention_fusion.ucf_cls": "cls_temporal",
    "perceiver.ucf_cls": "cls_temporal",
    "cjme.ucf_clipclap": "clipclap",
    "avgzslnet.ucf_clipclap": "clipclap",
    "avca.ucf_clipclap": "clipclap",
    "hyper_multiple.ucf_clipclap": "clipclap",
    "avca.ucf_cls": "cls_averaged",
    "tcaf.ucf_cls": "cls_temporal",
    "clipclap.ucf": "clipclap",
}
#: shortened schedule of ``quality`` (all settings), and the extra overrides of the TCaF family
QUALITY = [
    "train.epochs=10",
    "train.n_batches=50",
    "train.batch_size=64",
    "data.synthetic_size=0.1",
    "train.progress=false",
]
SHORT_LR = ["train.lr=1e-3"]
TCAF_FAMILY = ["model.depth=1", "model.encoder_hidden=128"]
#: per-setting additions: Attention Fusion needs twice the steps per epoch (docs/benchmarks.md)
LONGER = {"attention_fusion.ucf_cls": ["train.n_batches=100"]}


def _overrides(setting: str) -> list[str]:
    extra = (
        list(SHORT_LR)
        if setting.split(".")[0] in ("attention_fusion", "perceiver", "tcaf", "clipclap")
        else []
    )
    if setting.split(".")[0] in ("attention_fusion", "perceiver", "tcaf"):
        extra += TCAF_FAMILY
    return [f"data.synthetic={SETTINGS[setting]}", *QUALITY, *extra, *LONGER.get(setting, [])]


def perf_one(setting: str, steps: int, size: float) -> dict[str, float]:
    """Time ``steps`` training steps of ``setting`` at real input sizes; returns the figures."""
    import torch

    import lowshot.methods.av  # noqa: F401  (registers the methods)
    from lowshot.config.paper import load_paper_config
    from lowshot.data.av.synth import make_synthetic_benchmark
    from lowshot.methods.base import GZSLMethod, method_of_family
    from lowshot.recipes.gzsl import input_spec, parse_experiment

    torch.set_num_threads(1)
    exp, model_cfg = parse_experiment(load_paper_config(setting))
    bench = make_synthetic_benchmark(
        SETTINGS[setting], "UCF", seed=0, size=size, text=exp.data.text
    )
    method = method_of_family(exp.method, GZSLMethod, "gzsl")(model_cfg, input_spec(bench))
    optimizer, _ = method.build_optimizer(exp.train)
    fs = bench.splits["stage_1_train"]
    train_classes = bench.split_classes["stage_1_train"]
    emb = torch.as_tensor(bench.class_embeddings[train_classes])
    rng = np.random.default_rng(0)
    method.train()

    def step() -> None:
        idx = rng.integers(0, len(fs), exp.train.batch_size)
        batch = method.collate(fs, idx, np.searchsorted(train_classes, fs.labels[idx]), True, rng)
        optimizer.zero_grad()
        method.training_loss(batch, emb)["loss"].backward()
        optimizer.step()

    step()  # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    per_step, cpu_step = (time.perf_counter() - t0) / steps, (time.process_time() - c0) / steps
    return {
        "step_s": per_step,
        "epoch_s": per_step * exp.train.n_batches,
        "cpu_step_s": cpu_step,
        "cpu_epoch_s": cpu_step * exp.train.n_batches,
        "n_batches": exp.train.n_batches,
        "batch_size": exp.train.batch_size,
        "params_M": sum(p.numel() for p in method.parameters()) / 1e6,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("perf")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument(
        "--size", type=float, default=0.1, help="video-count scale of the synthetic data"
    )
    p.add_argument("--settings", nargs="*", default=list(SETTINGS))
    p.add_argument("--one", help=argparse.SUPPRESS)
    q = sub.add_parser("quality")
    q.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    q.add_argument("--settings", nargs="*", default=list(SETTINGS))
    q.add_argument("--out", default="/tmp/av_baselines_quality")
    q.add_argument("--extra", nargs="*", default=[], help="more key=value overrides for every setting")
    args = parser.parse_args()
    if args.cmd == "perf" and args.one:
        print(json.dumps(perf_one(args.one, args.steps, args.size)))
        return
    if args.cmd == "perf":
        print(
            "| setting | batch | wall step (s) | wall epoch (s) | CPU step (s) | CPU epoch (s) | params (M) | peak RSS (MiB) |\n"
            "|---|---|---|---|---|---|---|---|"
        )
        for s in args.settings:
            out = (
                subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "perf",
                        "--one",
                        s,
                        "--steps",
                        str(args.steps),
                        "--size",
                        str(args.size),
                    ],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                .stdout.strip()
                .splitlines()[-1]
            )
            r = json.loads(out)
            print(
                f"| {s} | {r['batch_size']} | {r['step_s']:.3f} | {r['epoch_s']:.0f} (x{r['n_batches']}) | "
                f"{r['cpu_step_s']:.3f} | {r['cpu_epoch_s']:.0f} | {r['params_M']:.2f} | {r['peak_rss_mib']:.0f} |",
                flush=True,
            )
        return
    from lowshot.config.paper import load_paper_config
    from lowshot.recipes.gzsl import run_gzsl

    print(
        "| setting | S | U | HM | ZSL | ZSL per seed | chance ZSL |\n|---|---|---|---|---|---|---|"
    )
    for s in args.settings:
        seeds = "[" + ",".join(map(str, args.seeds)) + "]"
        summary = run_gzsl(
            load_paper_config(s, [*_overrides(s), f"train.seeds={seeds}", *args.extra]), f"{args.out}/{s}"
        )
        m = summary.metrics
        per_seed = ", ".join(f"{r['ZSL']:.1f}" for r in summary.per_seed.values())
        cells = " | ".join(f"{m[k].mean:.1f} ± {m[k].std:.1f}" for k in ("S", "U", "HM", "ZSL"))
        chance = 100 / summary.extra["class_counts"]["test_unseen"]
        print(f"| {s} | {cells} | {per_seed} | {chance:.1f} |", flush=True)


if __name__ == "__main__":
    main()
