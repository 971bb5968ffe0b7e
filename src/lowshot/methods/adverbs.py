"""Video-adverb methods: model + loss terms + scoring, behind one small interface.

Every method turns a batch into ``{"loss", "loss_terms"}`` for training and into adverb
scores for evaluation. Scores are *higher is better*, for the adverbs paired with a given
query action: :meth:`AdverbMethod.action_scores` ``(batch, actions [B]) -> [B, |A|]``. The
runner calls it with the GT actions (standard metrics) and, for the no-action-GT variant,
with every action in turn and takes the maximum (the published definition, reference §5).
Pair embeddings are computed once per evaluation (:meth:`AdverbMethod.eval_cache`), so
evaluation is one pass over the pair embeddings, batched over videos.

Registered methods (``METHODS``), each with its own config schema (``model:`` mapping):

==========================  ===================================================================
``adverbs.regada``          ReGaDa (thesis Eqs. 6.1-6.7), Tables 6.3-6.5 ablations, E.3 no antonyms
``adverbs.tirg``            TIRG composition (action modified by adverb), classification loss
``adverbs.ac_cls``          AC_CLS (cross-entropy over adverbs)
``adverbs.ac_reg``          AC_REG (regression to +delta / -delta targets)
``adverbs.action_modifier`` Action Modifier (adverbs as linear maps, triplet losses)
``adverbs.s3d_pretrained``  zero-shot similarity of frozen joint-space video and text embeddings
``adverbs.clip``            same protocol with any pluggable image-text encoder's features
``adverbs.priors``          training-set pair counts (no features)
==========================  ===================================================================

Citations (code read, never copied) and differences from the published code:

* ReGaDa: Hummel et al., BMVC 2023 (ExplainableML/ReGaDa @ d9d0bfb). Same losses,
  sampling and scores; device-agnostic; ablations as config switches; the first
  BatchNorm + Linear of the text encoder is computed per table row (exact, faster).
* TIRG: Vo et al., CVPR 2019 (google/tirg @ c58daa0); the adverb adaptation of thesis
  §6.5 is unreleased: ReGaDa's video encoder, action modified by adverb, softmax
  cross-entropy over all pairs with TIRG's learnable scale (initial 4).
* AC_CLS / AC_REG: Moltisanti et al., CVPR 2023 (dmoltisanti/air-cvpr23 @ 4b09522).
  Padding masked from true lengths in training and evaluation; the published training
  treats a step whose feature channel 0 is zero as padding
  (``legacy_zero_value_padding_mask``) and the published evaluation is unmasked, so a
  clip's scores depend on the longest clip of its 512-row test batch
  (``legacy_unmasked_eval`` with ``train.eval_batch_size: 512``, the default). Indices
  from names, never from CSV label columns. AC_REG without antonyms uses the published
  delta ||S("v a") - S("v")|| * |cos(S(v), S(a))| (``--no_antonyms``).
* Action Modifier: Doughty et al., CVPR 2020 (hazeld/action-modifiers @ ca4937a, no
  licence). S3D features/text instead of I3D/GloVe; the S3D-feature version used in the
  published tables is unreleased; the action triplet uses the modified pair embedding;
  padding masked from true lengths (the published code has no mask).
* S3D pre-trained: Miech et al., CVPR 2020 (MIL-NCE S3D-HowTo100M), as a baseline in the
  AIR paper; configuration unreleased (pooling/similarity/phrase order are options).
* CLIP: Radford et al., ICML 2021, as in thesis App. E.2/E.4; any image-text encoder
  whose per-second image embeddings are stored as the joint-space features and whose
  text embeddings come from a registered encoder or a text cache.
* Priors: definition recovered by exact reproduction of the published numbers
  (reference §6): training counts of each (adverb, action) pair.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lowshot._registry import METHODS
from lowshot.benchmarks.adverbs import AdverbData, LabelledRows, priors_pair_scores
from lowshot.config import from_dict
from lowshot.errors import ConfigError, DataError
from lowshot.models.adverbs.attention import valid_steps
from lowshot.models.adverbs.baselines import ACModel, ActionModifierModel
from lowshot.models.adverbs.regada import ReGaDa


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
        return self.embed(list(self.adverbs))

    def action_emb(self) -> torch.Tensor:
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
class AdverbMethod(nn.Module):
    """Base class: training loss, per-action adverb scores, optional schedule hook."""

    #: False for methods without parameters (zero-shot, Priors): no training loop
    trainable: ClassVar[bool] = True
    #: False for methods that never look at video features
    needs_features: ClassVar[bool] = True

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
        """Hook for schedules (Action Modifier's adverb start)."""

    def param_groups(self) -> list[dict[str, Any]]:
        return [{"params": [p for p in self.parameters() if p.requires_grad], "name": "all"}]


def _other_index(idx: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    """Uniformly drawn index != ``idx`` (per element), from ``[0, n)``."""
    if n < 2:
        raise ConfigError("negative sampling needs at least two classes")
    shift = torch.randint(1, n, idx.shape, generator=gen).to(idx.device)
    return (idx + shift) % n


def _antonym_or_random(
    adverbs: torch.Tensor, antonyms: torch.Tensor | None, n: int, gen: torch.Generator
) -> torch.Tensor:
    return antonyms[adverbs] if antonyms is not None else _other_index(adverbs, n, gen)


def _triplet(
    anchor: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, margin: float
) -> torch.Tensor:
    """``mean(max(0, ||a-p|| - ||a-n|| + margin))`` (torch's TripletMarginLoss, p=2)."""
    return F.triplet_margin_loss(anchor, pos, neg, margin=margin)


# ----------------------------------------------------------------------------- ReGaDa
@dataclass(frozen=True)
class ReGaDaConfig:
    """ReGaDa hyperparameters (defaults = ``config/model/regada.yaml`` + ``default.yaml``).

    ``main``/``aux`` reproduce Table 6.3, ``residual``/``sigmoid``/``shared_weights`` Table 6.5,
    ``lambda_*`` = 0 Table 6.4. ``use_antonyms`` False is App. E.3 (random adverb negative).
    """

    emb_dim: int = 400
    heads: int = 4
    video_layers: int = 2
    video_dropout: float = 0.1
    text_dropout: float = 0.7
    layers_gated: int = 4
    layers_residual: int = 3
    main: Literal["adverb", "action", "composition"] = "adverb"
    aux: Literal["action", "adverb"] = "action"
    residual: bool = True
    sigmoid: bool = True
    shared_weights: bool = False
    lambda_act: float = 1.0
    lambda_adv: float = 1.0
    lambda_reg: float = 1.0
    margin: float = 1.0


class ReGaDaMethod(AdverbMethod):
    """ReGaDa: L = l_act Trip(o, t(a,v), t(a,v-)) + l_adv Trip(o, t(a,v), t(ant(a),v)) + l_reg MSE(o, t(a,v)).

    Eqs. 6.4-6.7 on unnormalised embeddings; scores are cosine similarities. The action
    negative is uniform over actions != GT (it may be a test-only action, as published).
    """

    def __init__(
        self, cfg: ReGaDaConfig, data: AdverbData, text: VocabText, feature_dim: int
    ) -> None:
        super().__init__()
        self.cfg = cfg
        needs_pairs = cfg.main == "composition" or cfg.aux == "composition"
        self.model = ReGaDa(
            text.adverb_emb(), text.action_emb(), feature_dim, cfg.emb_dim, cfg.heads, cfg.video_layers,
            cfg.video_dropout, cfg.text_dropout, cfg.layers_gated, cfg.layers_residual, cfg.main, cfg.aux,
            text.pair_emb() if needs_pairs else None, cfg.residual, cfg.sigmoid, cfg.shared_weights,
        )  # fmt: skip
        self.n_adverbs, self.n_actions = data.vocab.n_adverbs, data.vocab.n_actions
        ant = data.antonyms
        self.register_buffer("antonyms", None if ant is None else torch.as_tensor(ant))

    def pair(self, adverbs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return adverbs * self.n_actions + actions

    def training_loss(self, batch: AdverbBatch, gen: torch.Generator) -> dict[str, Any]:
        c = self.cfg
        o = self.model.video_embeddings(batch.video, batch.lengths, batch.actions)  # [B, d]
        text = self.model.text_embeddings()  # [P, d]
        pos = text[self.pair(batch.adverbs, batch.actions)]
        neg_act = text[self.pair(batch.adverbs, _other_index(batch.actions, self.n_actions, gen))]
        neg_adv_idx = _antonym_or_random(batch.adverbs, self.antonyms, self.n_adverbs, gen)
        neg_adv = text[self.pair(neg_adv_idx, batch.actions)]
        terms = {
            "trip_act": _triplet(o, pos, neg_act, c.margin),  # Eq. 6.4
            "trip_adv": _triplet(o, pos, neg_adv, c.margin),  # Eq. 6.5
            "reg": F.mse_loss(o, pos),  # Eq. 6.6
        }
        loss = (
            c.lambda_act * terms["trip_act"]
            + c.lambda_adv * terms["trip_adv"]
            + c.lambda_reg * terms["reg"]
        )
        return {
            "loss": loss,
            "loss_terms": {k: float(v.detach()) for k, v in terms.items()},
        }  # Eq. 6.7

    def eval_cache(self) -> torch.Tensor:
        text = F.normalize(self.model.text_embeddings(), dim=-1)
        return text.view(self.n_adverbs, self.n_actions, -1)  # [A, V, d]

    def action_scores(
        self, batch: AdverbBatch, actions: torch.Tensor, cache: torch.Tensor
    ) -> torch.Tensor:
        o = F.normalize(self.model.video_embeddings(batch.video, batch.lengths, actions), dim=-1)
        return torch.einsum("bd,abd->ba", o, cache[:, actions])  # cosine, [B, A]


# ----------------------------------------------------------------------------- TIRG
@dataclass(frozen=True)
class TIRGConfig:
    """TIRG adapted to adverbs (thesis §6.5): ReGaDa's video encoder, the action embedding
    modified by the adverb (TIRG gating), softmax cross-entropy over all pairs with a
    learnable scale (TIRG's normalisation layer, initial scale 4)."""

    emb_dim: int = 400
    heads: int = 4
    video_layers: int = 2
    video_dropout: float = 0.1
    init_scale: float = 4.0


class TIRGMethod(AdverbMethod):
    """TIRG baseline (Vo et al., CVPR 2019, google/tirg @ c58daa0; adaptation unreleased)."""

    def __init__(
        self, cfg: TIRGConfig, data: AdverbData, text: VocabText, feature_dim: int
    ) -> None:
        super().__init__()
        self.model = ReGaDa(
            text.adverb_emb(), text.action_emb(), feature_dim, cfg.emb_dim, cfg.heads, cfg.video_layers,
            cfg.video_dropout, main="action", aux="adverb", composer="tirg",
        )  # fmt: skip
        self.scale = nn.Parameter(torch.tensor(float(cfg.init_scale)))
        self.n_adverbs, self.n_actions = data.vocab.n_adverbs, data.vocab.n_actions

    def training_loss(self, batch: AdverbBatch, gen: torch.Generator) -> dict[str, Any]:
        o = self.model.video_embeddings(batch.video, batch.lengths, batch.actions)
        logits = self.scale * ReGaDa.cosine(o, self.model.text_embeddings())  # [B, P]
        loss = F.cross_entropy(logits, batch.adverbs * self.n_actions + batch.actions)
        return {"loss": loss, "loss_terms": {"ce": float(loss.detach())}}

    def eval_cache(self) -> torch.Tensor:
        return F.normalize(self.model.text_embeddings(), dim=-1).view(
            self.n_adverbs, self.n_actions, -1
        )

    def action_scores(
        self, batch: AdverbBatch, actions: torch.Tensor, cache: torch.Tensor
    ) -> torch.Tensor:
        o = F.normalize(self.model.video_embeddings(batch.video, batch.lengths, actions), dim=-1)
        return torch.einsum("bd,abd->ba", o, cache[:, actions])


# ----------------------------------------------------------------------------- AC
@dataclass(frozen=True)
class ACConfig:
    """AC_CLS / AC_REG (air-cvpr23 defaults: 4 heads, d_k 512, rho 512-512-512, dropout 0.1).

    ``dropout`` applies to ``rho`` and to the attention weights (one value, as published).
    ``fixed_delta`` sets delta = 1 (``--fixed_d``). Without antonyms (``data.use_antonyms:
    false``, ``--no_antonyms``) the -delta target is dropped and delta compares the phrase
    with the bare verb: ||S("v a") - S("v")|| * |cos(S(v), S(a))|.
    ``legacy_zero_value_padding_mask`` (channel-0 padding test in training) and
    ``legacy_unmasked_eval`` (no mask at evaluation; results then depend on
    ``train.eval_batch_size``, published 512) restore the published padding handling.
    """

    heads: int = 4
    d_k: int = 512
    hidden: tuple[int, ...] = (512, 512, 512)
    dropout: float = 0.1
    fixed_delta: bool = False
    legacy_unmasked_eval: bool = False
    legacy_zero_value_padding_mask: bool = False


def ac_delta(text: VocabText, antonyms: np.ndarray | None) -> torch.Tensor:
    """``[A, V]`` AC_REG regression targets (verb-first phrases, as published).

    delta(v, a) = ||S("v a") - S("v ant(a)")|| * |cos(S(v), S(a))|; without antonyms
    (``antonyms`` None) the negative phrase is the bare verb: ||S("v a") - S("v")|| * |cos|.
    """
    a_n, v_n = len(text.adverbs), len(text.actions)
    phrases = text.pair_emb("action adverb").view(a_n, v_n, -1)
    if antonyms is None:
        negative = text.action_emb()[None].expand_as(phrases)
    else:
        negative = phrases[torch.as_tensor(antonyms)]
    diff = (phrases - negative).norm(dim=-1)  # [A, V]
    cos = F.cosine_similarity(text.adverb_emb()[:, None], text.action_emb()[None], dim=-1).abs()
    return diff * cos


class ACMethod(AdverbMethod):
    """AC_CLS (``mode="cls"``) or AC_REG (``mode="reg"``); scores = rho outputs."""

    def __init__(
        self,
        cfg: ACConfig,
        data: AdverbData,
        text: VocabText,
        feature_dim: int,
        mode: Literal["cls", "reg"],
    ) -> None:
        super().__init__()
        self.mode = mode
        self.model = ACModel(
            text.action_emb(), data.vocab.n_adverbs, feature_dim, cfg.heads, cfg.d_k, cfg.hidden, cfg.dropout,
            cfg.legacy_unmasked_eval, cfg.legacy_zero_value_padding_mask,
        )  # fmt: skip
        ant = data.antonyms
        self.register_buffer("antonyms", None if ant is None else torch.as_tensor(ant))
        delta = None
        if mode == "reg":
            if cfg.fixed_delta:
                delta = torch.ones(data.vocab.n_adverbs, data.vocab.n_actions)
            else:
                delta = ac_delta(text, ant)
        self.register_buffer("delta", delta)

    def training_loss(self, batch: AdverbBatch, gen: torch.Generator) -> dict[str, Any]:
        out = self.model(batch.video, batch.lengths, batch.actions)  # [B, A]
        if self.mode == "cls":
            loss = F.cross_entropy(out, batch.adverbs)
            return {"loss": loss, "loss_terms": {"ce": float(loss.detach())}}
        rows = torch.arange(len(batch), device=out.device)
        d = self.delta[batch.adverbs, batch.actions]
        target = torch.zeros_like(out)
        target[rows, batch.adverbs] = d
        if self.antonyms is not None:
            target[rows, self.antonyms[batch.adverbs]] = -d
        loss = F.mse_loss(out, target)
        return {"loss": loss, "loss_terms": {"mse": float(loss.detach())}}

    def action_scores(self, batch: AdverbBatch, actions: torch.Tensor, cache: Any) -> torch.Tensor:
        return self.model(batch.video, batch.lengths, actions)


# ----------------------------------------------------------------------------- Act Mod
@dataclass(frozen=True)
class ActionModifierConfig:
    """Action Modifier: triplet margin 0.5; actions only until ``adverb_start`` epochs
    (modifier lr 0), then every group at ``lr * late_lr_factor`` (0.1), as published;
    ``dropout`` on the attention weights (published default 0.1)."""

    heads: int = 4
    d_k: int = 512
    dropout: float = 0.1
    margin: float = 0.5
    adverb_start: int = 200
    late_lr_factor: float = 0.1


class ActionModifierMethod(AdverbMethod):
    """Action Modifier (Doughty et al., CVPR 2020); score = -||video - ReLU(A_a e_v)||."""

    def __init__(
        self, cfg: ActionModifierConfig, data: AdverbData, text: VocabText, feature_dim: int
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.model = ActionModifierModel(
            text.action_emb(), data.vocab.n_adverbs, feature_dim, cfg.heads, cfg.d_k, cfg.dropout
        )
        ant = data.antonyms
        self.register_buffer("antonyms", None if ant is None else torch.as_tensor(ant))
        self.n_adverbs, self.n_actions = data.vocab.n_adverbs, data.vocab.n_actions
        self._adverbs_on = cfg.adverb_start <= 0

    def param_groups(self) -> list[dict[str, Any]]:
        others = [p for n, p in self.named_parameters() if not n.endswith("modifiers")]
        return [
            {"params": others, "name": "video"},
            {"params": [self.model.modifiers], "name": "modifiers"},
        ]

    def on_epoch_start(self, epoch: int, optimizer: torch.optim.Optimizer, lr: float) -> None:
        self._adverbs_on = epoch >= self.cfg.adverb_start
        for group in optimizer.param_groups:
            if not self._adverbs_on:
                group["lr"] = 0.0 if group.get("name") == "modifiers" else lr
            else:
                group["lr"] = lr * (self.cfg.late_lr_factor if self.cfg.adverb_start > 0 else 1.0)

    def training_loss(self, batch: AdverbBatch, gen: torch.Generator) -> dict[str, Any]:
        o = self.model.video_embeddings(batch.video, batch.lengths, batch.actions)
        pos = self.model.pair_embeddings(batch.adverbs, batch.actions)
        neg_act = self.model.pair_embeddings(
            batch.adverbs, _other_index(batch.actions, self.n_actions, gen)
        )
        terms = {"trip_act": _triplet(o, pos, neg_act, self.cfg.margin)}
        loss = terms["trip_act"]
        if self._adverbs_on:
            neg_adv_idx = _antonym_or_random(batch.adverbs, self.antonyms, self.n_adverbs, gen)
            terms["trip_adv"] = _triplet(
                o, pos, self.model.pair_embeddings(neg_adv_idx, batch.actions), self.cfg.margin
            )
            loss = loss + terms["trip_adv"]
        return {"loss": loss, "loss_terms": {k: float(v.detach()) for k, v in terms.items()}}

    def action_scores(self, batch: AdverbBatch, actions: torch.Tensor, cache: Any) -> torch.Tensor:
        o = self.model.video_embeddings(batch.video, batch.lengths, actions)  # [B, d]
        return -(o[:, None] - self.model.all_adverb_embeddings(actions)).norm(dim=-1)


# ----------------------------------------------------------------------------- zero-shot
@dataclass(frozen=True)
class ZeroShotConfig:
    """Training-free similarity of pooled video embeddings and phrase embeddings.

    ``features``: ``joint`` (the file's ``video_embedding_joint_space``, i.e. S3D's joint
    space, or per-second image embeddings of another encoder stored under that key) or
    ``video``. The S3D pre-trained configuration is unreleased (reference §8.3): pooling,
    similarity and phrase order are options to be settled against published numbers.
    """

    features: Literal["joint", "video"] = "joint"
    pooling: Literal["mean", "max"] = "mean"
    similarity: Literal["cosine", "dot"] = "cosine"
    phrase: Literal["adverb action", "action adverb"] = "adverb action"


class ZeroShotMethod(AdverbMethod):
    """S3D pre-trained (AIR paper) / CLIP (thesis App. E.2, E.4) zero-shot baselines."""

    trainable = False

    def __init__(
        self, cfg: ZeroShotConfig, data: AdverbData, text: VocabText, feature_dim: int
    ) -> None:
        super().__init__()
        self.cfg = cfg
        phrases = text.pair_emb(cfg.phrase)
        if cfg.similarity == "cosine":
            phrases = F.normalize(phrases, dim=-1)
        self.register_buffer(
            "phrases", phrases.view(data.vocab.n_adverbs, data.vocab.n_actions, -1)
        )

    def action_scores(self, batch: AdverbBatch, actions: torch.Tensor, cache: Any) -> torch.Tensor:
        x = batch.joint if self.cfg.features == "joint" else batch.video
        if x is None:
            raise ConfigError("zero-shot baseline: the feature file has no joint-space embeddings")
        if x.shape[-1] != self.phrases.shape[-1]:
            raise ConfigError(
                f"zero-shot baseline: video embeddings are {x.shape[-1]}-d but text embeddings "
                f"{self.phrases.shape[-1]}-d; use a text encoder of the same joint space"
            )
        valid = valid_steps(batch.lengths, x.shape[1])[..., None]
        if self.cfg.pooling == "mean":
            v = (x * valid).sum(1) / batch.lengths[:, None].clamp_min(1)
        else:
            v = x.masked_fill(~valid, float("-inf")).max(1).values
        if self.cfg.similarity == "cosine":
            v = F.normalize(v, dim=-1)
        return torch.einsum("bd,abd->ba", v, self.phrases[:, actions])


# ----------------------------------------------------------------------------- Priors
@dataclass(frozen=True)
class PriorsConfig:
    """Priors has no options; the definition (train counts of each pair) is fixed (§6)."""


class PriorsMethod(AdverbMethod):
    """Priors: ``S[i, (a, v)] = count_train(a, v)``, identical for every video."""

    trainable = False
    needs_features = False

    def __init__(
        self, cfg: PriorsConfig, data: AdverbData, text: VocabText | None, feature_dim: int
    ) -> None:
        super().__init__()
        counts = priors_pair_scores(data.train, data.vocab).reshape(
            data.vocab.n_adverbs, data.vocab.n_actions
        )
        self.register_buffer("counts", torch.as_tensor(counts, dtype=torch.float64))

    def action_scores(self, batch: AdverbBatch, actions: torch.Tensor, cache: Any) -> torch.Tensor:
        return self.counts[:, actions].T


# ----------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class MethodSpec:
    """How to build a method: its config schema, a builder and what it needs."""

    schema: type
    build: Callable[[Any, AdverbData, VocabText | None, int], AdverbMethod]
    needs_text: bool = True
    needs_features: bool = True
    trainable: bool = True


METHODS.register("adverbs.regada")(MethodSpec(ReGaDaConfig, ReGaDaMethod))
METHODS.register("adverbs.tirg")(MethodSpec(TIRGConfig, TIRGMethod))
METHODS.register("adverbs.ac_cls")(
    MethodSpec(ACConfig, lambda c, d, t, f: ACMethod(c, d, t, f, "cls"))
)
METHODS.register("adverbs.ac_reg")(
    MethodSpec(ACConfig, lambda c, d, t, f: ACMethod(c, d, t, f, "reg"))
)
METHODS.register("adverbs.action_modifier")(MethodSpec(ActionModifierConfig, ActionModifierMethod))
METHODS.register("adverbs.s3d_pretrained")(
    MethodSpec(ZeroShotConfig, ZeroShotMethod, trainable=False)
)
METHODS.register("adverbs.clip")(MethodSpec(ZeroShotConfig, ZeroShotMethod, trainable=False))
METHODS.register("adverbs.priors")(
    MethodSpec(PriorsConfig, PriorsMethod, needs_text=False, needs_features=False, trainable=False)
)


def method_spec(name: str) -> MethodSpec:
    """The :class:`MethodSpec` registered as ``name`` (did-you-mean on unknown names)."""
    spec = METHODS.get(name)
    if not isinstance(spec, MethodSpec):
        raise ConfigError(f"method '{name}' is not a video-adverb method")
    return spec


def build_method(
    name: str, model_cfg: dict[str, Any], data: AdverbData, text: VocabText | None, feature_dim: int
) -> AdverbMethod:
    """Look ``name`` up in METHODS, validate ``model_cfg`` strictly and build the method."""
    spec = method_spec(name)
    cfg = from_dict(spec.schema, model_cfg, where="model")
    if spec.needs_text and text is None:
        raise ConfigError(f"method '{name}' needs text embeddings")
    return spec.build(cfg, data, text, feature_dim)


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
