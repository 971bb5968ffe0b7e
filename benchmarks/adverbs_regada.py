"""Training and evaluation cost of ReGaDa on synthetic VATEX-sized data (issue 4).

Builds VATEX Adverbs-sized data in memory (11,157 train / 2,790 test rows, 34 adverbs x
135 actions = 4,590 pairs, T = 10 steps of 1024-d S3D features, 512-d text embeddings)
and runs the real method/recipe code paths:

* ``train``: training steps of ``regada.vatex`` (emb 400, N_g = N_r = 2, batch 512, Adam),
  timed over ``--batches`` batches and extrapolated to one epoch (22 batches) and to the
  published run (2,001 epochs + 201 evaluations);
* ``eval``: one evaluation = all 4,590 pair embeddings once + 2,790 test videos scored
  against them in batches (:func:`lowshot.methods.adverbs.base.predict_adverb_scores`);
* ``eval_no_act``: the no-action-GT variant (one video pass per action query, 135x).

Usage::

    python benchmarks/adverbs_regada.py                   # 1 and 2 threads, markdown table
    python benchmarks/adverbs_regada.py --threads 1 --batches 3 --json out.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from typing import Any

import numpy as np
import torch

from lowshot.config.paper import load_paper_config
from lowshot.data.adverbs.features import ClipFeatureStore
from lowshot.data.adverbs.splits import AdverbSplit, SplitRows, Vocabulary
from lowshot.extract.text import HashTextEncoder
from lowshot.methods.adverbs.base import VocabText, build_method, make_batch, predict_adverb_scores
from lowshot.protocols.adverbs import AdverbData, LabelledRows

N_TRAIN, N_TEST, N_ADV, N_ACT, T, D_X, D_T = 11157, 2790, 34, 135, 10, 1024, 512
PUBLISHED_EPOCHS, PUBLISHED_EVALS = 2001, 201


def vatex_sized_data(seed: int = 0) -> AdverbData:
    """In-memory data with VATEX Adverbs sizes (random values; timing only)."""
    rng = np.random.default_rng(seed)
    n = N_TRAIN + N_TEST
    store = ClipFeatureStore(
        [str(i) for i in range(n)],
        torch.randn(n, T, D_X),
        None,
        torch.full((n,), T, dtype=torch.int64),
    )
    adverbs = tuple(f"adverb{i}" for i in range(N_ADV))
    antonyms = {a: adverbs[i ^ 1] for i, a in enumerate(adverbs)}
    vocab = Vocabulary(adverbs, tuple(f"action{i}" for i in range(N_ACT)), antonyms)

    def rows(lo: int, hi: int) -> LabelledRows:
        idx = np.arange(lo, hi)
        return LabelledRows(
            rng.integers(0, N_ADV, hi - lo), rng.integers(0, N_ACT, hi - lo), idx, store
        )

    empty = SplitRows((), (), (), None)  # type: ignore[arg-type]
    split = AdverbSplit("vatex_sized", empty, empty, vocab, False, None)  # type: ignore[arg-type]
    return AdverbData(split, rows(0, N_TRAIN), rows(N_TRAIN, n), vocab.antonym_index())


def bench(threads: int, batches: int, no_act_rows: int) -> dict[str, Any]:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    data = vatex_sized_data()
    text = VocabText(HashTextEncoder(D_T).encode, data.vocab.adverbs, data.vocab.actions)
    cfg = load_paper_config("regada.vatex")
    method = build_method("adverbs.regada", cfg["model"], data, text, D_X)
    opt = torch.optim.Adam(method.parameters(), lr=1e-5, weight_decay=5e-5)
    gen = torch.Generator().manual_seed(0)
    perm = torch.randperm(N_TRAIN, generator=gen).split(512)
    method.train()
    times = []
    for i in range(batches + 1):  # the first step is warm-up
        t0 = time.perf_counter()
        out = method.training_loss(make_batch(data.train, perm[i].numpy()), gen)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    step = float(np.median(times[1:]))
    epoch = step * len(perm)

    t0 = time.perf_counter()
    predict_adverb_scores(method, data.test, N_ACT, batch_size=1024)
    ev = time.perf_counter() - t0

    sub = data.test.subset(np.arange(no_act_rows))
    t0 = time.perf_counter()
    predict_adverb_scores(method, sub, N_ACT, batch_size=1024, no_action_gt=True)
    ev_no_act = (time.perf_counter() - t0) * N_TEST / no_act_rows

    n_params = sum(p.numel() for p in method.parameters() if p.requires_grad)
    full_h = (epoch * PUBLISHED_EPOCHS + ev * PUBLISHED_EVALS) / 3600
    return {
        "threads": threads,
        "trainable_params": n_params,
        "s_per_step_b512": step,
        "s_per_epoch": epoch,
        "s_per_eval": ev,
        "s_per_eval_no_act_gt": ev_no_act,
        "full_run_h": full_h,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    p.add_argument("--batches", type=int, default=5, help="timed training steps (after 1 warm-up)")
    p.add_argument(
        "--no-act-rows", type=int, default=256, help="test rows for the no-action-GT timing"
    )
    p.add_argument("--json", help="write the results here")
    args = p.parse_args()
    results = [bench(t, args.batches, args.no_act_rows) for t in args.threads]
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}")
    print(
        "| threads | params | s/step (b512) | s/epoch (22 steps) | s/eval (2790 x 4590) | s/eval no-act GT | full run (2001 ep + 201 evals) |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['threads']} | {r['trainable_params'] / 1e6:.2f} M | {r['s_per_step_b512']:.3f} | {r['s_per_epoch']:.2f} | "
            f"{r['s_per_eval']:.2f} | {r['s_per_eval_no_act_gt']:.1f} | {r['full_run_h']:.1f} h |"
        )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
