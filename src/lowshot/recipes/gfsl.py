"""Recipe ``gfsl``: one k-shot experiment config -> k-shot benchmark -> GFSL protocol per seed -> results.

Runs any registered audio-visual method (``GZSLMethod``) through the protocol of
:mod:`lowshot.protocols.gfsl` with the GZSL trainer. The data is either the released k-shot
archives (``data.draws=released``), draws generated from the GZSL ``cls`` features
(``data.draws=generated``, deterministic from ``data.draw_seed``), or, with
``data.synthetic`` set, a synthetic tree written into the run directory in the released
k-shot layout (``synthetic: kshot``) or the GZSL layout (``synthetic: cls_temporal`` with
generated draws).

Run directory: ``config.yaml`` (resolved config); ``result.json`` (mean ± std over seeds of B/N/HM/FSL);
``seed_<s>/result.json`` (B̄, N̄, HM of the means, FSL̄, per-draw numbers, selected epochs,
beta, LR-drop epochs) and ``seed_<s>/history.json``. A finished seed is skipped when the
command is run again; an unfinished one restarts (no mid-seed resume).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from lowshot._registry import RECIPES
from lowshot.config.schema import check_range, to_dict
from lowshot.data.av.featureset import GZSLBenchmark
from lowshot.data.av.fsl import GFSLBenchmark
from lowshot.errors import ConfigError
from lowshot.methods import av as _av_methods  # noqa: F401  (registers the methods)
from lowshot.methods.base import GZSLMethod, method_of_family
from lowshot.methods.gfsl import GFSLInputSpec
from lowshot.protocols.calibration import beta_grid
from lowshot.protocols.gfsl import GFSLProtocol
from lowshot.recipes.gzsl import input_spec, parse_experiment
from lowshot.recipes.gzsl_config import DataConfig, ExperimentConfig, ProtocolConfig, TrainConfig
from lowshot.recipes.gzsl_trainer import MethodTrainer
from lowshot.utils.io import atomic_write_json
from lowshot.utils.paths import resolve_data_root
from lowshot.utils.results import RunResult, make_result, write_result
from lowshot.utils.rundir import RunDir, check_run_dir
from lowshot.utils.seed import resolve_device, seed_everything

log = logging.getLogger(__name__)
METRICS = ("B", "N", "HM", "FSL")


@dataclass(frozen=True)
class GFSLDataConfig(DataConfig):
    """The GZSL data settings plus the k-shot ones.

    Attributes:
        shots: k (1, 5, 10, 20 released; others only with generated draws, with a warning).
        draws: ``released`` (``<root>/<DS>/features/<k>-shot``) or ``generated`` (from the
            GZSL ``cls`` features of ``feature_dir``, seed ``draw_seed``).
        draw_seed: seed of generated draws.
        synthetic: ``kshot`` (a synthetic released k-shot tree) or a GZSL preset
            (``cls_temporal``, ``clipclap``; with ``draws=generated``).
    """

    shots: int = 5
    draws: Literal["released", "generated"] = "released"
    draw_seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_range("shots", self.shots, 1)
        if self.synthetic == "kshot" and self.draws != "released":
            raise ValueError("synthetic=kshot writes the released k-shot layout; use draws=released")


@dataclass(frozen=True)
class GFSLProtocolConfig:
    """GFSL protocol settings (reference §3.3, §3.5, §6.2–6.3).

    Attributes:
        beta_grid: (start, stop, num) of the beta grid searched in the full phase (0:0.1:1).
        epochs_fine_tune: stage-1 full-phase epochs (``train.epochs`` is the base phase).
        beta_source: ``best_epoch`` or the published ``last_epoch``.
        legacy_beta_zero_search_on_test: the published re-search of beta = 0 on test data.
    """

    beta_grid: tuple[float, float, int] = (0.0, 1.0, 11)
    epochs_fine_tune: int = 20
    beta_source: Literal["best_epoch", "last_epoch"] = "best_epoch"
    legacy_beta_zero_search_on_test: bool = False

    def __post_init__(self) -> None:
        check_range("epochs_fine_tune", self.epochs_fine_tune, 1)
        ProtocolConfig(beta_grid=self.beta_grid)  # the GZSL protocol's beta-grid checks


@dataclass(frozen=True)
class GFSLExperimentConfig(ExperimentConfig):
    """A whole GFSL experiment (``recipe: gfsl``): the GZSL experiment with k-shot data and the GFSL protocol."""

    data: GFSLDataConfig = field(default_factory=GFSLDataConfig)
    protocol: GFSLProtocolConfig = field(default_factory=GFSLProtocolConfig)


def parse_gfsl_experiment(config: dict[str, Any]) -> tuple[GFSLExperimentConfig, Any]:
    """Validate a raw config: the experiment schema, then the method's model schema."""
    return parse_experiment(config, GFSLExperimentConfig, "gfsl")


