"""SpeakerPolicy on the tiny word-level LM: alignment of log-probs, NLPO(top-p 1) == PPO, KTO pairs."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("peft")

from lowshot.comm.adapt import AlgoConfig, ppo_update  # noqa: E402
from lowshot.comm.games import sample_rei_episodes  # noqa: E402
from lowshot.comm.policy import ComputeConfig, SamplingConfig, SpeakerPolicy  # noqa: E402
from lowshot.comm.world import SpeakerLMConfig, World, WorldConfig  # noqa: E402


@pytest.fixture(scope="module")
def world():
    return World(WorldConfig(train_images=40, test_images=20, test_episodes=20,
                             speaker=SpeakerLMConfig(sft_steps=0)), seed=3)


def _episodes(world, n=3, seed=0):
    return sample_rei_episodes(world.train_pool, n, np.random.default_rng(seed))


def _nlpo_rollout(world, adapter, n, top_p, seed):
    """A fresh adapter's policy, and ``n`` episodes sampled under its snapshot's top-p mask."""
    policy = world.policy()
    policy.add_adapter(adapter)
    snap = policy.snapshot()
    torch.manual_seed(seed)
    return policy, policy.sample(_episodes(world, n), SamplingConfig(max_new_tokens=2), mask_adapter=snap,
                                 mask_top_p=top_p, min_tokens_to_keep=1)


def test_logprobs_align_with_sampling_distribution(world):
    policy = world.policy()
    policy.add_adapter("first")
    eps = _episodes(world)
    roll = policy.sample(eps, SamplingConfig(max_new_tokens=3, do_sample=False))
    lp, _ = policy.logprobs(roll)
    # recompute step by step from the raw model: greedy tokens are the per-step argmax
    ids = torch.cat([roll.inputs["input_ids"], roll.tokens], 1)
    P = roll.inputs["input_ids"].shape[1]
    with torch.no_grad():
        logits = policy.model(input_ids=ids).logits.float()
        logits[..., policy.banned_ids] = float("-inf")  # pad/unk/bos are never generated
        logits = logits.log_softmax(-1)
    for t in range(roll.tokens.shape[1]):
        step = logits[:, P - 1 + t]
        m = roll.mask[:, t].bool()
        assert torch.equal(step.argmax(-1)[m], roll.tokens[m, t])
        assert torch.allclose(step.max(-1).values[m], lp[m, t], atol=1e-5)


def test_nlpo_with_top_p_one_updates_exactly_like_ppo(world):
    policy = world.policy()
    policy.add_adapter("first")
    for p in policy.trainable_parameters():
        torch.nn.init.normal_(p, std=0.02)
    twin = copy.deepcopy(policy)
    eps = _episodes(world)
    torch.manual_seed(0)
    r_ppo = policy.sample(eps, SamplingConfig(max_new_tokens=2))
    snap = twin.snapshot()  # creating the snapshot adapter draws random numbers: do it before seeding
    torch.manual_seed(0)
    r_nlpo = twin.sample(eps, SamplingConfig(max_new_tokens=2), mask_adapter=snap, mask_top_p=1.0)
    assert torch.equal(r_ppo.tokens, r_nlpo.tokens) and r_nlpo.action_masks.all()
    rewards = np.array([1.0, -1.0, 1.0])
    cfg = AlgoConfig(name="ppo", ppo_epochs=2, lr=1e-2)
    s1 = ppo_update(policy, torch.optim.Adam(policy.trainable_parameters(), lr=1e-2), r_ppo, rewards, cfg)
    s2 = ppo_update(twin, torch.optim.Adam(twin.trainable_parameters(), lr=1e-2), r_nlpo, rewards, cfg)
    assert s1["loss"] == pytest.approx(s2["loss"], abs=1e-6)
    for a, b in zip(policy.trainable_parameters(), twin.trainable_parameters()):
        assert torch.allclose(a, b, atol=1e-6)


def test_nlpo_mask_restricts_sampling_to_the_snapshot_nucleus(world):
    _, roll = _nlpo_rollout(world, "first", 8, 0.3, 0)
    am = roll.action_masks
    assert am is not None and am.shape[:2] == roll.tokens.shape
    kept = am.sum(-1)[roll.mask.bool()]
    assert kept.float().mean() < am.shape[-1] / 2  # a real restriction
    chosen = am.gather(-1, roll.tokens.unsqueeze(-1)).squeeze(-1)
    assert chosen[roll.mask.bool()].all()  # every sampled action lies in the mask


def test_shifted_rollout_pairs_each_completion_with_the_previous_context(world):
    policy = world.policy()
    policy.add_adapter("first")
    roll = policy.sample(_episodes(world), SamplingConfig(max_new_tokens=2))
    mm = roll.shifted(1)
    assert torch.equal(mm.tokens[1], roll.tokens[0]) and torch.equal(mm.inputs["input_ids"], roll.inputs["input_ids"])
    assert mm.texts[1] == roll.texts[0]


def test_nlpo_mask_policy_refreshes_every_mu_updates(world, monkeypatch):
    from lowshot.comm.adapt import LoopConfig, adapt

    policy = world.policy()
    policy.add_adapter("nlpo")
    calls = []
    real = policy.snapshot

    def counting_snapshot(*a, **k):
        calls.append(len(calls))
        return real(*a, **k)

    monkeypatch.setattr(policy, "snapshot", counting_snapshot)
    game = world.game("grayscale")
    loop = LoopConfig(interactions=15, eval_every=0, sampling=SamplingConfig(max_new_tokens=2),
                      eval_max_new_tokens=2)
    adapt(policy, game, AlgoConfig(name="nlpo", mask_update_every=2, ppo_epochs=1), loop)
    assert len(calls) == 3  # updates 0, 2, 4 of 5


def test_sampling_time_logprobs_are_those_of_the_sampled_distribution(world):
    policy, roll = _nlpo_rollout(world, "first", 6, 0.5, 1)
    masked, _ = policy.logprobs(roll)
    full, _ = policy.logprobs(roll, use_action_masks=False)
    m = roll.mask.bool()
    assert torch.allclose(roll.logprobs[m], masked[m], atol=1e-5)
    assert torch.allclose(roll.full_logprobs[m], full[m], atol=1e-5)
    assert (roll.logprobs[m] >= roll.full_logprobs[m] - 1e-6).all()  # renormalised over the mask
    assert (roll.logprobs[~m] == 0).all() and (roll.full_logprobs[~m] == 0).all()


def test_nlpo_kl_penalty_is_zero_while_the_policy_equals_the_reference(world):
    # a fresh adapter is pi_0 (LoRA B = 0): the KL penalty must vanish, whatever the mask;
    # the masked, renormalised log-probs would add up to -log(top_p) per token instead
    policy, roll = _nlpo_rollout(world, "fresh-nlpo", 6, 0.5, 2)
    assert (roll.logprobs - roll.full_logprobs)[roll.mask.bool()].max() > 0.05  # the mask bites
    cfg = AlgoConfig(name="nlpo", ppo_epochs=1, lr=0.0)
    stats = ppo_update(policy, torch.optim.Adam(policy.trainable_parameters(), lr=0.0), roll,
                       np.array([1.0, -1.0, 1.0, 1.0, -1.0, 1.0]), cfg)
    assert abs(stats["kl"]) < 1e-5


@pytest.mark.parametrize("sampling,dropout", [
    (SamplingConfig(max_new_tokens=2, temperature=0.7), 0.0),
    (SamplingConfig(max_new_tokens=2, top_p=0.9), 0.0),
    (SamplingConfig(max_new_tokens=2), 0.1),
])
@pytest.mark.parametrize("algo", ["ppo", "nlpo"])
def test_ppo_refuses_settings_under_which_the_old_logprobs_are_not_pi_theta(world, sampling, dropout, algo):
    from lowshot.comm.adapt import LoopConfig, adapt
    from lowshot.comm.policy import LoraSpec, SpeakerPolicy
    from lowshot.errors import ConfigError

    policy = SpeakerPolicy(world.model, world.tokenizer, world.encode, LoraSpec(dropout=dropout))
    loop = LoopConfig(interactions=3, eval_every=0, sampling=sampling, eval_max_new_tokens=2)
    with pytest.raises(ConfigError, match="temperature|top_p|dropout"):
        adapt(policy, world.game("normal"), AlgoConfig(name=algo), loop)


def test_comm_config_refuses_off_policy_sampling_for_ppo():
    from lowshot.config.paper import load_paper_config
    from lowshot.errors import ConfigError
    from lowshot.recipes.comm import load_config

    with pytest.raises(ConfigError, match="temperature"):
        load_config(load_paper_config("comm.demo", ["loop.sampling.temperature=0.7"]))
    with pytest.raises(ConfigError, match="dropout"):
        load_config(load_paper_config("comm.demo", ["world_config.lora.dropout=0.1"]))
    cfg = load_config(load_paper_config("comm.demo", ["loop.sampling.temperature=0.7", "algorithms={kto: {}}"]))
    assert list(cfg.algorithms) == ["kto"]  # KTO has no ratio


def test_adding_the_first_adapter_prints_no_deprecation_warning(world):
    # peft reads transformers' deprecated `is_gradient_checkpointing` when wrapping the model;
    # this printed a FutureWarning on every comm run
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        world.policy().add_adapter("w")
    assert not [w for w in caught if "is_gradient_checkpointing" in str(w.message)]


def _grads(compute: ComputeConfig) -> tuple[dict[str, torch.Tensor], torch.Tensor, bool]:
    """LoRA gradients of the summed log-probs of a seeded rollout under ``compute``."""
    w = World(WorldConfig.tiny(), seed=3)
    pol = SpeakerPolicy(w.model, w.tokenizer, w.encode, w.cfg.lora, compute=compute)
    pol.add_adapter("adapted")
    torch.manual_seed(0)
    with torch.no_grad():
        for n, p in pol.model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.5)
    roll = pol.sample(_episodes(w), SamplingConfig(max_new_tokens=2))
    pol.model.train()
    lp, _ = pol.logprobs(roll)
    lp.sum().backward()
    grads = {n: p.grad.clone() for n, p in pol.model.named_parameters() if p.grad is not None}
    return grads, lp.detach(), bool(w.model.is_activation_checkpointing)


def test_gradient_checkpointing_gives_the_same_gradients():
    plain, lp, off = _grads(ComputeConfig())
    ckpt, lp_ckpt, on = _grads(ComputeConfig(gradient_checkpointing=True))
    assert on and not off
    assert torch.equal(lp, lp_ckpt) and set(plain) == set(ckpt) and len(plain) > 0
    for n in plain:
        assert torch.allclose(plain[n], ckpt[n], atol=1e-6), n


def test_bf16_autocast_runs_and_stays_close_to_float32():
    w = World(WorldConfig.tiny(), seed=3)
    pol = SpeakerPolicy(w.model, w.tokenizer, w.encode, w.cfg.lora, compute=ComputeConfig(precision="bfloat16"))
    pol.add_adapter("adapted")
    torch.manual_seed(0)
    roll = pol.sample(_episodes(w), SamplingConfig(max_new_tokens=2))  # sampling under autocast
    lp16, _ = pol.logprobs(roll)
    lp16.sum().backward()
    pol.compute = ComputeConfig()
    lp32, _ = pol.logprobs(roll)
    assert lp16.dtype == torch.float32 and torch.isfinite(lp16).all()
    assert not torch.equal(lp16, lp32)  # autocast really ran the matmuls in bf16
    assert torch.allclose(lp16, lp32, atol=0.1)
    grads = [p.grad for p in pol.trainable_parameters() if p.grad is not None]
    assert grads and all(g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)
    with pytest.raises(ValueError, match="precision"):
        ComputeConfig(precision="fp8")
