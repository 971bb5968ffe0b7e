"""Schema of a video-adverb experiment (``recipe: adverbs`` YAMLs under ``lowshot/configs``).

The ``model`` section is validated against the schema of the named method
(:func:`lowshot.methods.adverbs.base.method_class`); everything else against the dataclasses
below. Defaults are ReGaDa's ``config/default.yaml`` values (reference §7.5); each paper
YAML holds only the non-default values of its setting plus provenance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from lowshot.config.paper import Provenance


@dataclass(frozen=True)
class DataConfig:
    """Which split and features to read.

    Attributes:
        dataset: ``howto100m`` | ``air`` | ``activitynet`` | ``msrvtt`` | ``vatex``.
        unseen: the unseen-composition split (train + test features merged).
        root: data root; None -> ``--data-root`` or ``$LOWSHOT_DATA_ROOT``.
        splits_root / features_root: override where CSVs / features live (default: root).
        trust_pickle: allow reading the released pickle-based ``.pth`` files.
        air_native: read AIR's own CSV layout (``air/{train_df,test_df,antonyms}.csv``).
        use_antonyms: False trains without antonyms (App. E.3; Acc-A not reported).
        video_dim / joint_dim: expected feature sizes (None = whatever the file holds).
        synthetic: a :class:`~lowshot.data.adverbs.synth.SynthSpec` mapping; the data is
            generated into ``<run_dir>/data`` and read back through the same readers.
    """

    dataset: str = "vatex"
    unseen: bool = False
    root: str | None = None
    splits_root: str | None = None
    features_root: str | None = None
    trust_pickle: bool = False
    air_native: bool = False
    use_antonyms: bool = True
    video_dim: int | None = 1024
    joint_dim: int | None = 512
    synthetic: dict[str, Any] | None = None


@dataclass(frozen=True)
class TextConfig:
    """Frozen word embeddings of adverbs and actions.

    Attributes:
        encoder: an ``ENCODERS`` name: ``adverbs.s3d_text`` (published), ``adverbs.text_cache``,
            ``adverbs.minilm``, ``adverbs.glove``, ``adverbs.word_vectors``, ``adverbs.hash``.
        weights / word_dict: S3D files, relative to the data root unless absolute.
        cache: text cache file for ``adverbs.text_cache`` (e.g. GPT-3 embeddings, Table E.2).
        vectors: word-vector file for ``adverbs.word_vectors`` (word2vec ``.bin``,
            fastText ``.vec``, GloVe ``.txt``; Table E.2), relative to the data root.
        dim / seed: size and seed of ``adverbs.hash``.
    """

    encoder: str = "adverbs.s3d_text"
    weights: str = "features/s3d/s3d_howto100m.pth"
    word_dict: str = "features/s3d/s3d_dict.npy"
    cache: str | None = None
    vectors: str | None = None
    dim: int = 512
    seed: int = 0


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation (Adam, no scheduler, no clipping) and evaluation cadence.

    Epochs run from 0 to ``epochs`` inclusive and the model is evaluated after every
    ``eval_interval``-th epoch (0, 10, ..., 2000: 201 evaluations, as published).
    ``num_threads`` sets torch's intra-op threads (None = torch's default); 1 avoids the
    heavy slow-down of small models on a busy CPU. ``eval_batch_size`` is the published
    test batch (512): masked evaluation does not depend on it, but AC's
    ``legacy_unmasked_eval`` does (each clip attends to padding up to the longest clip of
    its batch), and reproduces the published numbers only with 512 unshuffled rows.
    """

    epochs: int = 2000
    batch_size: int = 512
    lr: float = 1e-5
    weight_decay: float = 5e-5
    eval_interval: int = 10
    checkpoint_interval: int | None = None
    eval_batch_size: int = 512
    device: str = "cpu"
    num_threads: int | None = None
    seeds: tuple[int, ...] = (42,)


@dataclass(frozen=True)
class ProtocolConfig:
    """Model selection and reported metrics (reference §7.6, §10.2).

    Attributes:
        selection: ``validation`` (default: ``val_fraction`` of the training clips is held
            out, stratified by adverb and action, and the epoch E with the best validation
            score is selected; a fresh model is then refit on all training clips for
            epochs 0..E and test is evaluated once, after epoch E), ``last``,
            ``fixed_epoch`` (needs ``epoch``; training stops there) or ``best_per_metric``
            (the published protocol, legacy: every metric's best value over all test
            evaluations, i.e. selected on test data).
        select_metric: the validation score; None = mean of the reported metrics.
        epoch: the epoch of ``fixed_epoch``.
        val_fraction: fraction of training clips held out by ``validation``'s stage 1 (0.1).
        metrics: reported metrics; None = ``map_w, map_m, acc_a`` (seen) or ``acc_a_cls``
            (unseen). Without antonyms only mAP W/M.
        no_action_gt: also compute the no-action-ground-truth metrics (``no_act/*``).
    """

    selection: Literal["validation", "last", "fixed_epoch", "best_per_metric"] = "validation"
    select_metric: str | None = None
    epoch: int | None = None
    val_fraction: float = 0.1
    metrics: tuple[str, ...] | None = None
    no_action_gt: bool = False


@dataclass(frozen=True)
class AdverbsConfig:
    """A complete video-adverb experiment."""

    recipe: str = "adverbs"
    name: str = "adverbs"
    provenance: Provenance = field(default_factory=Provenance)
    data: DataConfig = field(default_factory=DataConfig)
    text: TextConfig = field(default_factory=TextConfig)
    method: str = "adverbs.regada"
    model: dict[str, Any] = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)

    def reported_metrics(self) -> tuple[str, ...]:
        """The metric names this setting reports.

        ``protocol.metrics`` when set; else mAP W / mAP M without antonyms, Acc-A (cls) on the
        unseen-composition splits, and mAP W / mAP M / Acc-A otherwise.
        """
        if self.protocol.metrics is not None:
            return self.protocol.metrics
        if not self.data.use_antonyms:
            return ("map_w", "map_m")
        return ("acc_a_cls",) if self.data.unseen else ("map_w", "map_m", "acc_a")
