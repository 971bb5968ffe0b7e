"""TCaF: block-sparse cross-modal attention against attention over all scores with a mask.

For each case the dense variant runs one fused ``scaled_dot_product_attention`` over all
``N x N`` query-key scores with the ``[B, 1, N, N]`` cross-modal mask (the previous
computation) and the block variant :func:`block_attention` (class token x all keys, audio
queries x class token + video keys, video queries x class token + audio keys); both run
interleaved in the same process, median of ``--rounds`` rounds (CPU time of the one thread by
default, ``--clock wall`` for wall time). The default
(:func:`masked_attention`) picks the block variant from ``BLOCK_SPARSE_MIN_TOKENS`` tokens on;
``--sweep`` times the attention core alone at growing lengths to locate that crossover.

Cases (published TCaF cls settings: depth 6, 8 heads x 64, batch 64):

* ``ucf_train`` / ``vggsound_train``: one training step (loss, backward, Adam) on a batch
  collated from the synthetic UCF / VGGSound cls temporal benchmarks (their length
  distributions and padding; ``max`` sequence mode);
* ``activitynet_train``: one training step on 60-step video windows (40 audio steps);
* ``activitynet_eval``: the 300-step evaluation forward (200 audio steps), ``--eval-batch``
  videos (the published evaluation batch is 256; smaller here for memory and time).

Besides the whole step, the attention core alone (6 layers, forward for evaluation,
forward + backward for training) is timed on random q/k/v with the case's mask.

Usage::

    OMP_NUM_THREADS=1 nice python benchmarks/tcaf_block_attention.py --threads 1 --rounds 5
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _timing import interleaved_medians, load_average, machine

from lowshot.data.av.batch import Batch
from lowshot.layers import attention as attention_module
from lowshot.layers.masks import AUDIO, GLOBAL, VIDEO, BlockMask

#: "cpu": CPU time of the one thread (stable on a shared, overloaded CPU), or "wall"
CLOCK = "cpu"
#: BLOCK_SPARSE_MIN_TOKENS of each variant
VARIANTS = {"dense": 10**9, "block": 0}


def _method(setting: str, spec: Any) -> tuple[Any, dict]:
    from lowshot.config.paper import load_paper_config
    from lowshot.config.schema import from_dict
    from lowshot.methods.av.tcaf import TCaF

    raw = load_paper_config(setting)
    return TCaF(from_dict(TCaF.Config, raw["model"]), spec), raw


def _full_batch(b: int, t_v: int, t_a: int, n_classes: int) -> Batch:
    return Batch(
        torch.randint(0, 256, (b, t_a, 128)).float(), torch.rand(b, t_v, 4096), torch.zeros(b, dtype=torch.long),
        torch.randint(0, n_classes, (b,)), torch.ones(b, t_a, dtype=torch.bool), torch.ones(b, t_v, dtype=torch.bool),
        torch.arange(t_a).float().expand(b, -1) * 0.96, torch.arange(t_v).float().expand(b, -1) * 0.64,
    )  # fmt: skip


def _case(name: str, eval_batch: int) -> tuple[Any, Batch, torch.Tensor, bool]:
    """(method, batch, class embeddings, train?) of one case."""
    from lowshot.data.av.synth import make_synthetic_benchmark
    from lowshot.methods.base import InputSpec
    from lowshot.recipes.gzsl import input_spec

    torch.manual_seed(0)
    if name in ("ucf_train", "vggsound_train"):
        dataset = {"ucf_train": "UCF", "vggsound_train": "VGGSound"}[name]
        bench = make_synthetic_benchmark(
            "cls_temporal", dataset, seed=0, size=0.1 if dataset == "UCF" else 0.02
        )
        method, _ = _method(f"tcaf.{dataset.lower()}_cls", input_spec(bench))
        fs = bench.splits["stage_1_train"]
        idx = np.random.default_rng(0).choice(len(fs), 64, replace=False)
        batch = method.collate(fs, idx, fs.labels[idx] % 30, True, np.random.default_rng(0))
        return method, batch, torch.as_tensor(bench.class_embeddings[:30]), True
    spec = InputSpec(128, 4096, 300, 0.96, 0.64, "vggish", "c3d")
    method, _ = _method("tcaf.activitynet_cls", spec)
    if name == "activitynet_train":
        return method, _full_batch(64, 60, 40, 30), torch.randn(30, 300), True
    return method, _full_batch(eval_batch, 300, 200, 30), torch.randn(200, 300), False


def _tokens(batch: Batch) -> tuple[int, int, float, float]:
    t_a, t_v = batch.audio_mask.shape[1], batch.video_mask.shape[1]
    return (
        t_a,
        t_v,
        float(batch.audio_mask.sum(1).float().mean()),
        float(batch.video_mask.sum(1).float().mean()),
    )


def run_case(name: str, rounds: int, eval_batch: int) -> dict[str, Any]:
    method, batch, emb, train = _case(name, eval_batch)
    opt = torch.optim.Adam(method.parameters(), lr=1e-5)

    def step() -> None:
        if train:
            method.train()
            loss = method.training_loss(batch, emb)["loss"]
            opt.zero_grad()
            loss.backward()
            opt.step()
        else:
            method.eval()
            with torch.no_grad():
                method.class_scores(batch, emb)

    def with_attention(threshold: int):
        def run() -> None:
            default = attention_module.BLOCK_SPARSE_MIN_TOKENS
            attention_module.BLOCK_SPARSE_MIN_TOKENS = threshold
            try:
                step()
            finally:
                attention_module.BLOCK_SPARSE_MIN_TOKENS = default

        return run

    whole = interleaved_medians(
        {k: with_attention(t) for k, t in VARIANTS.items()}, rounds, clock=CLOCK
    )
    # the attention core alone: 6 layers of q/k/v [B, 8, N, 64] with the case's mask
    t_a, t_v, mean_a, mean_v = _tokens(batch)
    n = 1 + t_a + t_v
    valid = torch.cat(
        [torch.ones(len(batch.labels), 1, dtype=torch.bool), batch.audio_mask, batch.video_mask], 1
    )
    cores = _core_times(len(batch.labels), t_a, t_v, valid, train, rounds)
    scores_dense = n * n
    scores_block = (
        n + 2 * t_a * t_v + t_a + t_v
    )  # class token row + cross blocks (with the class key)
    return {
        "case": name, "train": train, "batch": len(batch.labels), "padded_audio_steps": t_a,
        "padded_video_steps": t_v, "mean_valid_audio": mean_a, "mean_valid_video": mean_v,
        "scores_dense_per_head": scores_dense, "scores_block_per_head": scores_block,
        "step_dense_s": whole["dense"], "step_block_s": whole["block"],
        "attention_dense_s": cores["dense"], "attention_block_s": cores["block"],
        "rounds": rounds, "load_average": load_average(),
    }  # fmt: skip


def _core_times(
    b: int, t_a: int, t_v: int, valid: torch.Tensor | None, train: bool, rounds: int
) -> dict[str, float]:
    """Median seconds of 6 layers' attention (q/k/v ``[B, 8, N, 64]``) per variant."""
    n = 1 + t_a + t_v
    qkv = [torch.randn(b, 8, n, 64, requires_grad=train) for _ in range(3)]

    def core(variant: str):
        def run() -> None:
            default = attention_module.BLOCK_SPARSE_MIN_TOKENS
            attention_module.BLOCK_SPARSE_MIN_TOKENS = VARIANTS[variant]
            try:
                mask = BlockMask(((GLOBAL, 1), (AUDIO, t_a), (VIDEO, t_v)), valid, "cross")
                with torch.set_grad_enabled(train):
                    for _ in range(6):
                        out = attention_module.masked_attention(*qkv, mask)
                        if train:
                            out.sum().backward()
            finally:
                attention_module.BLOCK_SPARSE_MIN_TOKENS = default

        return run

    return interleaved_medians({k: core(k) for k in VARIANTS}, rounds, clock=CLOCK)


