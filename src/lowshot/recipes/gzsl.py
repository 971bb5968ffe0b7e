"""Recipe ``gzsl``: one experiment config -> data -> two-stage protocol per seed -> results.

Run directory layout::

    <run>/config.yaml, env.json          resolved config, git revision, environment
    <run>/result.json                    mean ± std over seeds + expected numbers (lowshot.utils.results)
    <run>/seed_<s>/result.json           test S/U/HM/ZSL, per-class acc., epoch, beta
    <run>/seed_<s>/history.json          per-epoch losses and validation metrics
    <run>/seed_<s>/checkpoints/          resumable state, stage-1 best and final models
    <run>/data/                          generated synthetic data (synthetic configs only)

A killed run is resumed by running the same command again: finished seeds are skipped,
unfinished stages restart from their last committed epoch.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from lowshot._registry import RECIPES
from lowshot.config.schema import from_dict, to_dict
from lowshot.data.av.featureset import GZSLBenchmark
from lowshot.errors import ConfigError
from lowshot.methods import av as _av_methods  # noqa: F401  (registers the methods)
from lowshot.methods.base import GZSLMethod, InputSpec, method_of_family
from lowshot.protocols.calibration import beta_grid
from lowshot.protocols.gzsl import TwoStageProtocol
from lowshot.recipes.gzsl_config import DataConfig, ExperimentConfig
from lowshot.recipes.gzsl_trainer import MethodTrainer
from lowshot.utils import distributed
from lowshot.utils.fingerprint import Fingerprint, array_hash, files_by_hash, files_by_size
from lowshot.utils.io import atomic_write_json
from lowshot.utils.paths import resolve_data_root
from lowshot.utils.results import RunResult, make_result, write_result
from lowshot.utils.rundir import RunDir, check_run_dir
from lowshot.utils.seed import resolve_device, seed_everything

log = logging.getLogger(__name__)
METRICS = ("S", "U", "HM", "ZSL")
#: how the reported numbers are selected (thesis §2.4.2; reference §3.4)
SELECTION = "validation HM (two-stage: epoch and beta on val, refit on train+val)"


def parse_experiment(config: dict[str, Any], schema: type = ExperimentConfig, recipe: str = "gzsl") -> tuple[Any, Any]:
    """Validate a raw config: the experiment schema (``schema``, of recipe ``recipe``), then the
    method's model schema."""
    name = str(config.get("name", "experiment"))
    exp = from_dict(schema, config, where=name)
    method_cls = method_of_family(exp.method, GZSLMethod, recipe)
    model_cfg = from_dict(method_cls.Config, exp.model, where=f"{name}.model")
    return replace(exp, model=to_dict(model_cfg)), model_cfg


def benchmark_root(data: DataConfig, data_root: Path | None, run_dir: Path) -> Path:
    """Where the data of ``data`` lives: ``<run_dir>/data`` for synthetic data, else the data root
    (``--data-root`` > ``data.root`` > ``$LOWSHOT_DATA_ROOT``, :mod:`lowshot.utils.paths`)."""
    if data.synthetic is not None:
        return run_dir / "data"
    return resolve_data_root(data_root, data.root, what="the GZSL benchmark")


def load_benchmark(data: DataConfig, data_root: Path | None, run_dir: Path) -> GZSLBenchmark:
    """The benchmark of ``data``: generated synthetic data, or the released files."""
    from lowshot.data.av.gzsl import load_gzsl_benchmark

    root = benchmark_root(data, data_root, run_dir)
    if data.synthetic is not None:
        from lowshot.data.av.synth import write_synthetic

        # a no-op for a tree of the same parameters, an error for another size or seed
        write_synthetic(root, preset=data.synthetic, dataset=data.dataset, seed=data.synthetic_seed, size=data.synthetic_size)
        trust = True  # files this run generated itself
    else:
        trust = data.trust_pickle
    return load_gzsl_benchmark(
        root,
        data.dataset,
        data.feature_dir,
        data.split,
        text=data.text,
        trust_pickle=trust,
        legacy_text_order=data.legacy_text_order,
    )


def data_fingerprint(data: DataConfig, root: Path, benchmark: GZSLBenchmark) -> Fingerprint:
    """Split files and class embeddings by hash, feature files by size, labels and embeddings read."""
    from lowshot.data.av.datasets import dataset_spec
    from lowshot.data.av.gzsl import dataset_dir

    ds_dir = dataset_dir(root, dataset_spec(data.dataset))
    feat = ds_dir / "features" / data.feature_dir
    return {
        "class_split": files_by_hash(root, ds_dir / "class-split"),
        "text": files_by_hash(root, feat / "text"),
        "features": files_by_size(root, feat, skip=lambda p: p.relative_to(feat).parts[0] == "text"),
        "arrays": {
            "class_embeddings": array_hash(benchmark.class_embeddings),
            **{f"labels/{stage}": array_hash(fs.labels) for stage, fs in benchmark.splits.items()},
        },
    }


