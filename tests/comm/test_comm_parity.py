"""Parity of the update rules with reference implementations.

KTO: :func:`lowshot.comm.adapt.kto_update` against TRL's ``KTOTrainer`` loss on the same batch
(same tiny LM and LoRA adapter, TRL's reference adapter zeroed so that both references are
pi_0; skipped without ``trl``: ``pip install -e '.[comm-parity]'``). PPO: the clipped surrogate
and value loss against the PPO paper's objective and legacy TRL's value clip, and a whole
:func:`~lowshot.comm.adapt.ppo_update` epoch against a from-scratch reference (per-token KL
reward, GAE by the backward recursion, clipped objective), written here independently.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("peft")

from lowshot.comm.adapt import AlgoConfig, kto_update, ppo_update  # noqa: E402
from lowshot.comm.policy import LoraSpec, Rollout, SamplingConfig, SpeakerPolicy  # noqa: E402
from lowshot.comm.tiny import tiny_causal_lm, word_tokenizer  # noqa: E402
from lowshot.comm.world import vocabulary  # noqa: E402
from lowshot.losses.policy import ppo_loss  # noqa: E402

PROMPTS = ["target red cube other blue sphere say", "target small metal other large say",
           "target cylinder other cube rubber say"]
COMPLETIONS = ["color red", "size small material metal", "shape"]


def _policy(adapter: str = "default") -> tuple[SpeakerPolicy, object]:
    """A tiny LM speaker over PROMPTS (episodes are prompt indices) with a random LoRA (B != 0)."""
    torch.manual_seed(0)
    tok = word_tokenizer(vocabulary())
    model = tiny_causal_lm(len(tok))

    def encode(eps):
        enc = tok([PROMPTS[i] for i in eps], return_tensors="pt", padding=True, add_special_tokens=False)
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}

    pol = SpeakerPolicy(model, tok, encode, LoraSpec(r=4, alpha=8))
    pol.add_adapter(adapter)
    with torch.no_grad():
        for n, p in pol.model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.3)
    return pol, tok


def _lora_grads(pol: SpeakerPolicy) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in pol.model.named_parameters()
            if p.grad is not None and ".default." in n}


@pytest.mark.parametrize("labels,weights", [([True, False, True], (1.0, 1.0)),
                                            ([False, False, True], (1.3, 0.7))])
def test_kto_loss_and_gradients_match_trl_kto_trainer(tmp_path, labels, weights):
    pytest.importorskip("trl")
    datasets = pytest.importorskip("datasets")
    from trl import KTOConfig, KTOTrainer

    pol, tok = _policy("default")  # TRL copies the adapter named "default" into "ref"
    # lowshot's policy renormalises over the tokens it may generate (special tokens banned);
    # TRL scores over the whole vocabulary: compare the loss on the same distribution
    pol.banned_ids = torch.zeros(0, dtype=torch.long)
    ds = datasets.Dataset.from_dict({"prompt": PROMPTS, "completion": [" " + c for c in COMPLETIONS],
                                     "label": labels})
    args = KTOConfig(output_dir=str(tmp_path), per_device_train_batch_size=3, beta=0.1, report_to="none",
                     use_cpu=True, desirable_weight=weights[0], undesirable_weight=weights[1], max_length=64,
                     bf16=False, disable_tqdm=True)
    trainer = KTOTrainer(model=pol.model, args=args, train_dataset=ds, processing_class=tok)
    with torch.no_grad():  # TRL's reference = a copy of the starting adapter; ours = pi_0 (adapter off)
        for n, p in pol.model.named_parameters():
            if ".ref." in n and "lora_B" in n:
                p.zero_()
    pol.use("default")
    batch = next(iter(trainer.get_train_dataloader()))
    pol.model.train()
    pol.model.zero_grad()
    trl_loss = trainer.compute_loss(trainer.model, batch)
    trl_loss.backward()
    trl_grads = _lora_grads(pol)

    comp = tok([c + " <eos>" for c in COMPLETIONS], return_tensors="pt", padding=True, add_special_tokens=False,
               padding_side="right")
    roll = Rollout(pol.encode([0, 1, 2]), comp["input_ids"], comp["attention_mask"].float(), COMPLETIONS)
    opt = torch.optim.SGD(pol.trainable_parameters(), lr=0.0)
    rewards = np.where(labels, 1.0, -1.0)
    stats = kto_update(pol, opt, roll, rewards, AlgoConfig(name="kto", kto_beta=0.1, lambda_d=weights[0],
                                                           lambda_u=weights[1], max_grad_norm=0))
    ours = _lora_grads(pol)
    assert stats["loss"] == pytest.approx(float(trl_loss.detach()), abs=1e-6)
    assert stats["kl_ref"] > 0  # the reference point z is active (not clamped to 0)
    assert set(ours) == set(trl_grads) and ours
    for n in ours:
        assert torch.allclose(ours[n], trl_grads[n], atol=1e-6), n


# ---------------------------------------------------------------------------- PPO
def _reference_ppo(lp, old_lp, adv, mask, v, old_v, ret, eps, eps_v, vf_coef):
    """The PPO paper's objective L^CLIP = E[min(r A, clip(r, 1-eps, 1+eps) A)] (maximised, so
    its negative is the loss) over the masked tokens, plus legacy TRL's clipped value loss."""
    m = mask.bool()
    r = (lp - old_lp).exp()
    clip_obj = torch.min(r * adv, torch.clamp(r, 1 - eps, 1 + eps) * adv)
    policy = -clip_obj[m].mean()
    v_clipped = torch.max(torch.min(v, old_v + eps_v), old_v - eps_v)
    value = 0.5 * torch.max((v - ret) ** 2, (v_clipped - ret) ** 2)[m].mean()
    return policy + vf_coef * value


