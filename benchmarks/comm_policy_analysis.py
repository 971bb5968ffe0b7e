"""Why does the adapted speaker settle on "always name the shape"? (issue 14, item 10)

Offline world of ``comm.demo`` (one attribute per description, colour-blind listener): the
speaker is warmed up, adapted with each variant, then its greedy descriptions of the 300
held-out episodes are analysed:

* ``shape``: share of descriptions that name the shape;
* ``valid``: share whose named attribute tells target and confounder apart;
* ``shape|useless``: P(names the shape) on episodes where the shapes are the same;
* ``success``: held-out success with the evaluation listener;

and, before adapting, the warmed-up speaker's first word with colour removed
(:func:`first_word_probe`).

References on the same episodes and listener: the GT speaker with every attribute the listener
perceives (no colour) without a budget, and with the budget (its first distinguishing
non-colour attribute: the best one-attribute policy that reads the scene), and "always shape".
Run:

    OMP_NUM_THREADS=1 python benchmarks/comm_policy_analysis.py [--seeds 0 1] [--interactions 900]
"""

from __future__ import annotations

import argparse
import warnings
from dataclasses import replace

import numpy as np
import torch

VARIANTS = {
    # name: (algorithm, overrides of the comm.demo hyperparameters)
    "ppo (demo: kl 0.2)": ("ppo", {}),
    "ppo kl 0.05": ("ppo", {"kl_coef": 0.05}),
    "ppo kl 0": ("ppo", {"kl_coef": 0.0}),
    "ppo kl 0.2 lr/3": ("ppo", {"lr": 1e-4}),
    "kto (demo)": ("kto", {}),
}


def _analyse(world, describe, listener) -> dict[str, float]:
    from lowshot.comm.attributes import mentioned_values
    from lowshot.comm.games import evaluate_rei
    from lowshot.comm.gt_speaker import distinguishing_values

    eps = world.test_episodes
    msgs = world.truncate(describe(eps))
    named = [next(iter(mentioned_values(m)), None) for m in msgs]
    dist = [distinguishing_values(e.target.scene, e.confounder.scene) for e in eps]
    useless = [i for i, d in enumerate(dist) if "shape" not in d]
    listener.listener.rng = np.random.default_rng(1)
    return {
        "shape": float(np.mean([n == "shape" for n in named])),
        "color": float(np.mean([n == "color" for n in named])),
        "valid": float(np.mean([n in d for n, d in zip(named, dist)])),
        "shape|useless": float(np.mean([named[i] == "shape" for i in useless])) if useless else float("nan"),
        "success": evaluate_rei(lambda e: world.truncate(describe(e)), listener, eps)["success_rate"],
    }


def first_word_probe(world) -> dict[str, float]:
    """pi_0's first word with colour removed (where adaptation moves colour's mass): the share
    of its mass on a distinguishing attribute, and how often its argmax distinguishes."""
    from lowshot.comm.gt_speaker import distinguishing_values

    eps = world.test_episodes
    enc = world.encode(eps)
    pos = (enc["attention_mask"].cumsum(-1) - 1).clamp_min(0)
    with torch.no_grad():
        logits = world.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                             position_ids=pos).logits[:, -1]
    types = ["shape", "size", "material"]
    p = logits[:, [world.tokenizer.convert_tokens_to_ids(t) for t in types]].softmax(-1)
    dist = [distinguishing_values(e.target.scene, e.confounder.scene) for e in eps]
    return {"valid_mass": float(np.mean([sum(float(p[k, j]) for j, t in enumerate(types) if t in d)
                                         for k, d in enumerate(dist)])),
            "argmax_valid": float(np.mean([types[int(p[k].argmax())] in d for k, d in enumerate(dist)]))}


def main() -> None:
    warnings.filterwarnings("ignore")
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--interactions", type=int, default=900)
    ap.add_argument("--listener", default="grayscale")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS))
    ap.add_argument("--sft-steps", type=int, default=None, help="warm-up steps (comm.demo: 300)")
    args = ap.parse_args()
    torch.set_num_threads(1)

    from lowshot.comm.adapt import adapt
    from lowshot.comm.gt_speaker import GTSpeaker
    from lowshot.comm.world import World
    from lowshot.config.paper import load_paper_config
    from lowshot.recipes.comm import load_config

    over = [f"world_config.speaker.sft_steps={args.sft_steps}"] if args.sft_steps else []
    cfg = load_config(load_paper_config("comm.demo", over))
    loop = replace(cfg.loop, interactions=args.interactions,
                   sampling=replace(cfg.loop.sampling, max_new_tokens=2 * cfg.world_config.budget),
                   eval_max_new_tokens=2 * cfg.world_config.budget)
    cols = ("shape", "color", "valid", "shape|useless", "success")
    print(f"listener {args.listener}, {args.interactions} interactions, 300 held-out episodes, "
          f"warm-up {cfg.world_config.speaker.sft_steps} steps")
    print(f"{'seed':4s} {'speaker':26s} " + " ".join(f"{c:>13s}" for c in cols))
    for seed in args.seeds:
        world = World(cfg.world_config, seed)
        world.pretrain()
        listener = world.listener(args.listener, seed + 7919)
        k = 2 * cfg.world_config.budget
        refs = {"GT no colour, no budget": GTSpeaker(types=("shape", "size", "material"), name_types=True),
                "GT no colour, 1 attribute": GTSpeaker(types=("shape", "size", "material"), budget=k,
                                                       name_types=True),
                "always shape": None}
        for name, sp in refs.items():
            if sp is None:
                def describe(eps):
                    return [f"shape {e.target.scene.objects[0].shape}" for e in eps]
            else:
                describe = sp.describe
            if name.endswith("no budget"):
                # the listener reads every word: no truncation for this reference
                from lowshot.comm.games import evaluate_rei

                listener.listener.rng = np.random.default_rng(1)
                s = evaluate_rei(describe, listener, world.test_episodes)["success_rate"]
                print(f"{seed:<4d} {name:26s} " + " ".join(f"{'':>13s}" for _ in cols[:-1]) + f" {s:13.3f}")
                continue
            m = _analyse(world, describe, listener)
            print(f"{seed:<4d} {name:26s} " + " ".join(f"{m[c]:13.3f}" for c in cols))
        probe = first_word_probe(world)
        print(f"{seed:<4d} pi_0 without colour: {probe['valid_mass']:.3f} of its mass on a distinguishing "
              f"attribute, argmax distinguishing {probe['argmax_valid']:.3f}")
        policy = world.policy()
        m = _analyse(world, lambda e, p=policy, k=k: p.describe(e, k), listener)
        print(f"{seed:<4d} {'warmed-up speaker':26s} " + " ".join(f"{m[c]:13.3f}" for c in cols))
        for vname in args.variants:
            algo_name, over = VARIANTS[vname]
            algo = replace(cfg.algorithms[algo_name], **over)
            adapter = vname.replace(" ", "_").replace(".", "").replace("(", "").replace(")", "").replace(":", "")
            adapter = adapter.replace("/", "_")
            policy.add_adapter(adapter)
            adapt(policy, world.game(args.listener, seed), algo, loop, seed=seed)
            m = _analyse(world, lambda e, p=policy, k=k: p.describe(e, k), listener)
            print(f"{seed:<4d} {vname:26s} " + " ".join(f"{m[c]:13.3f}" for c in cols), flush=True)


if __name__ == "__main__":
    main()