def input_spec(benchmark: GZSLBenchmark) -> InputSpec:
    """What a method needs to size itself, read off the benchmark."""
    train = benchmark.splits["stage_1_train"]
    audio_dim, video_dim = train.dims
    return InputSpec(
        audio_dim=audio_dim,
        video_dim=video_dim,
        text_dim=int(benchmark.class_embeddings.shape[1]),
        audio_step=benchmark.audio_step,
        video_step=benchmark.video_step,
        audio_kind=benchmark.metadata.get("audio_kind", "generic"),
        video_kind=benchmark.metadata.get("video_kind", "generic"),
    )


def _make_trainer(
    exp: ExperimentConfig, model_cfg: Any, benchmark: GZSLBenchmark, seed: int, stage: int
) -> MethodTrainer:
    """A fresh trainer of ``seed`` for ``stage`` (torch's global RNG seeded first, then the method built)."""
    method_cls = method_of_family(exp.method, GZSLMethod, "gzsl")
    device = resolve_device(exp.train.device, "train.device")
    seed_everything(seed + 1000 * stage)
    return MethodTrainer(method_cls(model_cfg, input_spec(benchmark)), benchmark, stage, exp.train, seed, device)


def _seed_protocol(
    exp: ExperimentConfig, seed: int, rd: RunDir
) -> tuple[TwoStageProtocol, Callable[[TwoStageProtocol], dict[str, Any]]]:
    """The protocol of one seed (checkpoints, history, TensorBoard, progress bar under ``rd``) and the
    function that closes its logs and writes its result once it is fitted."""
    writer = _tensorboard(rd.path) if exp.train.tensorboard else None
    bar = _progress(exp, seed) if distributed.is_main() else None

    def on_epoch(record: dict[str, Any]) -> None:
        if not distributed.is_main():  # under torchrun only rank 0 writes
            return
        rd.append_history(record)
        if writer is not None:
            for k, v in record.items():
                if isinstance(v, (int, float)) and k not in ("stage", "epoch"):
                    writer.add_scalar(f"stage{record['stage']}/{k}", v, record["epoch"])
        if bar is not None:
            bar.set_postfix({k: f"{v:.2f}" for k, v in record.items() if k in ("loss", "val_HM")})
            bar.update(1)

    def finish(protocol: TwoStageProtocol) -> dict[str, Any]:
        if bar is not None:
            bar.close()
        if writer is not None:
            writer.close()
        result = {"seed": seed, **protocol.summary()}
        if distributed.is_main():
            atomic_write_json(rd.path / "history.json", protocol.history_)
            rd.write_result(result)
            protocol.discard_resume_state()
        return result

    protocol = TwoStageProtocol(
        exp.train.epochs,
        beta_grid(*exp.protocol.beta_grid),
        checkpoint_dir=rd.path / "checkpoints",
        stage2_scheduler=exp.protocol.stage2_scheduler,
        on_epoch=on_epoch,
    )
    return protocol, finish


def run_seed(
    exp: ExperimentConfig, model_cfg: Any, benchmark: GZSLBenchmark, seed: int, out: Path
) -> dict[str, Any]:
    """Run the two-stage protocol for one seed (resuming if ``out`` holds a partial run)."""
    rd = RunDir(out)
    done = rd.result()
    if done is not None:
        log.info("seed %d already finished in %s", seed, out)
        return done
    protocol, finish = _seed_protocol(exp, seed, rd)
    return finish(protocol.fit(benchmark, lambda stage: _make_trainer(exp, model_cfg, benchmark, seed, stage)))


def run_seeds_batched(
    exp: ExperimentConfig, model_cfg: Any, benchmark: GZSLBenchmark, outs: dict[int, Path]
) -> list[dict[str, Any]]:
    """:func:`run_seed` of every seed of ``outs`` (seed -> its directory), the unfinished ones trained
    together as one stacked model (``train.seed_batched``); results in the order of ``outs``."""
    from lowshot.protocols.gzsl import fit_seed_batched
    from lowshot.recipes.gzsl_seed_batched import SeedBatch

    results = {s: RunDir(out).result() for s, out in outs.items()}
    pending = [s for s, r in results.items() if r is None]
    if pending:
        runs = [_seed_protocol(exp, s, RunDir(outs[s])) for s in pending]
        device = resolve_device(exp.train.device, "train.device")
        fitted = fit_seed_batched(
            [p for p, _ in runs],
            benchmark,
            lambda stage: SeedBatch(lambda s: _make_trainer(exp, model_cfg, benchmark, s, stage), pending, device),
        )
        results.update({s: finish(p) for s, (_, finish), p in zip(pending, runs, fitted)})
    return [results[s] for s in outs]


