"""Policy-optimisation objectives for online speaker adaptation: PPO, NLPO and KTO.

Citations:
    PPO: Schulman et al., "Proximal Policy Optimization Algorithms", arXiv:1707.06347, with
    the per-token KL-shaped reward of Ziegler et al. 2019 / Stiennon et al. 2020 as written in
    thesis Eq. 7.1-7.2 (Alaniz, Mercea, Durmazkeser, Akata, "Adapting Communicating MLLMs on
    the Fly in Referring Expression Tasks", thesis ch. 7).
    NLPO: Ramamurthy et al., "Is Reinforcement Learning (Not) for Natural Language
    Processing", ICLR 2023 (RL4LMs) -- PPO under a top-p action mask from a mask policy.
    KTO: Ethayarajh et al., "KTO: Model Alignment as Prospect Theoretic Optimization",
    ICML 2024 (thesis Eq. 7.3-7.4).

What differs from published code: no public code exists for the thesis chapter. These are
plain functions over tensors written from the papers; they follow legacy TRL PPO (<=0.11:
k1 KL per token, task score on the last token, GAE, clipped value loss) and TRL's
``KTOTrainer`` (sequence log-ratios, KL reference point ``z`` from mismatched pairs,
clamped at 0 and detached). Unlike RL4LMs, the NLPO mask always keeps ``min_tokens_to_keep``
tokens counted on the *vocabulary at hand* (a default of 100 would disable masking on small
vocabularies), and there is no adaptive KL controller here (the coefficient is fixed, as in
the thesis, beta = 0.2). As in RL4LMs, the NLPO mask enters the policy ratio
(:func:`masked_token_logprobs`) but not the KL penalty, whose operands are the unmasked
policy log-probs.

Shapes: ``B`` episodes in a batch, ``T`` completion tokens (right-padded), ``V`` vocabulary.
``mask`` is a ``[B, T]`` bool/float tensor that is 1 on generated tokens (prompt and padding
are never part of these tensors).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


def masked_mean(x: Tensor, mask: Tensor, dim: int | None = None) -> Tensor:
    """Mean of ``x`` over positions where ``mask`` is set (0 when the mask is empty).

    Args:
        x: ``[B, T]`` values.
        mask: ``[B, T]`` bool or 0/1.
        dim: reduce over this dim only; ``None`` reduces over everything.
    """
    m = mask.to(x.dtype)
    if dim is None:
        return (x * m).sum() / m.sum().clamp_min(1.0)
    return (x * m).sum(dim) / m.sum(dim).clamp_min(1.0)


def whiten(x: Tensor, mask: Tensor, shift_mean: bool = True) -> Tensor:
    """Normalise ``x`` to unit variance over masked positions (advantage normalisation).

    Args:
        x: ``[B, T]``.
        mask: ``[B, T]``.
        shift_mean: subtract the masked mean too (TRL does for advantages).
    """
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    out = (x - mean) * torch.rsqrt(var + 1e-8)
    if not shift_mean:
        out = out + mean
    return out * mask.to(x.dtype)


# --------------------------------------------------------------------------- KL and rewards
def kl_penalty(logprobs: Tensor, ref_logprobs: Tensor, kind: str = "kl") -> Tensor:
    """Per-token KL estimate between the policy and the reference.

    Args:
        logprobs: ``[B, T]`` log pi_theta(a_t | s_t) of the sampled tokens.
        ref_logprobs: ``[B, T]`` log pi_0(a_t | s_t).
        kind: ``"kl"`` (k1 = log pi - log pi0, the thesis' estimator with operands in the
            standard order), ``"abs"``, ``"mse"`` (0.5 * k1^2) or ``"k3"`` (always >= 0).

    Returns:
        ``[B, T]`` per-token penalties.
    """
    d = logprobs - ref_logprobs
    if kind == "kl":
        return d
    if kind == "abs":
        return d.abs()
    if kind == "mse":
        return 0.5 * d.square()
    if kind == "k3":
        return torch.expm1(-d) + d
    raise ValueError(f"unknown KL estimator '{kind}' (kl, abs, mse, k3)")


def kl_shaped_rewards(
    scores: Tensor,
    logprobs: Tensor,
    ref_logprobs: Tensor,
    mask: Tensor,
    beta: float,
    kind: str = "kl",
) -> Tensor:
    """Per-token rewards ``r_t = -beta * KL_t`` plus the task score on the last token (Eq. 7.2).

    Args:
        scores: ``[B]`` task rewards (listener success +-1, or IoU).
        logprobs: ``[B, T]`` behaviour-policy log-probs of the sampled tokens.
        ref_logprobs: ``[B, T]`` reference log-probs.
        mask: ``[B, T]`` completion mask (right-padded, at least one token per row).
        beta: KL coefficient.
        kind: KL estimator, see :func:`kl_penalty`.

    Returns:
        ``[B, T]`` rewards, zero on padding.
    """
    m = mask.to(logprobs.dtype)
    rewards = -beta * kl_penalty(logprobs, ref_logprobs, kind) * m
    last = (m.sum(1).long() - 1).clamp_min(0)
    rewards = rewards.clone()
    rewards[torch.arange(rewards.shape[0]), last] += scores.to(rewards.dtype)
    return rewards


def gae_advantages(
    rewards: Tensor, values: Tensor, mask: Tensor, gamma: float = 1.0, lam: float = 0.95
) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimation over the completion tokens.

    Args:
        rewards: ``[B, T]`` per-token rewards (0 on padding).
        values: ``[B, T]`` value estimates V(s_t) (detached).
        mask: ``[B, T]`` completion mask (right-padded).
        gamma: discount.
        lam: GAE lambda.

    Returns:
        ``(advantages, returns)``, both ``[B, T]`` and zero on padding; returns = A + V.
    """
    m = mask.to(values.dtype)
    values = values * m
    B, T = rewards.shape
    adv = torch.zeros_like(rewards)
    last = torch.zeros(B, dtype=rewards.dtype, device=rewards.device)
    for t in reversed(range(T)):
        next_v = values[:, t + 1] if t + 1 < T else torch.zeros_like(last)
        delta = rewards[:, t] + gamma * next_v - values[:, t]
        last = delta + gamma * lam * last * (m[:, t + 1] if t + 1 < T else 0.0)
        last = last * m[:, t]
        adv[:, t] = last
    return adv, (adv + values) * m


