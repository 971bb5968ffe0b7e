"""Online adaptation of a speaker to a listener with PPO, NLPO or KTO (thesis §7.3.1, §7.4.1).

Citation: Alaniz, Mercea, Durmazkeser, Akata, "Adapting Communicating MLLMs on the Fly in
Referring Expression Tasks" (thesis ch. 7): play 3 episodes, update, repeat for 1800
interactions; evaluate on 300 held-out episodes. What differs from published code (none
exists): hyperparameters the thesis leaves open are explicit config fields (GAE gamma /
lambda, PPO epochs, value-head placement = linear head on the policy's last hidden state,
k1 KL estimator, reward scale, NLPO mu and ``min_tokens_to_keep``, gradient clipping);
learning curves are logged at a fixed interval, and both the best and the last adapter
are checkpointed. PPO's "old" log-probs are the sampling-time ones stored in the rollout,
so PPO/NLPO refuse sampling settings under which they are not pi_theta's (temperature
!= 1, top-p < 1, LoRA dropout > 0: :func:`check_on_policy`); NLPO's per-token KL penalty
uses the unmasked policy log-probs (RL4LMs), not the log-probs renormalised over the
top-p mask (which would add up to -log(top_p) per token even at pi_theta = pi_0). With a ``checkpoint_dir`` the whole run state (adapter + value head,
optimiser, NLPO snapshot, RNG states incl. the listener's, update counter, curves) is
committed at every evaluation through the library's one checkpoint format
(:class:`~lowshot.utils.checkpoint.CheckpointChain`: SHA-256-verified commit records, the
previous good commit kept), and re-running resumes from it bit-for-bit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from lowshot._registry import ALGORITHMS
from lowshot.comm.policy import Rollout, SamplingConfig, SpeakerPolicy
from lowshot.losses.policy import (
    gae_advantages,
    kl_shaped_rewards,
    kto_kl_reference,
    kto_loss,
    masked_mean,
    ppo_loss,
    sequence_logratio,
    whiten,
)
from lowshot.utils.checkpoint import CheckpointChain


@dataclass(frozen=True)
class AlgoConfig:
    """Hyperparameters of the update rule (defaults: thesis values where given).

    Attributes:
        name: a registered algorithm (``ppo``, ``nlpo``, ``kto``: :class:`UpdateRule`).
        lr: Adam learning rate (paper grid 1e-7..1e-9 on 7B with LoRA alpha up to 2048).
        kl_coef: PPO/NLPO per-token KL coefficient beta (thesis 0.2).
        kl_estimator: ``kl`` (k1), ``abs``, ``mse``, ``k3``.
        clip_range: PPO ratio clip epsilon (thesis prints 1).
        clip_range_value: value clip.
        vf_coef: value-loss weight.
        gamma: GAE discount. lam: GAE lambda.
        ppo_epochs: optimisation passes over each batch of 3 episodes.
        whiten_advantages: normalise advantages per batch.
        reward_scale: multiply task rewards (keeps the score/KL balance tunable).
        top_p_mask: NLPO nucleus of the mask policy (thesis 0.9).
        mask_update_every: NLPO mu, updates between mask-policy refreshes.
        min_tokens_to_keep: NLPO lower bound on the kept set (scale with the vocabulary).
        kto_beta: KTO beta (thesis 0.1). lambda_d / lambda_u: KTO lambda+ / lambda-.
        desirable_threshold: reward above which an episode is desirable (0 for +-1 REI
            rewards, 0.5 for RES IoU, checked as ``>=`` for RES via ``binary_ge``).
        binary_ge: use ``reward >= threshold`` (RES) instead of ``>`` (REI).
        max_grad_norm: gradient clipping (needed for stable small models; 0 disables).
    """

    name: str = "kto"
    lr: float = 1e-3
    kl_coef: float = 0.2
    kl_estimator: Literal["kl", "abs", "mse", "k3"] = "kl"
    clip_range: float = 0.2
    clip_range_value: float = 0.2
    vf_coef: float = 0.1
    gamma: float = 1.0
    lam: float = 0.95
    ppo_epochs: int = 4
    whiten_advantages: bool = True
    reward_scale: float = 1.0
    top_p_mask: float = 0.9
    mask_update_every: int = 5
    min_tokens_to_keep: int = 1
    kto_beta: float = 0.1
    lambda_d: float = 1.0
    lambda_u: float = 1.0
    desirable_threshold: float = 0.0
    binary_ge: bool = False
    max_grad_norm: float = 1.0


@dataclass(frozen=True)
class LoopConfig:
    """The online loop (thesis: 3 episodes per update, 1800 interactions, 300 test episodes)."""

    interactions: int = 1800
    episodes_per_update: int = 3
    eval_every: int = 300
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    eval_max_new_tokens: int = 32


class Game:
    """What the loop needs from a task: training episodes, rewards and held-out evaluation.

    Args:
        sample: ``(n, rng) -> episodes`` drawn from the training pool.
        play: ``(episodes, messages) -> rewards [B]`` via the listener.
        evaluate: ``describe -> metrics`` on fixed held-out episodes; must contain ``metric``.
        metric: the key that selects the best checkpoint (``success_rate`` or ``miou``).
        get_state / set_state: JSON-able state of the training side that is not in the
            loop's RNGs (e.g. the listener's tie-break RNG), saved for resuming.
    """

    def __init__(self, sample: Callable[[int, np.random.Generator], Sequence[Any]],
                 play: Callable[[Sequence[Any], Sequence[str]], np.ndarray],
                 evaluate: Callable[[Callable[[Sequence[Any]], list[str]]], dict[str, float]],
                 metric: str = "success_rate", get_state: Callable[[], Any] | None = None,
                 set_state: Callable[[Any], None] | None = None) -> None:
        self.sample, self.play, self.evaluate, self.metric = sample, play, evaluate, metric
        self.get_state, self.set_state = get_state, set_state


# ---------------------------------------------------------------------------- updates
def _step(policy: SpeakerPolicy, opt: torch.optim.Optimizer, loss: torch.Tensor, max_norm: float) -> float:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    params = [p for g in opt.param_groups for p in g["params"]]
    norm = torch.nn.utils.clip_grad_norm_(params, max_norm if max_norm > 0 else float("inf"))
    opt.step()
    return float(norm)


def check_on_policy(algo: str, sampling: SamplingConfig, lora_dropout: float, where: str = "adapt") -> None:
    """PPO/NLPO's first-epoch ratio is 1 only if sampling draws from pi_theta itself.

    The surrogate's pi_theta is the untempered policy over the whole vocabulary (under the
    NLPO mask), evaluated without dropout noise; sampling at another temperature or top-p,
    or a LoRA dropout that makes every forward pass a different policy, would make the
    stored "old" log-probs belong to another distribution and the ratio clip act on noise.

    Raises:
        ConfigError: ``algo`` is not a registered algorithm (did-you-mean), or an on-policy
            algorithm with ``temperature != 1``, ``top_p < 1`` or LoRA dropout > 0.
    """
    from lowshot.errors import ConfigError

    try:
        rule = ALGORITHMS.get(algo)
    except ConfigError as err:
        raise ConfigError(f"{where}: algorithms: {err}") from None
    if not rule.on_policy:
        return
    bad = []
    if sampling.temperature != 1.0:
        bad.append(f"loop.sampling.temperature={sampling.temperature} (needs 1.0)")
    if sampling.top_p < 1.0:
        bad.append(f"loop.sampling.top_p={sampling.top_p} (needs 1.0; NLPO's top_p_mask is the nucleus)")
    if not sampling.do_sample:
        bad.append("loop.sampling.do_sample=false (on-policy sampling needed)")
    if lora_dropout > 0:
        bad.append(f"lora.dropout={lora_dropout} (needs 0)")
    if bad:
        raise ConfigError(f"{where}: {algo} samples on-policy and its ratio is exact only with "
                          + ", ".join(bad))


def ppo_update(policy: SpeakerPolicy, opt: torch.optim.Optimizer, rollout: Rollout,
               rewards: np.ndarray, cfg: AlgoConfig) -> dict[str, float]:
    """One PPO (or NLPO, when ``rollout.action_masks`` is set) update on a batch of episodes.

    The "old" log-probs are the sampling-time ones (``rollout.logprobs``); the per-token KL
    penalty compares the policy over the whole vocabulary (``rollout.full_logprobs``, no
    NLPO mask, as in RL4LMs) with pi_0.
    """
    mask = rollout.mask
    if rollout.logprobs is None or rollout.full_logprobs is None:
        raise ValueError("ppo_update needs a rollout from SpeakerPolicy.sample (sampling-time log-probs)")
    scores = torch.as_tensor(rewards, dtype=torch.float32, device=mask.device) * cfg.reward_scale
    old_lp = rollout.logprobs
    with torch.no_grad():
        _, old_v = policy.logprobs(rollout, values=True)
        with policy.reference():
            ref_lp, _ = policy.logprobs(rollout, use_action_masks=False)
        tok_rewards = kl_shaped_rewards(scores, rollout.full_logprobs, ref_lp, mask, cfg.kl_coef,
                                        cfg.kl_estimator)
        adv, returns = gae_advantages(tok_rewards, old_v, mask, cfg.gamma, cfg.lam)
        if cfg.whiten_advantages and mask.sum() > 1:
            adv = whiten(adv, mask)
    stats: dict[str, float] = {}
    for _ in range(cfg.ppo_epochs):
        lp, v = policy.logprobs(rollout, values=True)
        out = ppo_loss(lp, old_lp, adv, mask, v, old_v, returns, cfg.clip_range,
                       cfg.clip_range_value, cfg.vf_coef)
        stats["grad_norm"] = _step(policy, opt, out.loss, cfg.max_grad_norm)
        stats.update(loss=float(out.loss.detach()), policy_loss=float(out.policy_loss.detach()),
                     value_loss=float(out.value_loss.detach()), clip_fraction=float(out.clip_fraction))
    stats["kl"] = float(masked_mean(rollout.full_logprobs - ref_lp, mask) * mask.sum() / mask.shape[0])
    return stats


def kto_update(policy: SpeakerPolicy, opt: torch.optim.Optimizer, rollout: Rollout,
               rewards: np.ndarray, cfg: AlgoConfig) -> dict[str, float]:
    """One KTO update; z from completions paired with the previous episode's context."""
    r = np.asarray(rewards)
    desirable = torch.as_tensor(r >= cfg.desirable_threshold if cfg.binary_ge else r > cfg.desirable_threshold,
                                device=rollout.mask.device)
    mism = rollout.shifted(1)
    with torch.no_grad():
        with policy.reference():
            ref_lp, _ = policy.logprobs(rollout)
            ref_mm, _ = policy.logprobs(mism)
        lp_mm, _ = policy.logprobs(mism)
        z = kto_kl_reference(sequence_logratio(lp_mm, ref_mm, mism.mask))
    lp, _ = policy.logprobs(rollout)
    out = kto_loss(sequence_logratio(lp, ref_lp, rollout.mask), desirable, z, cfg.kto_beta,
                   cfg.lambda_d, cfg.lambda_u)
    norm = _step(policy, opt, out.loss, cfg.max_grad_norm)
    return {"loss": float(out.loss.detach()), "kl_ref": float(z), "grad_norm": norm,
            "desirable_frac": float(desirable.float().mean())}