def load_gfsl_benchmark(data: GFSLDataConfig, data_root: Path | None, run_dir: Path) -> GFSLBenchmark:
    """The k-shot benchmark of ``data`` (released, generated draws, or synthetic in the run dir)."""
    from lowshot.data.av import fsl
    from lowshot.recipes.gzsl import load_benchmark

    if data.synthetic == "kshot":
        root = run_dir / "data"
        fsl.write_synthetic_kshot(root, data.dataset, data.shots, data.synthetic_seed, data.synthetic_size)
        return fsl.load_kshot_benchmark(root, data.dataset, data.shots, data.text, True, data.legacy_text_order,
                                        check_table=False)  # fmt: skip
    if data.draws == "released":
        if data.synthetic is not None:
            raise ConfigError("data.synthetic with draws=released must be 'kshot'")
        root = resolve_data_root(data_root, data.root, what="the GFSL benchmark")
        return fsl.load_kshot_benchmark(root, data.dataset, data.shots, data.text, data.trust_pickle,
                                        data.legacy_text_order)  # fmt: skip
    gzsl = load_benchmark(replace(data, split="cls"), data_root, run_dir)
    return fsl.gfsl_from_gzsl(gzsl, data.shots, data.draw_seed)


def fit_gfsl(
    method: str,
    model_cfg: Any,
    bench: GFSLBenchmark,
    train: TrainConfig,
    protocol: GFSLProtocolConfig,
    seed: int,
    on_epoch: Any = None,
) -> GFSLProtocol:
    """Run the GFSL protocol once: the named method, the GZSL trainer, per-phase seeds from ``seed``."""
    method_cls = method_of_family(method, GZSLMethod, "gfsl")
    spec = GFSLInputSpec(**asdict(input_spec(bench.phase(1, "base"))), num_classes=bench.num_classes)
    device = resolve_device(train.device, "train.device")

    def make_method(stream: int) -> GZSLMethod:
        seed_everything(seed + 1000 * stream)
        return method_cls(model_cfg, spec)

    def make_trainer(m: GZSLMethod, view: GZSLBenchmark, stream: int) -> MethodTrainer:
        return MethodTrainer(m, view, 1, train, seed * 100 + stream, device)

    p = protocol
    return GFSLProtocol(
        train.epochs, p.epochs_fine_tune, beta_grid(*p.beta_grid), p.beta_source,
        p.legacy_beta_zero_search_on_test, on_epoch=on_epoch,
    ).fit(bench, make_method, make_trainer)  # fmt: skip


def run_gfsl_seed(
    exp: GFSLExperimentConfig, model_cfg: Any, bench: GFSLBenchmark, seed: int, out: Path
) -> dict[str, Any]:
    """Run the GFSL protocol for one seed (a finished seed in ``out`` is returned as is)."""
    rd = RunDir(out)
    done = rd.result()
    if done is not None:
        return done
    protocol = fit_gfsl(exp.method, model_cfg, bench, exp.train, exp.protocol, seed, rd.append_history)
    atomic_write_json(rd.path / "history.json", protocol.history_)
    result = {"seed": seed, **protocol.summary()}
    rd.write_result(result)
    return result


def run_gfsl(config: dict[str, Any], run_dir: Path, data_root: Path | None = None) -> RunResult:
    """Run a GFSL experiment config end to end; returns (and writes) the aggregated result."""
    exp, model_cfg = parse_gfsl_experiment(config)
    if exp.train.seed_batched:
        raise ConfigError("train.seed_batched: the gfsl recipe trains its seeds one by one; set it to false")
    resolve_device(exp.train.device, "train.device")
    if exp.train.num_threads is not None:
        import torch

        torch.set_num_threads(exp.train.num_threads)
    run_dir = Path(run_dir)
    check_run_dir(run_dir)
    bench = load_gfsl_benchmark(exp.data, data_root, run_dir)
    rd = RunDir(run_dir)
    rd.write_config(exp)  # refuses another config once a run made progress
    results = [run_gfsl_seed(exp, model_cfg, bench, s, rd.path / f"seed_{s}") for s in exp.train.seeds]
    result = make_result(
        setting=exp.name, family="av_gfsl", method=exp.method, unit="x100",
        per_seed={r["seed"]: {k: r[k] for k in METRICS} for r in results}, metric_order=METRICS,
        selection="stage 1: base phase by val base accuracy, full phase by val HM; beta of the "
        f"{exp.protocol.beta_source.replace('_', ' ')}; B, N, FSL means over 3 draws, HM of the means",
        config=to_dict(exp), provenance=to_dict(exp.provenance),
        extra={
            "benchmark": bench.name,
            "per_seed": {str(r["seed"]): {k: r[k] for k in ("beta", "best_base_epoch", "best_full_epoch",
                                                              "base_lr_drop_epochs", "full_lr_drop_epochs", "per_draw")}
                         for r in results},
        },
    )  # fmt: skip
    write_result(rd.path, result)
    return result


RECIPES.register("gfsl")(run_gfsl)