# --------------------------------------------------------------------------- PPO
@dataclass(frozen=True)
class PPOLoss:
    """Terms of one PPO minibatch loss (all scalars)."""

    loss: Tensor
    policy_loss: Tensor
    value_loss: Tensor
    clip_fraction: Tensor
    approx_kl: Tensor


def ppo_loss(
    logprobs: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    mask: Tensor,
    values: Tensor | None = None,
    old_values: Tensor | None = None,
    returns: Tensor | None = None,
    clip_range: float = 0.2,
    clip_range_value: float = 0.2,
    vf_coef: float = 0.1,
) -> PPOLoss:
    """Clipped PPO surrogate (Eq. 7.1) plus a clipped value loss.

    Args:
        logprobs: ``[B, T]`` current log-probs of the sampled tokens (with grad).
        old_logprobs: ``[B, T]`` log-probs at sampling time (detached).
        advantages: ``[B, T]`` (detached).
        mask: ``[B, T]`` completion mask.
        values: ``[B, T]`` current value predictions (with grad), optional.
        old_values: ``[B, T]`` value predictions at sampling time.
        returns: ``[B, T]`` GAE returns.
        clip_range: epsilon of the ratio clip (thesis prints 1).
        clip_range_value: clip of the value update around ``old_values``.
        vf_coef: weight of the value loss.

    Returns:
        :class:`PPOLoss`; ``loss`` is to be minimised.
    """
    ratio = torch.exp(logprobs - old_logprobs)
    pg1 = -advantages * ratio
    pg2 = -advantages * ratio.clamp(1.0 - clip_range, 1.0 + clip_range)
    policy_loss = masked_mean(torch.maximum(pg1, pg2), mask)
    clip_fraction = masked_mean((pg2 > pg1).to(logprobs.dtype), mask)
    approx_kl = masked_mean(0.5 * (logprobs - old_logprobs).square(), mask)
    if values is None:
        value_loss = torch.zeros((), dtype=logprobs.dtype, device=logprobs.device)
    else:
        assert old_values is not None and returns is not None
        v_clip = old_values + (values - old_values).clamp(-clip_range_value, clip_range_value)
        vl = torch.maximum((values - returns).square(), (v_clip - returns).square())
        value_loss = 0.5 * masked_mean(vl, mask)
    return PPOLoss(
        loss=policy_loss + vf_coef * value_loss,
        policy_loss=policy_loss,
        value_loss=value_loss,
        clip_fraction=clip_fraction.detach(),
        approx_kl=approx_kl.detach(),
    )