# ---------------------------------------------------------------------------- algorithms
class UpdateRule:
    """An online update rule, registered in :data:`lowshot._registry.ALGORITHMS` by name.

    Attributes:
        on_policy: its ratio needs samples from pi_theta itself (:func:`check_on_policy`).
        masked: it samples under a top-p mask of a periodically refreshed snapshot (NLPO).
    """

    on_policy: bool = False
    masked: bool = False

    def update(self, policy: SpeakerPolicy, opt: torch.optim.Optimizer, rollout: Rollout,
               rewards: np.ndarray, cfg: AlgoConfig) -> dict[str, float]:
        """One update on a batch of episodes; returns training statistics."""
        raise NotImplementedError


@ALGORITHMS.register("ppo")
class PPO(UpdateRule):
    """PPO with a per-token KL penalty to pi_0 (:func:`ppo_update`)."""

    on_policy = True

    def update(self, policy: SpeakerPolicy, opt: torch.optim.Optimizer, rollout: Rollout,
               rewards: np.ndarray, cfg: AlgoConfig) -> dict[str, float]:
        """PPO (clipped ratio, per-token KL to pi_0, value head) on ``rollout``; returns
        training statistics (:func:`ppo_update`)."""
        return ppo_update(policy, opt, rollout, rewards, cfg)


