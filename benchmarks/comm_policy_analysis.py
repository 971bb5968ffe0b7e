"""Why does the adapted speaker settle on "always name the shape"? (issue 14, item 10)

Offline world of ``comm.demo`` (one attribute per description): the speaker is warmed up,
adapted with each variant against one listener, then its greedy descriptions of the 300
held-out episodes are analysed:

* ``shape`` / ``color``: share of descriptions that name the shape / a colour;
* ``valid``: share whose named attribute tells target and confounder apart;
* ``shape|useless``: P(names the shape) on episodes where the shapes are the same;
* ``success``: held-out success with the evaluation listener;

and, before adapting, the warmed-up speaker's first word with colour removed
(:func:`first_word_probe`).

References on the same episodes and listener: the GT speaker with every attribute the listener
perceives (grayscale: shape, size, material; normal: all four) within the one-attribute budget
(its first distinguishing attribute: the best one-attribute policy that reads the scene), the
warmed-up speaker (pi_0) and, for grayscale, "always shape". Every variant starts from the same
adapter initialisation (``torch.manual_seed(seed)`` before ``add_adapter``, as ``run_world``
does between runs). Variants ``*_ties-1`` train against a listener that answers "I cannot
tell." (reward -1) when both images match the description equally, instead of guessing
(``world_config.train_abstain_on_ties``; the evaluation listener always guesses). Run:

    OMP_NUM_THREADS=1 python benchmarks/comm_policy_analysis.py --seeds 0 1 2 \
        [--jobs grayscale:ppo normal:ppo ...] [--interactions 900]
"""

from __future__ import annotations

import argparse
import warnings
from dataclasses import replace

import numpy as np
import torch

VARIANTS = {
    # name: (algorithm, overrides of the comm.demo hyperparameters, listener abstains on ties)
    "ppo": ("ppo", {}, False),
    "ppo_kl0.05": ("ppo", {"kl_coef": 0.05}, False),
    "ppo_kl0": ("ppo", {"kl_coef": 0.0}, False),
    "ppo_ties-1": ("ppo", {}, True),
    "nlpo": ("nlpo", {}, False),
    "kto": ("kto", {}, False),
    "kto_ties-1": ("kto", {}, True),
}
JOBS = ["grayscale:ppo", "grayscale:ppo_kl0.05", "grayscale:ppo_ties-1", "grayscale:kto", "grayscale:kto_ties-1",
        "normal:ppo", "normal:ppo_kl0.05", "normal:ppo_ties-1"]


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
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--interactions", type=int, default=900)
    ap.add_argument("--jobs", nargs="+", default=JOBS, help=f"listener:variant (variants: {', '.join(VARIANTS)})")
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
    k = 2 * cfg.world_config.budget
    loop = replace(cfg.loop, interactions=args.interactions,
                   sampling=replace(cfg.loop.sampling, max_new_tokens=k), eval_max_new_tokens=k)
    cols = ("shape", "color", "valid", "shape|useless", "success")
    print(f"{args.interactions} interactions, 300 held-out episodes, warm-up {cfg.world_config.speaker.sft_steps} steps")
    print(f"{'seed':4s} {'listener':9s} {'speaker':22s} " + " ".join(f"{c:>13s}" for c in cols))

    def row(seed: int, weakness: str, name: str, m: dict[str, float]) -> None:
        print(f"{seed:<4d} {weakness:9s} {name:22s} " + " ".join(f"{m[c]:13.3f}" for c in cols), flush=True)

    for seed in args.seeds:
        world = World(cfg.world_config, seed)
        world.pretrain()
        probe = first_word_probe(world)
        print(f"{seed:<4d} pi_0 without colour: {probe['valid_mass']:.3f} of its mass on a distinguishing "
              f"attribute, argmax distinguishing {probe['argmax_valid']:.3f}")
        policy = world.policy()
        for weakness in dict.fromkeys(j.split(":")[0] for j in args.jobs):
            listener = world.listener(weakness, seed + 7919)
            perceived = ("shape", "size", "material") if weakness == "grayscale" else ("color", "shape", "size",
                                                                                         "material")
            row(seed, weakness, "GT, perceived attrs", _analyse(world, GTSpeaker(types=perceived, budget=k,
                                                                              name_types=True).describe, listener))
            if weakness == "grayscale":
                row(seed, weakness, "always shape", _analyse(
                    world, lambda eps: [f"shape {e.target.scene.objects[0].shape}" for e in eps], listener))
            torch.manual_seed(seed)
            policy.add_adapter(f"pi0-{weakness}")
            row(seed, weakness, "warmed-up (pi_0)", _analyse(world, lambda e, p=policy: p.describe(e, k), listener))
            for job in args.jobs:
                w, vname = job.split(":")
                if w != weakness:
                    continue
                algo_name, hp, abstain = VARIANTS[vname]
                torch.manual_seed(seed)  # the same adapter initialisation for every variant
                policy.add_adapter(f"{vname}-{weakness}".replace(".", "_"))
                world.cfg = replace(world.cfg, train_abstain_on_ties=abstain)
                adapt(policy, world.game(weakness, seed), replace(cfg.algorithms[algo_name], **hp), loop, seed=seed)
                row(seed, weakness, vname, _analyse(world, lambda e, p=policy: p.describe(e, k), listener))


if __name__ == "__main__":
    main()
