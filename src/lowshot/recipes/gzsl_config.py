"""Schema of a GZSL experiment (``recipe: gzsl`` YAMLs under ``lowshot/configs``).

The ``model`` section is validated against the schema of the named method
(``METHODS.get(method).Config``); everything else against the dataclasses below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from lowshot.config.paper import Provenance
from lowshot.config.schema import check_range


@dataclass(frozen=True)
class DataConfig:
    """Which released data to read, and how.

    Attributes:
        dataset: ``UCF`` | ``ActivityNet`` | ``VGGSound`` (folder name under the root).
        split: class split, ``main`` or ``cls``.
        feature_dir: folder under ``<root>/<dataset>/features/`` (released names unchanged).
        root: data root; None -> ``$LOWSHOT_DATA_ROOT``. Ignored when ``synthetic`` is set.
        text: class-label embeddings to concatenate, in order: ``fasttext`` (300-d),
            ``clip`` (512-d), ``clap`` (1024-d).
        trust_pickle: allow the full unpickler (runs code) for a released pickle of the selected
            feature folder that holds more than dicts / lists / str / numpy arrays (the
            released files do not; they are read without it).
        legacy_text_order: reproduce the upstream class-embedding row misalignment
            (reference §6.1). Off by default: embeddings are attached by class name.
        synthetic: a ``lowshot data synth`` preset; the data is generated into the run
            directory and read back through the same readers.
        synthetic_size: size knob of the synthetic generator (1.0 = real benchmark size).
        synthetic_seed: seed of the synthetic generator.
    """

    dataset: str = "UCF"
    split: Literal["main", "cls"] = "cls"
    feature_dir: str = "cls_features_non_averaged"
    root: str | None = None
    text: tuple[str, ...] = ("fasttext",)
    trust_pickle: bool = False
    legacy_text_order: bool = False
    synthetic: str | None = None
    synthetic_size: float = 1.0
    synthetic_seed: int = 0

    def __post_init__(self) -> None:
        check_range("synthetic_size", self.synthetic_size, 0, open_low=True)
        if not self.text:
            raise ValueError("text must name at least one class-embedding kind")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings shared by the audio-visual methods.

    ``n_batches`` batches of ``batch_size`` are drawn per epoch (the upstream "epoch" is a
    number of batches, not a pass over the data); ``sampler`` picks how. ``num_threads`` sets
    torch's intra-op threads (None: torch's default); 1 avoids a several-fold slowdown of
    these small models when other processes share a 2-core CPU. ``precision="bf16"`` runs
    the training forward and backward under bfloat16 autocast (fp32 master weights and
    optimiser state; losses in fp32 by autocast's op lists); evaluation stays fp32.
    ``seed_batched=true`` trains all ``seeds`` in one process as one stacked model (results per
    seed as separate runs give them, :mod:`lowshot.recipes.gzsl_seed_batched`; methods with
    ``seed_batching`` only: clipclap, ale, sje, devise).
    """

    epochs: int = 50
    batch_size: int = 64
    n_batches: int = 300
    sampler: Literal["class_balanced", "uniform"] = "class_balanced"
    lr: float = 1e-3
    weight_decay: float = 1e-5
    lr_scheduler: bool = False
    lr_factor: float = 0.1
    lr_patience: int = 3
    eval_batch_size: int = 2048
    device: str = "auto"
    num_threads: int | None = None
    precision: Literal["fp32", "bf16"] = "fp32"
    seeds: tuple[int, ...] = (42,)
    seed_batched: bool = False
    tensorboard: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "n_batches", "eval_batch_size"):
            check_range(name, getattr(self, name), 1)
        check_range("lr", self.lr, 0, open_low=True)
        check_range("weight_decay", self.weight_decay, 0)
        check_range("lr_factor", self.lr_factor, 0, 1, open_low=True, open_high=True)
        check_range("lr_patience", self.lr_patience, 0)
        if self.num_threads is not None:
            check_range("num_threads", self.num_threads, 1)
        if not self.seeds:
            raise ValueError("seeds must name at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must not repeat, got {list(self.seeds)}")


@dataclass(frozen=True)
class ProtocolConfig:
    """Two-stage GZSL protocol settings (reference §3.3–3.4).

    Attributes:
        beta_grid: (start, stop, num) of ``linspace`` for calibrated stacking; published grids:
            (0, 3, 16) AVCA/TCaF, (0, 5, 76) ClipClap, (0, 1, 11) AV-Diff.
        stage2_scheduler: ``replay`` repeats the stage-1 LR drops at the same epochs in stage
            2; ``legacy_val_on_train`` steps the scheduler on HM measured on stage-1
            validation data, which is training data in stage 2 (AVCA upstream behaviour).
    """

    beta_grid: tuple[float, float, int] = (0.0, 3.0, 16)
    stage2_scheduler: Literal["replay", "legacy_val_on_train"] = "replay"

    def __post_init__(self) -> None:
        start, stop, num = self.beta_grid
        check_range("beta_grid start", start, 0)
        check_range("beta_grid stop", stop, start)
        check_range("beta_grid num", num, 1)


@dataclass(frozen=True)
class ExperimentConfig:
    """A whole GZSL experiment; one YAML per paper setting."""

    recipe: str
    method: str
    name: str = "experiment"
    model: dict[str, Any] = field(default_factory=dict)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    provenance: Provenance = field(default_factory=Provenance)