@ALGORITHMS.register("nlpo")
class NLPO(PPO):
    """PPO sampling under the top-p mask of a snapshot refreshed every ``mask_update_every`` updates."""

    masked = True


@ALGORITHMS.register("kto")
class KTO(UpdateRule):
    """KTO on desirable / undesirable episodes (:func:`kto_update`)."""

    def update(self, policy: SpeakerPolicy, opt: torch.optim.Optimizer, rollout: Rollout,
               rewards: np.ndarray, cfg: AlgoConfig) -> dict[str, float]:
        """KTO on ``rollout``'s episodes, desirable / undesirable by ``rewards``; returns
        training statistics (:func:`kto_update`)."""
        return kto_update(policy, opt, rollout, rewards, cfg)


# ---------------------------------------------------------------------------- loop
@dataclass
class AdaptResult:
    """Learning curve and final / best metrics of one adaptation run."""

    curve: list[dict[str, float]]
    initial: dict[str, float]
    final: dict[str, float]
    best: dict[str, float]
    best_interactions: int
    seconds: float
    train_log: list[dict[str, float]] = field(default_factory=list)


STATE_CHAIN = "state"  # CheckpointChain name: state.json, state.prev.json, state_epoch<update>.safetensors


def _join_keys(tree: Any, prefix: str = "") -> dict[str, torch.Tensor]:
    """Flatten a nested dict back to ``a/b`` keys (``unpack_state`` splits adapter keys on ``/``)."""
    if isinstance(tree, torch.Tensor):
        return {prefix: tree}
    out: dict[str, torch.Tensor] = {}
    for k, v in tree.items():
        out.update(_join_keys(v, f"{prefix}/{k}" if prefix else str(k)))
    return out


