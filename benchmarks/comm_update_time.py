"""Time per online update (sample 3 episodes + listener + one algorithm update).

Cases: the offline world's tiny speaker LM (pixel listener) and tiny random LLaVA /
Qwen2-VL / PaliGemma speakers built from configs. Run:

    python benchmarks/comm_update_time.py [--repeats 10] [--threads 1]

Prints median seconds per update for PPO, NLPO and KTO.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
import torch


def _time_updates(policy, game_sample, play, algo_name: str, repeats: int, max_new_tokens: int) -> float:
    from lowshot.comm.adapt import AlgoConfig, kto_update, ppo_update
    from lowshot.comm.policy import SamplingConfig

    algo = AlgoConfig(name=algo_name, lr=1e-4, min_tokens_to_keep=2)
    policy.add_adapter(f"bench-{algo_name}")
    opt = torch.optim.Adam(policy.trainable_parameters(), lr=algo.lr)
    rng = np.random.default_rng(0)
    times = []
    snap = None
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        if algo_name == "nlpo" and i % algo.mask_update_every == 0:
            snap = policy.snapshot()
        eps = game_sample(3, rng)
        roll = policy.sample(eps, SamplingConfig(max_new_tokens=max_new_tokens), mask_adapter=snap,
                             mask_top_p=0.9, min_tokens_to_keep=2)
        rewards = play(eps, roll.texts)
        (kto_update if algo_name == "kto" else ppo_update)(policy, opt, roll, rewards, algo)
        if i:  # the first update warms caches up
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    warnings.filterwarnings("ignore")
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from lowshot.comm.games import play_rei, sample_rei_episodes
    from lowshot.comm.listeners import PixelListener
    from lowshot.comm.mllm import FAMILIES, MLLM, MLLMSpeaker
    from lowshot.comm.policy import LoraSpec, SpeakerPolicy
    from lowshot.comm.tiny import tiny_llava, tiny_paligemma, tiny_qwen2_vl
    from lowshot.comm.world import SpeakerLMConfig, World, WorldConfig, vocabulary

    print(f"torch threads: {args.threads}; median seconds per update (3 episodes), {args.repeats} updates")
    world = World(WorldConfig(train_images=100, test_images=10, test_episodes=10,
                              speaker=SpeakerLMConfig(sft_steps=0)), 0)
    game = world.game("grayscale")
    pol = world.policy()
    for algo in ("ppo", "nlpo", "kto"):
        s = _time_updates(pol, game.sample, game.play, algo, args.repeats, world.max_new_tokens)
        print(f"tiny speaker LM (2 tokens)   {algo:4s} {s:.3f}")

    words = vocabulary() + ["left", "right", "image", "the", "Picture", "1", "2", "A", "B"]
    listener = PixelListener()

    def sample(n, rng):
        return sample_rei_episodes(world.train_pool, n, rng)

    def play(eps, msgs):
        return play_rei(eps, msgs, listener)[0]

    for name, build in (("llava", tiny_llava), ("qwen2_vl", tiny_qwen2_vl), ("paligemma", tiny_paligemma)):
        torch.manual_seed(0)
        model, proc = build(words)
        mllm = MLLM(FAMILIES.get(name)(), model, proc)
        p = SpeakerPolicy(model, mllm.tokenizer, MLLMSpeaker(mllm).encode_rei, LoraSpec(r=8, alpha=16),
                          mllm.family.pass_position_ids)
        for algo in ("ppo", "nlpo", "kto"):
            s = _time_updates(p, sample, play, algo, args.repeats, 8)
            print(f"tiny {name:10s} (8 tokens)  {algo:4s} {s:.3f}")


if __name__ == "__main__":
    main()
