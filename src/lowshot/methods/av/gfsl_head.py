"""Shared parts of the GFSL baselines of thesis Table 4.2 (classifier methods).

* :class:`PhaseClasses` — a classifier over every class of the dataset whose cross-entropy and
  softmax range over the classes of the current GFSL phase (as AV-Diff's CL_net: classes not
  trained yet get probability 0 instead of an untrained logit);
* :class:`GFSLClassifier` — the ``GZSLMethod`` base of the classifier baselines: phase hook
  (``start_phase``, see :class:`~lowshot.protocols.gfsl.PhaseAware`), CE, probability scores;
* :class:`TemporalGFSLConfig` / :class:`TemporalGFSLClassifier` — TCaF's inputs (collation,
  normalisation, per-step encoders with time and modality embeddings, O_proj) for the
  token-based baselines (MBT, Zorro, HiP, SLDG, TSL);
* :func:`detached_call` — a module run with frozen copies of its parameters (the generator's
  adversarial term of the GAN baselines, so that one optimiser step updates D and G with
  their own losses), and the conditional generator / critic MLPs of ProtoGan and TSL.

Shapes: ``B`` samples, ``C`` all classes, ``C_p`` classes of the current phase, ``D`` token dim.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from lowshot.data.av.batch import Batch
from lowshot.errors import ConfigError
from lowshot.methods.av.tcaf import TCaF, TCaFConfig
from lowshot.methods.base import GZSLMethod, InputSpec, LossResult
from lowshot.methods.gfsl import GFSLInputSpec
from lowshot.models.av.tcaf import TCaFNet, TemporalInput


def num_classes_of(spec: InputSpec, name: str) -> int:
    """``C`` from a :class:`GFSLInputSpec`; a clear error for a GZSL spec (no classifier size)."""
    n = spec.num_classes if isinstance(spec, GFSLInputSpec) else 0
    if n < 1:
        raise ConfigError(f"{name} needs the number of classes (GFSLInputSpec.num_classes); run it with recipe gfsl")
    return n


def detached_call(module: nn.Module, *args: torch.Tensor) -> torch.Tensor:
    """``module(*args)`` with detached parameters (output shape as ``module``'s): gradients reach the inputs only."""
    params = {k: v.detach() for k, v in module.named_parameters()}
    return functional_call(module, params, args)


class PhaseClasses(nn.Module):
    """Linear classifier over all ``C`` classes, restricted to the current phase's classes.

    Args:
        dim: input feature size.
        num_classes: ``C``.
    """

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, num_classes)
        #: sorted global classes of the current phase (None: all classes)
        self.classes_: torch.Tensor | None = None

    def start(self, train_classes: np.ndarray) -> None:
        """Restrict CE and softmax to ``train_classes`` (sorted global indices)."""
        self.classes_ = torch.as_tensor(np.asarray(train_classes), dtype=torch.long, device=self.linear.weight.device)

    def restrict(self, logits: torch.Tensor) -> torch.Tensor:
        """``[..., C]`` -> ``[..., C_p]`` logits of the phase's classes."""
        return logits if self.classes_ is None else logits[..., self.classes_]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[..., dim]`` -> phase logits ``[..., C_p]``."""
        return self.restrict(self.linear(x))

    def rows(self, labels: torch.Tensor) -> torch.Tensor:
        """Column of each global label ``[B]`` in the phase logits."""
        return labels if self.classes_ is None else torch.searchsorted(self.classes_, labels)

    def ce(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of phase logits ``[B, C_p]`` against global labels ``[B]``."""
        return F.cross_entropy(logits, self.rows(labels))

    def frozen(self, x: torch.Tensor) -> torch.Tensor:
        """Phase logits ``[..., C_p]`` through a detached copy of the classifier (gradients reach ``x`` only)."""
        return self.restrict(detached_call(self.linear, x))

    def scatter(self, probs: torch.Tensor, n_out: int) -> torch.Tensor:
        """Phase probabilities ``[B, C_p]`` -> ``[B, n_out]`` (0 for classes outside the phase)."""
        if self.classes_ is None:
            return probs[:, :n_out]
        out = probs.new_zeros(probs.shape[0], n_out)
        out[:, self.classes_] = probs
        return out