# --------------------------------------------------------------------------- NLPO
def nucleus_mask(logits: Tensor, top_p: float, min_tokens_to_keep: int = 1,
                 always_keep: Tensor | None = None) -> Tensor:
    """Top-p action mask of the NLPO mask policy pi_psi (RL4LMs semantics).

    Tokens are sorted by probability and kept while the cumulative probability *before*
    them is below ``top_p`` (so the smallest set reaching ``top_p`` is kept); at least
    ``min_tokens_to_keep`` tokens and all ``always_keep`` ids are kept. ``top_p >= 1``
    keeps every token, which makes NLPO identical to PPO.

    Args:
        logits: ``[..., V]`` mask-policy logits.
        top_p: nucleus mass.
        min_tokens_to_keep: lower bound on the kept set.
        always_keep: ``[K]`` token ids that are never masked (e.g. special tokens).

    Returns:
        ``[..., V]`` bool, True where the action is allowed.
    """
    if top_p >= 1.0:
        return torch.ones_like(logits, dtype=torch.bool)
    probs = logits.float().softmax(-1)
    sorted_p, order = probs.sort(-1, descending=True)
    before = sorted_p.cumsum(-1) - sorted_p
    keep_sorted = before < top_p
    keep_sorted[..., : max(1, min_tokens_to_keep)] = True
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
    if always_keep is not None and always_keep.numel():
        keep[..., always_keep.to(keep.device)] = True
    return keep


def masked_token_logprobs(logits: Tensor, tokens: Tensor, action_mask: Tensor | None = None) -> Tensor:
    """Log-probabilities of ``tokens`` under ``logits`` renormalised over allowed actions.

    Args:
        logits: ``[B, T, V]``.
        tokens: ``[B, T]`` token ids.
        action_mask: ``[B, T, V]`` bool (NLPO) or None (all allowed, plain PPO/KTO).

    Returns:
        ``[B, T]`` log-probs.
    """
    logits = logits.float()
    if action_mask is not None:
        logits = logits.masked_fill(~action_mask, float("-inf"))
    logp = F.log_softmax(logits, -1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    # a token outside the mask (only on padding) would be -inf; keep the graph finite
    return torch.nan_to_num(logp, neginf=-1e4)


# --------------------------------------------------------------------------- KTO
@dataclass(frozen=True)
class KTOLoss:
    """Terms of one KTO batch loss."""

    loss: Tensor
    kl_ref: Tensor
    desirable_rewards: Tensor
    undesirable_rewards: Tensor


def kto_kl_reference(mismatched_logratio: Tensor) -> Tensor:
    """KTO reference point ``z = max(0, mean(log pi/pi0 on mismatched pairs))``, detached.

    Args:
        mismatched_logratio: ``[B]`` sequence log-ratios of completions scored under a
            shuffled context (image + prompt of another episode).
    """
    return mismatched_logratio.detach().mean().clamp_min(0.0)


def kto_loss(
    logratio: Tensor,
    desirable: Tensor,
    kl_ref: Tensor,
    beta: float = 0.1,
    lambda_d: float = 1.0,
    lambda_u: float = 1.0,
) -> KTOLoss:
    """KTO loss (Eq. 7.3-7.4) with a detached reference point.

    desirable: ``lambda_d * (1 - sigmoid(beta * (l - z)))``;
    undesirable: ``lambda_u * (1 - sigmoid(beta * (z - l)))``, averaged over the batch.

    Args:
        logratio: ``[B]`` sequence log-ratio ``l = sum_t log pi_theta - log pi_0`` (with grad).
        desirable: ``[B]`` bool (reward +1, or IoU >= 0.5).
        kl_ref: scalar ``z`` from :func:`kto_kl_reference` (gradients never flow into it).
        beta: KTO temperature (thesis 0.1).
        lambda_d: weight lambda+ of desirable examples.
        lambda_u: weight lambda- of undesirable examples.
    """
    z = kl_ref.detach()
    d = desirable.bool()
    per = torch.where(
        d,
        lambda_d * (1.0 - torch.sigmoid(beta * (logratio - z))),
        lambda_u * (1.0 - torch.sigmoid(beta * (z - logratio))),
    )
    return KTOLoss(
        loss=per.mean(),
        kl_ref=z,
        desirable_rewards=(beta * (logratio[d] - z)).detach(),
        undesirable_rewards=(beta * (logratio[~d] - z)).detach(),
    )


def sequence_logratio(logprobs: Tensor, ref_logprobs: Tensor, mask: Tensor) -> Tensor:
    """``[B]`` summed completion log-ratio (TRL's KTO convention)."""
    return ((logprobs - ref_logprobs) * mask.to(logprobs.dtype)).sum(-1)


__all__ = [
    "masked_mean",
    "whiten",
    "kl_penalty",
    "kl_shaped_rewards",
    "gae_advantages",
    "PPOLoss",
    "ppo_loss",
    "nucleus_mask",
    "masked_token_logprobs",
    "KTOLoss",
    "kto_kl_reference",
    "kto_loss",
    "sequence_logratio",
]