@pytest.mark.parametrize("eps", [0.2, 1.0])  # 1.0: the thesis' printed epsilon
def test_ppo_clipped_objective_matches_the_paper_formula(eps):
    g = torch.Generator().manual_seed(0)
    B, T = 4, 6
    mask = torch.ones(B, T)
    mask[1, 4:] = 0
    mask[3, 2:] = 0
    old_lp = -torch.rand(B, T, generator=g) * 3
    lp = (old_lp + torch.randn(B, T, generator=g)).requires_grad_()  # ratios inside and outside the clip
    adv = torch.randn(B, T, generator=g)
    old_v, ret = torch.randn(B, T, generator=g), torch.randn(B, T, generator=g)
    v = (old_v + torch.randn(B, T, generator=g)).requires_grad_()
    ours = ppo_loss(lp, old_lp, adv, mask, v, old_v, ret, eps, 0.2, 0.1).loss
    lp2, v2 = lp.detach().clone().requires_grad_(), v.detach().clone().requires_grad_()
    ref = _reference_ppo(lp2, old_lp, adv, mask, v2, old_v, ret, eps, 0.2, 0.1)
    assert float(ours) == pytest.approx(float(ref), abs=1e-6)
    ours.backward()
    ref.backward()
    assert torch.allclose(lp.grad, lp2.grad, atol=1e-7) and torch.allclose(v.grad, v2.grad, atol=1e-7)
    ratio = (lp - old_lp).exp()
    assert bool(((ratio > 1 + eps) | (ratio < 1 - eps))[mask.bool()].any())  # the clip is exercised


def test_ppo_update_matches_a_from_scratch_reference():
    """One ppo_update epoch on a sampled rollout == per-token KL rewards + GAE recursion +
    clipped objective computed here from the model's log-probs and values."""
    pol, _ = _policy("adapted")
    torch.manual_seed(1)
    roll = pol.sample([0, 1, 2], SamplingConfig(max_new_tokens=4))
    rewards = np.array([1.0, -1.0, 0.5])
    cfg = AlgoConfig(name="ppo", kl_coef=0.2, gamma=0.9, lam=0.8, ppo_epochs=1, clip_range=0.2,
                     clip_range_value=0.2, vf_coef=0.1, whiten_advantages=False, max_grad_norm=0)
    with torch.no_grad():
        lp, v = pol.logprobs(roll, values=True)
        with pol.reference():
            ref_lp, _ = pol.logprobs(roll)
    mask = roll.mask
    B, T = mask.shape
    adv = torch.zeros(B, T)
    ret = torch.zeros(B, T)
    for b in range(B):
        n = int(mask[b].sum())
        r = [-cfg.kl_coef * float(roll.full_logprobs[b, t] - ref_lp[b, t]) for t in range(n)]
        r[n - 1] += float(rewards[b])
        gae = 0.0
        for t in reversed(range(n)):
            nxt = float(v[b, t + 1]) if t + 1 < n else 0.0
            delta = r[t] + cfg.gamma * nxt - float(v[b, t])
            gae = delta + cfg.gamma * cfg.lam * gae
            adv[b, t] = gae
            ret[b, t] = gae + float(v[b, t])
    lp_g, v_g = pol.logprobs(roll, values=True)
    expected = _reference_ppo(lp_g, roll.logprobs, adv, mask, v_g, v, ret, cfg.clip_range,
                              cfg.clip_range_value, cfg.vf_coef)
    opt = torch.optim.SGD(pol.trainable_parameters(), lr=0.0)
    stats = ppo_update(pol, opt, roll, rewards, cfg)
    assert stats["loss"] == pytest.approx(float(expected), abs=1e-5)
