"""Why does KTO degrade the RES speaker against the normal listener? (issue 14)

Offline RES world of ``comm.res_demo`` (3-object scenes, one attribute per description): the
speaker is warmed up, then adapted with KTO variants against one listener, each from the same
adapter initialisation as ``run_world`` gives the KTO runs (``torch.manual_seed(seed)`` before
``add_adapter``). Per variant: the mIoU curve, and on the 300 held-out episodes the attribute
types named, ``true_value`` (every named value is the target's) and ``valid`` (the named value
singles the target out); over training, the desirable fraction and the KTO reference point z
(means over updates 1-100, 101-200, 201-300). ``--probe`` instead measures how context-bound
one KTO step is: log-ratios of one all-desirable batch under its own prompts (matched) and
under the shifted prompts (mismatched) after each of 5 steps. Run:

    OMP_NUM_THREADS=1 python benchmarks/comm_res_kto.py --seed 0 --listener normal \
        --variants demo lr3e-4 lambda_u0 lambda_u3
    OMP_NUM_THREADS=1 python benchmarks/comm_res_kto.py --probe
"""

from __future__ import annotations

import argparse
import collections
import warnings
from dataclasses import replace

import numpy as np
import torch

VARIANTS = {"demo": {}, "lr3e-4": {"lr": 3e-4}, "lambda_u0": {"lambda_u": 0.0}, "lambda_u3": {"lambda_u": 3.0}}


def analyse(world, policy) -> dict[str, object]:
    """Attribute types named, true-value and singles-out rates of the greedy descriptions."""
    from lowshot.comm.attributes import mentioned_values
    from lowshot.comm.gt_speaker import distinguishing_values, episode_scenes

    eps = world.test_episodes
    named = [mentioned_values(m) for m in world.truncate(policy.describe(eps, world.max_new_tokens))]
    true, valid = [], []
    for m, e in zip(named, eps):
        target, others = episode_scenes(e)
        attrs = target.objects[0].attributes()
        true.append(bool(m) and all(attrs[t] == v for t, vs in m.items() for v in vs))
        d = distinguishing_values(target, others)
        valid.append(any(t in d and all(v in d[t] for v in vs) for t, vs in m.items()))
    return {"types": dict(collections.Counter(next(iter(m), None) for m in named)),
            "true_value": round(float(np.mean(true)), 3), "valid": round(float(np.mean(valid)), 3)}


def probe() -> None:
    """Matched vs mismatched log-ratios after KTO steps on one all-desirable batch (tiny RES world)."""
    from lowshot.comm.adapt import AlgoConfig, kto_update
    from lowshot.comm.policy import SamplingConfig
    from lowshot.comm.world import World, WorldConfig
    from lowshot.losses.policy import sequence_logratio

    world = World(replace(WorldConfig.tiny(), n_objects=3, image_size=96), 0, "res")
    world.pretrain()
    policy = world.policy()
    policy.add_adapter("probe")
    roll = policy.sample(world.sample(world.train_pool, 3, np.random.default_rng(0)), SamplingConfig(max_new_tokens=2))
    opt = torch.optim.Adam(policy.trainable_parameters(), lr=1e-3)

    def logratio(r):
        with torch.no_grad():
            with policy.reference():
                ref, _ = policy.logprobs(r)
            lp, _ = policy.logprobs(r)
        return sequence_logratio(lp, ref, r.mask).numpy().round(3)

    print("completions", roll.texts)
    for k in range(5):
        policy.model.train()
        kto_update(policy, opt, roll, np.ones(3), AlgoConfig(name="kto", lr=1e-3))
        print(f"step {k + 1}: matched {logratio(roll)}  mismatched {logratio(roll.shifted(1))}")


def main() -> None:
    warnings.filterwarnings("ignore")
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--listener", default="normal")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS))
    ap.add_argument("--probe", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.probe:
        probe()
        return

    from lowshot.comm.adapt import adapt
    from lowshot.comm.world import World
    from lowshot.config.paper import load_paper_config
    from lowshot.recipes.comm import load_config

    cfg = load_config(load_paper_config("comm.res_demo", []))
    world = World(cfg.world_config, args.seed, "res")
    world.pretrain()
    k = world.max_new_tokens
    loop = replace(cfg.loop, sampling=replace(cfg.loop.sampling, max_new_tokens=k), eval_max_new_tokens=k)
    policy = world.policy(cfg.compute)
    for i, name in enumerate(args.variants):
        torch.manual_seed(args.seed)
        policy.add_adapter(f"kto{i}")
        if i == 0:
            print("warmed-up speaker", analyse(world, policy), flush=True)
        res = adapt(policy, world.game(args.listener, args.seed), replace(cfg.algorithms["kto"], **VARIANTS[name]),
                    loop, seed=args.seed)
        log = res.train_log
        thirds = [log[j:j + 100] for j in range(0, len(log), 100)]
        print(name, "mIoU", [(c["interactions"], round(c["miou"], 3)) for c in res.curve], analyse(world, policy),
              "desirable", [round(float(np.mean([r["desirable_frac"] for r in t])), 2) for t in thirds],
              "z", [round(float(np.mean([r["kl_ref"] for r in t])), 2) for t in thirds], flush=True)


if __name__ == "__main__":
    main()
