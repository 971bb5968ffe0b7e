"""What every video-adverb method shares: batches, vocabulary text, the method contract.

Every method turns a batch into ``{"loss", "loss_terms"}`` for training and into adverb
scores for evaluation. Scores are *higher is better*, for the adverbs paired with a given
query action: :meth:`AdverbMethod.action_scores` ``(batch, actions [B]) -> [B, |A|]``. The
runner calls it with the GT actions (standard metrics) and, for the no-action-GT variant,
with every action in turn and takes the maximum (the published definition, reference §5).
Pair embeddings are computed once per evaluation (:meth:`AdverbMethod.eval_cache`), so
evaluation is one pass over the pair embeddings, batched over videos
(:func:`predict_adverb_scores`).

Methods are registered in ``METHODS`` by the modules of this package (one per method) and
built by name with :func:`build_method`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F

from lowshot.config import from_dict
from lowshot.errors import ConfigError, DataError
from lowshot.methods.base import AdamSettings, Family, Method, method_of_family
from lowshot.protocols.adverbs import AdverbData, LabelledRows


# ----------------------------------------------------------------------------- batches
@dataclass
class AdverbBatch:
    """A mini-batch of annotation rows.

    Attributes:
        adverbs: ``[B]`` GT adverb index.
        actions: ``[B]`` GT action index.
        video: ``[B, T, d_x]`` zero-padded features (None for feature-free methods).
        joint: ``[B, T, d_j]`` joint-space embeddings (None when absent).
        lengths: ``[B]`` true lengths.
    """

    adverbs: torch.Tensor
    actions: torch.Tensor
    video: torch.Tensor | None = None
    joint: torch.Tensor | None = None
    lengths: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.adverbs.shape[0])


def make_batch(
    rows: LabelledRows, idx: np.ndarray, device: torch.device | str = "cpu"
) -> AdverbBatch:
    """Gather rows ``idx``; features are cut to the longest clip of the batch."""
    adv = torch.as_tensor(rows.adverbs[idx], device=device)
    act = torch.as_tensor(rows.actions[idx], device=device)
    if rows.store is None or rows.clips is None:
        return AdverbBatch(adv, act)
    clips = torch.as_tensor(rows.clips[idx])
    lengths = rows.store.lengths[clips]
    t = int(lengths.max())
    video = rows.store.video[clips, :t].to(device)
    joint = None if rows.store.joint is None else rows.store.joint[clips, :t].to(device)
    return AdverbBatch(adv, act, video, joint, lengths.to(device))


# ----------------------------------------------------------------------------- text
class VocabText:
    """Frozen text embeddings of the vocabulary from a text encoder, cached by text.

    Args:
        encode: ``list[str] -> [N, d_theta]`` (any :class:`~lowshot.extract.text.TextEncoder`).
        adverbs / actions: vocabulary order.
    """

    def __init__(
        self,
        encode: Callable[[list[str]], torch.Tensor],
        adverbs: tuple[str, ...],
        actions: tuple[str, ...],
    ) -> None:
        self._encode = encode
        self.adverbs, self.actions = adverbs, actions
        self._cache: dict[str, torch.Tensor] = {}

    def embed(self, texts: list[str]) -> torch.Tensor:
        """``[N, d_theta]`` float32 (computed once per distinct text)."""
        todo = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if todo:
            emb = torch.as_tensor(self._encode(todo)).float()
            if not torch.isfinite(emb).all():
                raise DataError("the text encoder returned NaN/inf embeddings")
            self._cache.update(zip(todo, emb))
        return torch.stack([self._cache[t] for t in texts])

    def adverb_emb(self) -> torch.Tensor:
        """``[|A|, d_theta]`` embeddings of the adverbs, vocabulary order."""
        return self.embed(list(self.adverbs))

    def action_emb(self) -> torch.Tensor:
        """``[V, d_theta]`` embeddings of the actions, vocabulary order."""
        return self.embed(list(self.actions))

    def pair_emb(
        self, order: Literal["adverb action", "action adverb"] = "adverb action"
    ) -> torch.Tensor:
        """``[A * V, d_theta]`` phrase embeddings, adverb-major pair order."""
        if order == "adverb action":
            texts = [f"{a} {v}" for a in self.adverbs for v in self.actions]
        else:
            texts = [f"{v} {a}" for a in self.adverbs for v in self.actions]
        return self.embed(texts)


# ----------------------------------------------------------------------------- base
class AdverbMethod(Method):
    """Base class: training loss, per-action adverb scores, optional schedule hook.

    Subclasses are registered in ``METHODS`` (``@METHODS.register("adverbs.x")``), set
    :attr:`Config` and are built as ``cls(config, data, text, feature_dim)``.
    """

    family: ClassVar[Family] = "adverbs"
    #: False for methods without parameters (zero-shot, Priors): no training loop
    trainable: ClassVar[bool] = True
    #: False for methods that never look at video features
    needs_features: ClassVar[bool] = True
    #: False for methods without vocabulary text embeddings (``text`` is then None)
    needs_text: ClassVar[bool] = True
    #: True for methods that also train on ``unlabelled.csv`` (``data.unlabelled``)
    needs_unlabelled: ClassVar[bool] = False

    def training_loss(self, batch: AdverbBatch, gen: torch.Generator) -> dict[str, Any]:
        """``{"loss": scalar tensor, "loss_terms": {name: float}}``; ``gen`` draws negatives."""
        raise NotImplementedError

    def eval_cache(self) -> Any:
        """Computed once per evaluation (e.g. all pair embeddings), passed to ``action_scores``."""
        return None

    def action_scores(self, batch: AdverbBatch, actions: torch.Tensor, cache: Any) -> torch.Tensor:
        """Scores ``[B, |A|]`` of every adverb paired with ``actions [B]`` (the query action)."""
        raise NotImplementedError

    def on_epoch_start(self, epoch: int, optimizer: torch.optim.Optimizer, lr: float) -> None:
        """Hook for schedules (Action Modifier's adverb start); ``lr`` is the configured LR."""

    def build_optimizer(self, train: AdamSettings) -> tuple[torch.optim.Optimizer, None]:
        """Plain (unfused) Adam over :meth:`param_groups` with ``lr`` and ``weight_decay``, no scheduler.

        Unfused keeps the adverb numbers bit-identical to those recorded before the shared contract.
        """
        return torch.optim.Adam(self.param_groups(), lr=train.lr, weight_decay=train.weight_decay), None


def other_index(idx: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    """Uniformly drawn index != ``idx`` (per element), from ``[0, n)``."""
    if n < 2:
        raise ConfigError("negative sampling needs at least two classes")
    shift = torch.randint(1, n, idx.shape, generator=gen).to(idx.device)
    return (idx + shift) % n


def antonym_or_random(
    adverbs: torch.Tensor, antonyms: torch.Tensor | None, n: int, gen: torch.Generator
) -> torch.Tensor:
    """``[B]`` negative adverb of each ``adverbs [B]``: its antonym when ``antonyms [|A|]`` is
    given, else a uniformly drawn other adverb of ``n`` (see :func:`other_index`).
    """
    return antonyms[adverbs] if antonyms is not None else other_index(adverbs, n, gen)


def triplet(
    anchor: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, margin: float
) -> torch.Tensor:
    """Scalar ``mean(max(0, ||a-p|| - ||a-n|| + margin))`` over ``[B, d]`` anchor/pos/neg (torch's TripletMarginLoss, p=2)."""
    return F.triplet_margin_loss(anchor, pos, neg, margin=margin)


# ----------------------------------------------------------------------------- registry
def method_class(name: str) -> type[AdverbMethod]:
    """The video-adverb method class registered as ``name`` (did-you-mean on unknown names,
    a clear error for a method of another family)."""
    return method_of_family(name, AdverbMethod, "adverbs")


def build_method(
    name: str, model_cfg: dict[str, Any], data: AdverbData, text: VocabText | None, feature_dim: int
) -> AdverbMethod:
    """Look ``name`` up in METHODS, validate ``model_cfg`` strictly and build the method."""
    cls = method_class(name)
    cfg = from_dict(cls.Config, model_cfg, where="model")
    if cls.needs_text and text is None:
        raise ConfigError(f"method '{name}' needs text embeddings")
    return cls(cfg, data, text, feature_dim)


# ----------------------------------------------------------------------------- prediction
@torch.no_grad()
def predict_adverb_scores(
    method: AdverbMethod,
    rows: LabelledRows,
    n_actions: int,
    batch_size: int = 2048,
    no_action_gt: bool = False,
    device: torch.device | str = "cpu",
) -> tuple[np.ndarray, np.ndarray | None]:
    """Adverb scores of every row, with its GT action and (optionally) without.

    Pair embeddings are computed once (:meth:`AdverbMethod.eval_cache`); videos are
    processed in batches. The no-action-GT scores run the method once per action query
    and keep the maximum over actions (reference §5).

    Args:
        method: a built method.
        rows: labelled rows (with features unless the method needs none).
        n_actions: vocabulary size (the no-action-GT variant queries every action).
        batch_size: videos per forward pass.
        no_action_gt: also compute the no-action-GT scores.
        device: where batches go.

    Returns:
        ``([N, |A|], [N, |A|] or None)`` float64 arrays.
    """
    was_training = method.training
    method.eval()
    cache = method.eval_cache()
    gt, no_act = [], []
    for start in range(0, len(rows), batch_size):
        idx = np.arange(start, min(start + batch_size, len(rows)))
        batch = make_batch(rows, idx, device)
        gt.append(method.action_scores(batch, batch.actions, cache).double().cpu())
        if no_action_gt:
            best = None
            for v in range(n_actions):
                s = (
                    method.action_scores(batch, torch.full_like(batch.actions, v), cache)
                    .double()
                    .cpu()
                )
                best = s if best is None else torch.maximum(best, s)
            no_act.append(best)
    method.train(was_training)
    return torch.cat(gt).numpy(), (torch.cat(no_act).numpy() if no_action_gt else None)