def sweep(rounds: int) -> None:
    """Attention core alone, every step valid, at growing lengths (crossover of the default)."""
    print(
        "\n| tokens (a / v) | batch | forward: dense / block ms | forward+backward: dense / block ms | load |"
    )
    print("|---|---|---|---|---|")
    for b, t_a, t_v in (
        (64, 10, 15),
        (64, 40, 60),
        (32, 50, 75),
        (32, 80, 120),
        (16, 120, 180),
        (16, 200, 300),
    ):
        fwd = _core_times(b, t_a, t_v, None, False, rounds)
        bwd = _core_times(b, t_a, t_v, None, True, rounds)
        print(
            f"| {1 + t_a + t_v} ({t_a} / {t_v}) | {b} | {1e3 * fwd['dense']:.0f} / {1e3 * fwd['block']:.0f} "
            f"({fwd['dense'] / fwd['block']:.2f}x) | {1e3 * bwd['dense']:.0f} / {1e3 * bwd['block']:.0f} "
            f"({bwd['dense'] / bwd['block']:.2f}x) | {load_average()} |",
            flush=True,
        )


CASES = ("ucf_train", "vggsound_train", "activitynet_train", "activitynet_eval")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", choices=CASES, action="append")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--eval-batch", type=int, default=16)
    ap.add_argument("--json")
    ap.add_argument("--sweep", action="store_true", help="only the attention-core length sweep")
    ap.add_argument("--clock", choices=["cpu", "wall"], default="cpu")
    args = ap.parse_args()
    global CLOCK
    CLOCK = args.clock
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"{machine()}; load average {load_average()}")
    if args.sweep:
        sweep(args.rounds)
        return
    print(
        "| case | padded steps a / v (mean valid) | scores per head: dense -> block | attention core: dense / block (gain) | whole step: dense / block (gain) | load |"
    )
    print("|---|---|---|---|---|---|")
    rows = []
    for name in args.case or CASES:
        r = run_case(name, args.rounds, args.eval_batch)
        rows.append(r)
        print(
            f"| {name} (B={r['batch']}) | {r['padded_audio_steps']} / {r['padded_video_steps']} "
            f"({r['mean_valid_audio']:.1f} / {r['mean_valid_video']:.1f}) | {r['scores_dense_per_head']} -> "
            f"{r['scores_block_per_head']} ({r['scores_block_per_head'] / r['scores_dense_per_head']:.2f}) | "
            f"{1e3 * r['attention_dense_s']:.1f} / {1e3 * r['attention_block_s']:.1f} ms "
            f"({r['attention_dense_s'] / r['attention_block_s']:.2f}x) | {1e3 * r['step_dense_s']:.0f} / "
            f"{1e3 * r['step_block_s']:.0f} ms ({r['step_dense_s'] / r['step_block_s']:.2f}x) | {r['load_average']} |",
            flush=True,
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