def save_run_state(chain: CheckpointChain, state: dict[str, Any]) -> None:
    """Commit the run state: tensors (adapter, NLPO snapshot, optimiser, torch RNG) + JSON loop state."""
    from lowshot.utils.io import pack_state

    tensor_keys = ("adapter", "snapshot", "optimizer", "torch_rng")
    tensors = pack_state({k: state[k] for k in tensor_keys if k in state})
    chain.commit(int(state["update"]), tensors, {k: v for k, v in state.items() if k not in tensor_keys})


def load_run_state(chain: CheckpointChain) -> dict[str, Any] | None:
    """The newest verified state committed by :func:`save_run_state` (None when there is none).

    Raises:
        CheckpointError: states were committed but none verifies (truncated or overwritten).
    """
    from lowshot.utils.io import unpack_state

    restored = chain.restore()
    if restored is None:
        return None
    _, state, tensors = restored
    state.update(unpack_state(tensors))
    state["adapter"] = _join_keys(state["adapter"])
    if "snapshot" in state:
        state["snapshot"] = _join_keys(state["snapshot"])
    opt = state.setdefault("optimizer", {})
    opt.setdefault("state", {})
    return state


def adapt(policy: SpeakerPolicy, game: Game, algo: AlgoConfig, loop: LoopConfig, seed: int = 0,
          checkpoint_dir: Path | None = None, on_record: Callable[[dict[str, Any]], None] | None = None,
          ) -> AdaptResult:
    """Adapt the active adapter of ``policy`` to ``game``'s listener online.

    Args:
        policy: speaker with the listener's adapter active (see :meth:`SpeakerPolicy.add_adapter`).
        game: the task (training sampler, listener rewards, held-out evaluation).
        algo: update rule.
        loop: schedule.
        seed: seeds episode sampling and token sampling.
        checkpoint_dir: if given, the exported ``best.safetensors`` and ``last.safetensors``
            adapters and the resumable run state, a :class:`~lowshot.utils.checkpoint.CheckpointChain`
            named ``state`` (committed at every evaluation; when one verifies the run continues
            from it, falling back to the previous commit if the latest is truncated or
            overwritten; a finished run returns its stored result).
        on_record: called with every evaluation record (history logging); a resumed run may
            repeat the records after its last saved state.
    """
    from lowshot.errors import ConfigError
    from lowshot.utils.io import save_state

    check_on_policy(algo.name, loop.sampling, policy.lora.dropout if policy.lora else 0.0)
    rule: UpdateRule = ALGORITHMS.get(algo.name)()
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    opt = torch.optim.Adam(policy.trainable_parameters(), lr=algo.lr)
    mask_adapter: str | None = None
    n_updates = loop.interactions // loop.episodes_per_update
    chain = CheckpointChain(checkpoint_dir, STATE_CHAIN) if checkpoint_dir is not None else None

    def describe(eps: Sequence[Any]) -> list[str]:
        return policy.describe(eps, loop.eval_max_new_tokens, loop.sampling.use_cache)

    t0 = time.perf_counter()
    curve: list[dict[str, float]] = []
    log: list[dict[str, float]] = []
    best: dict[str, float] = {}
    best_at = 0
    start = 0
    prior_seconds = 0.0

    def checkpoint(updates: int) -> None:
        if chain is None:
            return
        state: dict[str, Any] = {
            "update": updates, "n_updates": n_updates, "adapter": policy.adapter_state(),
            "optimizer": opt.state_dict(), "curve": curve, "log": log, "best": best, "best_at": best_at,
            "seconds": prior_seconds + time.perf_counter() - t0,
            "numpy_rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state()}
        if mask_adapter is not None:
            state["snapshot"] = policy.adapter_state(mask_adapter)
        if game.get_state is not None:
            state["game"] = game.get_state()
        save_run_state(chain, state)

    saved = load_run_state(chain) if chain is not None else None
    if saved is not None:
        if saved["n_updates"] != n_updates:
            raise ConfigError(f"{chain.latest_path} is a run of {saved['n_updates']} updates, not {n_updates}; "
                              "pass a new --run-dir for another schedule")
        policy.load_adapter_state(saved["adapter"])
        opt.load_state_dict(saved["optimizer"])
        if "snapshot" in saved:
            mask_adapter = policy.snapshot()
            policy.load_adapter_state(saved["snapshot"], mask_adapter)
        if game.set_state is not None and "game" in saved:
            game.set_state(saved["game"])
        curve, log, best = list(saved["curve"]), list(saved["log"]), dict(saved["best"])
        best_at, start, prior_seconds = int(saved["best_at"]), int(saved["update"]), float(saved["seconds"])
        rng.bit_generator.state = saved["numpy_rng"]
        torch.set_rng_state(saved["torch_rng"])

    def record(done: int) -> None:
        nonlocal best, best_at
        m = {"interactions": done, **game.evaluate(describe)}
        curve.append(m)
        if on_record:
            on_record(m)
        if not best or m[game.metric] > best[game.metric]:
            best, best_at = m, done
            if checkpoint_dir is not None:
                save_state(checkpoint_dir / "best.safetensors", policy.adapter_state(),
                           {"interactions": str(done)})

    if saved is None:
        record(0)
        checkpoint(0)
    for u in range(start, n_updates):
        if rule.masked and u % algo.mask_update_every == 0:
            mask_adapter = policy.snapshot()
        episodes = game.sample(loop.episodes_per_update, rng)
        roll = policy.sample(episodes, loop.sampling, mask_adapter=mask_adapter if rule.masked else None,
                             mask_top_p=algo.top_p_mask, min_tokens_to_keep=algo.min_tokens_to_keep)
        rewards = game.play(episodes, roll.texts)
        policy.model.train()
        stats = rule.update(policy, opt, roll, rewards, algo)
        log.append({"update": u, "reward": float(np.mean(rewards)), **stats})
        done = (u + 1) * loop.episodes_per_update
        if u + 1 == n_updates:
            record(done)
        elif loop.eval_every and done % loop.eval_every < loop.episodes_per_update:
            record(done)
            checkpoint(u + 1)
    if start < n_updates or saved is None:
        if checkpoint_dir is not None:
            save_state(checkpoint_dir / "last.safetensors", policy.adapter_state(),
                       {"interactions": str(n_updates * loop.episodes_per_update)})
        checkpoint(n_updates)
    seconds = prior_seconds + time.perf_counter() - t0
    return AdaptResult(curve, curve[0], curve[-1], best, best_at, seconds, log)
