"""Adaptation is measurable in the offline world (differences between conditions over seeds)."""

from __future__ import annotations

from dataclasses import replace

import pytest

pytest.importorskip("transformers")
pytest.importorskip("peft")

from lowshot.config.paper import load_paper_config  # noqa: E402
from lowshot.recipes.comm import load_config, run_world  # noqa: E402


@pytest.mark.slow
def test_speaker_adapts_to_colour_blind_listener_but_keeps_colour_for_normal_vision():
    import torch

    # The outcome must not hinge on float rounding: with a warm-up that barely taught the
    # non-colour attributes, seed 1 adapted with AVX2 kernels and not at all with AVX-512 ones.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is fastest and deterministic
    try:
        data = load_paper_config("comm.demo", [
            "seeds=[0, 1]", "loop.interactions=600", "loop.eval_every=0",
            "world_config.train_images=200", "world_config.test_images=120",
            "world_config.test_episodes=200"])
        cfg = load_config(data)
        ppo = replace(cfg.algorithms["ppo"], ppo_epochs=2)
        cfg = replace(cfg, algorithms={"ppo": ppo})
        res = run_world(cfg, None, log=lambda *_: None)
    finally:
        torch.set_num_threads(threads)
    by = {(r["seed"], r["listener"]): r for r in res.extra["runs"]}
    print({k: (round(v["before"]["success_rate"], 3), round(v["after"]["success_rate"], 3),
               v["before"]["color_word_rate"], v["after"]["color_word_rate"]) for k, v in by.items()})
    gains, colour_drops, colour_gap, normal_change = [], [], [], []
    for seed in (0, 1):
        g, n = by[(seed, "grayscale")], by[(seed, "normal")]
        gains.append(g["after"]["success_rate"] - g["before"]["success_rate"])
        colour_drops.append(g["before"]["color_word_rate"] - g["after"]["color_word_rate"])
        colour_gap.append(n["after"]["color_word_rate"] - g["after"]["color_word_rate"])
        normal_change.append(n["after"]["success_rate"] - n["before"]["success_rate"])
    # colour-blind listener: better held-out success with fewer colour words, on every seed
    assert min(gains) > 0.0 and sum(gains) / 2 > 0.05
    assert min(colour_drops) > 0.2 and sum(colour_drops) / 2 > 0.4
    # normal vision: colour is kept (the adaptation is listener-specific) and nothing is lost on average
    assert min(colour_gap) > 0.2 and sum(colour_gap) / 2 > 0.4
    assert sum(normal_change) / 2 > -0.1
