"""Unit tests of the PPO / NLPO / KTO objectives (hand-computed values and sanity properties)."""

from __future__ import annotations

import math

import torch

from lowshot.losses.policy import (
    gae_advantages,
    kl_shaped_rewards,
    kto_kl_reference,
    kto_loss,
    masked_token_logprobs,
    nucleus_mask,
    ppo_loss,
    sequence_logratio,
    whiten,
)


def test_kl_shaped_rewards_put_score_on_last_real_token():
    lp = torch.tensor([[-1.0, -2.0, -3.0], [-1.0, -1.0, 0.0]])
    ref = torch.tensor([[-1.5, -2.0, -2.0], [-2.0, -1.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    r = kl_shaped_rewards(torch.tensor([1.0, -1.0]), lp, ref, mask, beta=0.5)
    expected = torch.tensor([[-0.25, 0.0, 0.5 + 1.0], [-0.5, 0.0 - 1.0, 0.0]])
    assert torch.allclose(r, expected)


def test_gae_with_gamma_lambda_one_is_return_minus_value():
    rewards = torch.tensor([[0.0, 0.5, 1.0, 0.0]])
    values = torch.tensor([[0.2, 0.1, 0.3, 9.0]])  # last position is padding
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    adv, ret = gae_advantages(rewards, values, mask, gamma=1.0, lam=1.0)
    future = torch.tensor([1.5, 1.5, 1.0, 0.0])
    assert torch.allclose(adv[0], (future - values[0]) * mask[0])
    assert torch.allclose(ret[0], future * mask[0])


def test_gae_one_step_td_when_lambda_zero():
    rewards = torch.tensor([[0.0, 1.0]])
    values = torch.tensor([[0.4, 0.7]])
    adv, _ = gae_advantages(rewards, values, torch.ones(1, 2), gamma=0.9, lam=0.0)
    assert torch.allclose(adv, torch.tensor([[0.9 * 0.7 - 0.4, 1.0 - 0.7]]))


def test_ppo_clip_stops_gradient_outside_trust_region():
    old = torch.zeros(1, 2)
    lp = torch.tensor([[0.5, -0.5]], requires_grad=True)  # ratios e^0.5 (>1.2) and e^-0.5 (<0.8)
    adv = torch.tensor([[1.0, -1.0]])
    out = ppo_loss(lp, old, adv, torch.ones(1, 2), clip_range=0.2)
    out.loss.backward()
    assert torch.allclose(lp.grad, torch.zeros(1, 2))
    assert float(out.clip_fraction) == 1.0
    lp2 = torch.tensor([[0.05, -0.05]], requires_grad=True)
    ppo_loss(lp2, old, adv, torch.ones(1, 2), clip_range=0.2).loss.backward()
    assert lp2.grad[0, 0] < 0 and lp2.grad[0, 1] > 0  # raise good, lower bad tokens


def test_ppo_value_loss_is_clipped_and_weighted():
    z = torch.zeros(1, 1)
    v = torch.tensor([[1.0]], requires_grad=True)
    out = ppo_loss(z, z, z, torch.ones(1, 1), values=v, old_values=z, returns=torch.tensor([[1.0]]),
                   clip_range_value=0.2, vf_coef=0.5)
    # max((1-1)^2, (0.2-1)^2) * 0.5 = 0.32 ; total = 0.5 * 0.32
    assert math.isclose(float(out.value_loss.detach()), 0.32, rel_tol=1e-6)
    assert math.isclose(float(out.loss.detach()), 0.16, rel_tol=1e-6)


def test_nucleus_mask_keeps_smallest_set_reaching_top_p():
    logits = torch.tensor([0.5, 0.3, 0.15, 0.05]).log()
    assert nucleus_mask(logits, 0.9).tolist() == [True, True, True, False]
    assert nucleus_mask(logits, 0.5).tolist() == [True, False, False, False]
    assert nucleus_mask(logits, 0.5, min_tokens_to_keep=2).tolist() == [True, True, False, False]
    assert nucleus_mask(logits, 0.5, always_keep=torch.tensor([3])).tolist() == [True, False, False, True]
    assert nucleus_mask(logits, 1.0).all()


def test_masked_logprobs_renormalise_over_allowed_actions():
    logits = torch.zeros(1, 1, 4)
    tok = torch.tensor([[1]])
    assert math.isclose(float(masked_token_logprobs(logits, tok)), math.log(0.25), rel_tol=1e-6)
    am = torch.tensor([[[True, True, False, False]]])
    assert math.isclose(float(masked_token_logprobs(logits, tok, am)), math.log(0.5), rel_tol=1e-6)


def test_nlpo_with_top_p_one_equals_ppo():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 4, 7, generator=g, requires_grad=True)
    tokens = torch.randint(0, 7, (3, 4), generator=g)
    mask = torch.ones(3, 4)
    old = masked_token_logprobs(logits.detach(), tokens) - 0.05
    adv = torch.randn(3, 4, generator=g)
    full = nucleus_mask(torch.randn(3, 4, 7, generator=g), top_p=1.0)
    l_ppo = ppo_loss(masked_token_logprobs(logits, tokens), old, adv, mask).loss
    (g_ppo,) = torch.autograd.grad(l_ppo, logits)
    l_nlpo = ppo_loss(masked_token_logprobs(logits, tokens, full), old, adv, mask).loss
    (g_nlpo,) = torch.autograd.grad(l_nlpo, logits)
    assert torch.equal(l_ppo, l_nlpo) and torch.equal(g_ppo, g_nlpo)
    # with a real nucleus the objective differs (the mask changes the distribution)
    part = nucleus_mask(logits.detach(), top_p=0.5)
    part |= torch.nn.functional.one_hot(tokens, 7).bool()
    l_part = ppo_loss(masked_token_logprobs(logits, tokens, part), old, adv, mask).loss
    assert not torch.allclose(l_part, l_ppo)


def test_kto_all_desirable_and_all_undesirable_follow_the_formulas():
    lr = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
    z = torch.tensor(0.3)
    beta, ld, lu = 0.1, 1.5, 0.7
    out = kto_loss(lr, torch.ones(3, dtype=torch.bool), z, beta, ld, lu)
    expected = (ld * (1 - torch.sigmoid(beta * (lr.detach() - z)))).mean()
    assert torch.allclose(out.loss, expected)
    (g,) = torch.autograd.grad(out.loss, lr)
    assert (g < 0).all()  # desirable: raise the log-ratio
    out = kto_loss(lr, torch.zeros(3, dtype=torch.bool), z, beta, ld, lu)
    expected = (lu * (1 - torch.sigmoid(beta * (z - lr.detach())))).mean()
    assert torch.allclose(out.loss, expected)
    (g,) = torch.autograd.grad(out.loss, lr)
    assert (g > 0).all()  # undesirable: lower the log-ratio
    assert out.desirable_rewards.numel() == 0 and out.undesirable_rewards.numel() == 3


def test_kto_reference_point_is_clamped_and_detached():
    mm = torch.tensor([-3.0, -1.0, 1.0], requires_grad=True)
    z = kto_kl_reference(mm)
    assert float(z) == 0.0 and not z.requires_grad
    z = kto_kl_reference(torch.tensor([1.0, 2.0, 3.0], requires_grad=True))
    assert float(z) == 2.0 and not z.requires_grad
    lr = torch.zeros(2, requires_grad=True)
    zz = torch.tensor(1.0, requires_grad=True)
    kto_loss(lr, torch.tensor([True, False]), zz).loss.backward()
    assert zz.grad is None


def test_sequence_logratio_sums_over_completion_only():
    lp = torch.tensor([[-1.0, -2.0, -9.0]])
    ref = torch.tensor([[-2.0, -2.5, 0.0]])
    assert float(sequence_logratio(lp, ref, torch.tensor([[1.0, 1.0, 0.0]]))) == 1.5


def test_whiten_has_zero_mean_unit_variance_on_mask():
    x = torch.tensor([[1.0, 2.0, 3.0, 100.0]])
    m = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    w = whiten(x, m)
    assert abs(float(w[0, :3].mean())) < 1e-5 and float(w[0, 3]) == 0.0
    assert abs(float((w[0, :3] ** 2).mean()) - 1.0) < 1e-3


def _toy_ppo_kl(beta: float, steps: int = 40) -> float:
    """A 5-way, 2-token categorical policy updated by PPO; returns KL(pi || pi_0) at the end."""
    torch.manual_seed(0)
    ref_logits = torch.zeros(2, 5)
    logits = torch.zeros(2, 5, requires_grad=True)
    opt = torch.optim.Adam([logits], lr=0.05)
    for _ in range(steps):
        with torch.no_grad():
            tokens = torch.multinomial(logits.softmax(-1).repeat(3, 1), 1).view(3, 2)
            old = logits.log_softmax(-1).gather(-1, tokens.T).T
            ref = ref_logits.log_softmax(-1).gather(-1, tokens.T).T
            scores = (tokens[:, 1] == 0).float() * 2 - 1
            mask = torch.ones(3, 2)
            r = kl_shaped_rewards(scores, old, ref, mask, beta)
            adv, _ = gae_advantages(r, torch.zeros(3, 2), mask, 1.0, 0.95)
        for _ in range(4):
            lp = logits.log_softmax(-1).gather(-1, tokens.T).T
            loss = ppo_loss(lp, old, adv, mask).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
    p = logits.detach().softmax(-1)
    return float((p * (p.log() - ref_logits.log_softmax(-1))).sum())


def test_huge_kl_coefficient_keeps_policy_at_reference():
    kl_free = _toy_ppo_kl(beta=0.0)
    kl_huge = _toy_ppo_kl(beta=1e3)
    assert kl_free > 0.3
    assert kl_huge < 0.1 * kl_free