def run_gzsl(config: dict[str, Any], run_dir: Path, data_root: Path | None = None) -> RunResult:
    """Run an experiment config end to end; returns (and writes) the aggregated result
    (:mod:`lowshot.utils.results`; ``extra``: benchmark, test class counts, selected epoch and beta
    per seed)."""
    exp, model_cfg = parse_experiment(config)  # value ranges are checked here
    if exp.train.seed_batched:
        from lowshot.recipes.gzsl_seed_batched import check_seed_batching

        check_seed_batching(method_of_family(exp.method, GZSLMethod, "gzsl"), exp.method)
    resolve_device(exp.train.device, "train.device")  # an unusable device fails before anything is written
    if exp.train.num_threads is not None:
        import torch

        torch.set_num_threads(exp.train.num_threads)
    run_dir = Path(run_dir)
    distributed.init_from_env()  # under torchrun: join the process group (DDP training)
    with distributed.main_first():  # rank 0 creates the run dir (and any generated data) first
        check_run_dir(run_dir)
        created = not run_dir.exists()
        try:
            root = benchmark_root(exp.data, data_root, run_dir)
            benchmark = load_benchmark(exp.data, data_root, run_dir)
            fingerprint = data_fingerprint(exp.data, root, benchmark)
        except BaseException:
            if created and distributed.is_main():  # a run that could not start leaves no run dir behind
                shutil.rmtree(run_dir, ignore_errors=True)
            raise
        rd = RunDir(run_dir)
        if distributed.is_main():
            rd.write_config(exp, fingerprint, root)  # refuses another config or other data once a run made progress
    outs = {s: rd.path / f"seed_{s}" for s in exp.train.seeds}
    if exp.train.seed_batched:
        results = run_seeds_batched(exp, model_cfg, benchmark, outs)
    else:
        results = [run_seed(exp, model_cfg, benchmark, s, out) for s, out in outs.items()]
    result = make_result(
        setting=exp.name,
        family="av_gzsl",
        method=exp.method,
        per_seed={r["seed"]: {k: r[k] for k in METRICS} for r in results},
        unit="x100",
        selection=SELECTION,
        config=to_dict(exp),
        provenance=to_dict(exp.provenance),
        metric_order=METRICS,
        extra={
            "benchmark": benchmark.name,
            "class_counts": {
                name: len(benchmark.split_classes[f"stage_2_{name}"]) for name in ("test_seen", "test_unseen")
            },
            "selected": {str(r["seed"]): {"best_epoch": r["best_epoch"], "beta": r["beta"]} for r in results},
        },
    )
    if distributed.is_main():
        write_result(rd.path, result)
    return result


def load_final_method(
    run_dir: Path, purpose: str = "t-SNE"
) -> tuple[ExperimentConfig, GZSLMethod, GZSLBenchmark]:
    """The experiment, final model (first seed) and benchmark of a finished run directory.

    Args:
        run_dir: a run directory written by :func:`run_gzsl`.
        purpose: what needs the model (for the message when it is missing).

    Raises:
        ConfigError: the run has no final model (it has not finished).
    """
    from lowshot.config.schema import load_yaml
    from lowshot.utils.io import load_state

    exp, model_cfg = parse_experiment(load_yaml(run_dir / "config.yaml"))
    weights = run_dir / f"seed_{exp.train.seeds[0]}" / "checkpoints" / "final_model.safetensors"
    if not weights.is_file():
        raise ConfigError(f"{purpose} needs {weights}, which a finished run writes; this run has not finished")
    bench = load_benchmark(exp.data, None, run_dir)
    method = method_of_family(exp.method, GZSLMethod, "gzsl")(model_cfg, input_spec(bench))
    method.load_state_dict(load_state(weights))
    return exp, method, bench


def _tensorboard(out: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as err:  # pragma: no cover - depends on the optional extra
        raise ConfigError("train.tensorboard=true needs the 'report' extra (pip install lowshot[report])") from err
    return SummaryWriter(str(out / "tensorboard"))


def _progress(exp: ExperimentConfig, seed: int) -> Any:
    if not exp.train.progress or os.environ.get("LOWSHOT_NO_PROGRESS"):
        return None
    from tqdm.auto import tqdm

    return tqdm(desc=f"{exp.name} seed {seed}", unit="epoch", leave=False)


RECIPES.register("gzsl")(run_gzsl)