class GFSLClassifier(GZSLMethod):
    """Base of the classifier baselines: subclasses build ``self.head`` (:class:`PhaseClasses`)
    and implement :meth:`logits` (and ``training_loss`` when the loss is more than CE).

    Scores are probabilities over the phase's classes (calibrated stacking subtracts beta from
    base-class probabilities, as for AV-Diff).
    """

    score_kind = "probability"
    head: PhaseClasses

    def __init__(self, config: Any, spec: InputSpec) -> None:
        super().__init__(config, spec)
        self.num_classes = num_classes_of(spec, type(self).__name__)
        #: novel classes of the current phase (empty in the base phase)
        self.novel_ = torch.zeros(0, dtype=torch.long)

    def start_phase(
        self, phase: str, train_classes: np.ndarray, novel_classes: np.ndarray, stage_classes: np.ndarray | None = None
    ) -> None:
        """Restrict the classifier to ``train_classes`` ``[C_p]``; remember the novel ones (``stage_classes`` unused)."""
        self.head.start(train_classes)
        self.novel_ = torch.as_tensor(np.asarray(novel_classes), dtype=torch.long)

    def is_novel(self, labels: torch.Tensor) -> torch.Tensor:
        """``[B]`` bool: the sample's class is a novel class of the current phase."""
        return torch.isin(labels, self.novel_.to(labels.device))

    def logits(self, batch: Batch) -> torch.Tensor:
        """Logits over the phase's classes ``[B, C_p]``."""
        raise NotImplementedError

    def probs(self, batch: Batch) -> torch.Tensor:
        """Softmax over the phase's classes ``[B, C_p]`` (of :meth:`logits` by default)."""
        return self.logits(batch).softmax(-1)

    def training_loss(self, batch: Batch, class_embeddings: torch.Tensor) -> LossResult:
        """Default: CE of :meth:`logits` over the phase's classes (``class_embeddings`` ``[C_train, D_w]`` unused)."""
        return loss_of({"ce": self.head.ce(self.logits(batch), batch.labels)})

    def class_scores(self, batch: Batch, class_embeddings: torch.Tensor) -> torch.Tensor:
        """``[B, C]`` probabilities (0 outside the phase); ``class_embeddings`` ``[C, D_w]`` sizes the output."""
        return self.head.scatter(self.probs(batch), class_embeddings.shape[0])


#: TCaF settings no token baseline uses (a value other than TCaF's default is a config error)
UNUSED_TCAF_KEYS = ("attention", "readout", "objective", "margin", "legacy_eval_integer_timesteps",
                    "legacy_train_integer_time_pass", "additional_dropout")  # fmt: skip


@dataclass(frozen=True)
class TemporalGFSLConfig(TCaFConfig):
    """TCaF's input and token settings (sizes, dropouts, time/modality embeddings, sequence
    policy, input normalisation). The keys of :data:`UNUSED_TCAF_KEYS` and a baseline's own
    ``ignored`` keys must keep TCaF's defaults (a changed value would silently do nothing)."""

    #: further TCaF keys this baseline does not use
    ignored: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        defaults = {f.name: f.default for f in fields(TCaFConfig)}
        for key in (*UNUSED_TCAF_KEYS, *self.ignored):
            if getattr(self, key) != defaults[key]:
                raise ConfigError(f"model.{key} is a TCaF setting that this GFSL baseline does not use")


class TemporalGFSLClassifier(GFSLClassifier):
    """A classifier baseline on TCaF's temporal inputs: ``collate`` / ``_inputs`` are TCaF's,
    ``self.tokens`` is TCaF's token pipeline without its transformer and label heads
    (``tokens.enc``, ``tokens._encode``, ``tokens.o_proj``)."""

    collate = TCaF.collate
    _inputs = TCaF._inputs

    def __init__(self, config: TemporalGFSLConfig, spec: InputSpec) -> None:
        super().__init__(config, spec)
        self.tokens = TCaFNet(spec.audio_dim, spec.video_dim, spec.text_dim, config, config.legacy_bn_over_padding)
        for unused in ("transformer", "d_o", "w_proj", "d_w", "cls_token"):
            delattr(self.tokens, unused)

    def encode(self, batch: Batch) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Per modality: tokens ``[B, T_m, D]`` (encoder + time/modality code) and valid mask ``[B, T_m]``."""
        inputs: dict[str, TemporalInput] = self._inputs(batch)
        return {m: (self.tokens._encode(m, inputs[m]), inputs[m].mask) for m in self.tokens.modalities}


class ConditionalGenerator(nn.Module):
    """``G([z ; cond])`` with ``z ~ N(0, I)``: ``[N, D_c]`` -> ``[N, D_x]`` (GAN baselines).

    Args:
        noise_dim / cond_dim / hidden / out_dim: ``D_z``, ``D_c``, hidden width, ``D_x``.
    """

    def __init__(self, noise_dim: int, cond_dim: int, hidden: int, out_dim: int) -> None:
        super().__init__()
        self.noise_dim = noise_dim
        self.net = nn.Sequential(nn.Linear(noise_dim + cond_dim, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, out_dim))

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        """One generated feature ``[N, D_x]`` per conditioning row ``[N, D_c]``."""
        z = torch.randn(cond.shape[0], self.noise_dim, device=cond.device, dtype=cond.dtype)
        return self.net(torch.cat([z, cond], dim=1))


class ConditionalCritic(nn.Module):
    """Discriminator / critic ``D([x ; cond])``: ``[N, D_x]``, ``[N, D_c]`` -> ``[N]``."""

    def __init__(self, x_dim: int, cond_dim: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(x_dim + cond_dim, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """``[N]`` scores."""
        return self.net(torch.cat([x, cond], dim=1)).squeeze(1)


def loss_of(terms: dict[str, torch.Tensor]) -> LossResult:
    """``{"loss": sum of the terms, "loss_terms": terms}`` (every term a scalar)."""
    return {"loss": torch.stack(list(terms.values())).sum(), "loss_terms": terms}
