"""TCaF: the published code (ExplainableML/TCAF-GZSL) beside ``lowshot`` ``tcaf.<ds>_<split>``.

Published side, per seed, the training command of the checkout's README (``main.py --cfg
config/best/best_<split>/best_<ds>.yaml --run all``: stage 1, stage 2 for ``selected epoch +
1`` epochs and the evaluation in one process) with ``--epochs`` / ``--n_batches`` / ``--bs``
(and ``--lr`` / ``--transformer_depth`` when the harness sets them) from the harness settings and ``--seed``, ``--device cpu``, ``--root_dir``, ``--log_dir`` and
``--exp_name`` added. The data are the temporal per-class pickles (``cls_temporal`` preset).
The published code runs in the seed's folder, not in the checkout: it caches its processed
features under ``<cwd>/avgzsl_benchmark_non_averaged_datasets/<DS>/_features_processed`` and
reuses them whatever ``--root_dir`` says, so a shared cwd would train on stale data. The seed's
folder links ``config`` to the checkout's (``config/default.yaml`` is read from the cwd).

lowshot side: the paper setting with the same settings; ``legacy`` adds every option that
mirrors a published behaviour in ``max`` sequence mode (see ``LEGACY``; the ``fixed``-mode
switches ``legacy_audio_len`` / ``legacy_window_relative_time`` only matter on ActivityNet).
The ClipClap adapter's run helper drives the shim and parses the logs (the formats agree).
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.parity import clipclap
from benchmarks.parity.avca import _shim
from benchmarks.parity.harness import SeedResult, Settings, variant_overrides

#: ``lowshot data synth`` preset of each split (per-class temporal feature pickles)
PRESET = {"cls": "cls_temporal"}
#: published config file of each dataset (``config/best/best_cls``)
CONFIG = {"UCF": "best_ucf", "ActivityNet": "best_anet", "VGGSound": "best_vggsound"}
#: shims (``upstream_shim.py``): one validation batch (the HM), no TensorBoard hparams write;
#: numpy 1.20 ragged arrays and a pandas < 2 column label in a numpy-2 / pandas-3 environment;
#: batches stacked in one copy (same tensors; the published per-element conversion dominates a step)
SHIM_OPTIONS = ("--skip-val-loss", "--skip-hparams-log", "--ragged-object-arrays", "--pandas-keys-columns",
                "--stacked-list-tensors")
#: lowshot options that mirror the published TCaF code (key variant "aligned": names agree)
LEGACY = (
    "protocol.stage2_scheduler=legacy_val_on_train",
    "model.legacy_eval_integer_timesteps=true",
    "model.legacy_train_integer_time_pass=true",
    "model.legacy_bn_over_padding=true",
    "model.input_norm=legacy_tcaf",
)
#: single-switch ablations on top of the lowshot default (name -> overrides)
ABLATIONS = {
    "default": (),
    "legacy": LEGACY,
    "+stage2_scheduler": LEGACY[:1],
    "+eval_integer_time": LEGACY[1:2],
    "+train_integer_pass": LEGACY[2:3],
    "+bn_over_padding": LEGACY[3:4],
    "+input_norm": LEGACY[4:5],
}


def lowshot_setting(settings: Settings) -> str:
    if settings.split != "cls":
        raise SystemExit("tcaf: only --split cls is wired (the temporal per-class pickles of the cls features)")
    return f"tcaf.{settings.dataset.lower()}_{settings.split}"


def lowshot_overrides(variant: str, settings: Settings) -> tuple[str, ...]:
    """Overrides of a variant (see :func:`variant_overrides`)."""
    return variant_overrides(ABLATIONS, variant, settings)


def published_args(settings: Settings) -> tuple[str, ...]:
    """The README training command's arguments (before the harness settings are set)."""
    return ("--cfg", f"config/best/best_{settings.split}/{CONFIG[settings.dataset]}.yaml",
            "--dataset_name", settings.dataset, "--run", "all")


def run_published_seed(
    repo: Path, python: Path, data_root: Path, work: Path, settings: Settings, seed: int
) -> SeedResult:
    """Run the published stage 1, stage 2 and evaluation (``--run all``) for one seed; parse the logs."""
    cwd = work / f"published_s{seed}"  # the folder run_published_run_all runs in
    cwd.mkdir(parents=True, exist_ok=True)
    if not (cwd / "config").exists():
        (cwd / "config").symlink_to((repo / "config").resolve(), target_is_directory=True)
    _resume_evaluation(repo, python, data_root, cwd, settings)
    return clipclap.run_published_run_all(
        repo, python, data_root, work, settings, seed, published_args(settings), "tcaf", SHIM_OPTIONS,
        in_repo=False,
    )


def _resume_evaluation(repo: Path, python: Path, data_root: Path, cwd: Path, settings: Settings) -> None:
    """Run the README evaluation command on a finished stage 1 + stage 2 whose evaluation failed."""
    runs = sorted(p for p in (cwd / "runs").glob("*") if p.is_dir()) if (cwd / "runs").is_dir() else []
    if len(runs) != 2 or list((cwd / "runs").glob("*/eval.log")) or not list(runs[1].glob("checkpoints/*")):
        return
    args = [*published_args(settings)[:4], "--load_path_stage_A", str(runs[0]), "--load_path_stage_B",
            str(runs[1]), "--root_dir", str((data_root / settings.dataset).resolve()), "--device", "cpu"]
    _shim(python, repo, cwd, "get_evaluation.py", args, cwd / "harness.log", SHIM_OPTIONS)


__all__ = ["ABLATIONS", "LEGACY", "PRESET", "lowshot_overrides", "lowshot_setting", "run_published_seed"]
