"""ClipClap-GZSL: the published code (dkurzend/ClipClap-GZSL) beside ``lowshot`` ``clipclap.<ds>``.

Published side, per seed, the UCF command of ``commands.sh`` (``main.py --cfg
config/clipclap.yaml --use_wavcaps_embeddings True --modality both --word_embeddings both
--run all``: stage 1, stage 2 for ``selected epoch + 1`` epochs and the evaluation in one
process) with ``--epochs`` / ``--n_batches`` / ``--bs`` / ``--lr`` from the harness settings and
the published run, ``--seed``, ``--device cpu``, ``--root_dir`` and ``--log_dir`` added. Only the
``cls`` split exists (the CLIP/CLAP features are extracted on it).

lowshot side: the paper setting with the same settings; ``legacy`` adds every option that
mirrors a published behaviour (see ``LEGACY``). The AVCA adapter's helpers run the shim and
parse the published logs (the logs have the same format).
"""

from __future__ import annotations

from pathlib import Path

import torch

from benchmarks.parity.avca import _set, _shim, epoch_seconds, parse_published_eval
from benchmarks.parity.harness import SeedResult, Settings, variant_overrides

#: ``lowshot data synth`` preset of each split (per-video CLIP/CLAP vector pickles)
PRESET = {"cls": "clipclap"}
#: the published learning rate of the UCF command (``commands.sh``)
PUBLISHED_ARGS = ("--cfg", "config/clipclap.yaml", "--lr", "0.00007", "--use_wavcaps_embeddings", "True",
                  "--modality", "both", "--word_embeddings", "both", "--run", "all")
#: device shims (``upstream_shim.py``): one validation batch (the HM), no TensorBoard hparams write
SHIM_OPTIONS = ("--skip-val-loss", "--skip-hparams-log")
#: lowshot options that mirror the published ClipClap code (key variant "aligned": names agree)
LEGACY = (
    "protocol.stage2_scheduler=legacy_val_on_train",
    "model.legacy_train_extra_pass=true",
)
#: single-switch ablations on top of the lowshot default (name -> overrides)
ABLATIONS = {
    "default": (),
    "legacy": LEGACY,
    "+stage2_scheduler": LEGACY[:1],
    "+extra_pass": LEGACY[1:2],
}


def lowshot_setting(settings: Settings) -> str:
    if settings.split != "cls":
        raise SystemExit("clipclap: only --split cls exists (the published CLIP/CLAP features)")
    return f"clipclap.{settings.dataset.lower()}"


def lowshot_overrides(variant: str, settings: Settings) -> tuple[str, ...]:
    """Overrides of a variant (see :func:`variant_overrides`)."""
    return variant_overrides(ABLATIONS, variant, settings)


def run_published_seed(
    repo: Path, python: Path, data_root: Path, work: Path, settings: Settings, seed: int
) -> SeedResult:
    """Run the published stage 1, stage 2 and evaluation (``--run all``) for one seed; parse the logs."""
    return run_published_run_all(repo, python, data_root, work, settings, seed, PUBLISHED_ARGS, "clipclap",
                                 SHIM_OPTIONS)


def run_published_run_all(
    repo: Path, python: Path, data_root: Path, work: Path, settings: Settings, seed: int,
    published_args: tuple[str, ...], name: str, shim_options: tuple[str, ...], in_repo: bool = True,
) -> SeedResult:
    """One seed of a ``main.py ... --run all`` entry point (ClipClap, TCaF); parse its logs.

    The harness settings replace ``--epochs`` / ``--n_batches`` / ``--bs`` / ``--lr``; ``--seed``,
    ``--device cpu``, ``--root_dir``, ``--log_dir`` and ``--exp_name`` are added. The
    published code runs in the checkout (``in_repo``) or in the seed's folder (then
    ``published_args`` must name files by absolute path).
    """
    cwd = work / f"published_s{seed}"
    cwd.mkdir(parents=True, exist_ok=True)
    runs = cwd / "runs"
    args = list(published_args)
    values = {"--dataset_name": settings.dataset, "--root_dir": (data_root / settings.dataset).resolve(),
              "--log_dir": runs, **settings.published_flags(), "--seed": seed, "--device": "cpu",
              "--exp_name": f"{name}_s{seed}"}
    for flag, value in values.items():
        args = _set(args, flag, value)
    if not list(runs.glob("*/eval.log")):
        _shim(python, repo, repo if in_repo else cwd, "main.py", args, cwd / "harness.log", shim_options)
    (run_b,) = [p.parent for p in runs.glob("*/eval.log")]
    run_a = next(p for p in sorted(runs.iterdir()) if p.is_dir() and p != run_b)
    score = next(run_a.glob("*_score.pt"))
    selected = int(torch.load(score, map_location="cpu", weights_only=False)["epoch"]) - 1
    per_epoch = epoch_seconds((run_a / "train.log").read_text())
    return parse_published_eval((run_b / "eval.log").read_text(), seed, selected, per_epoch)


__all__ = ["ABLATIONS", "LEGACY", "PRESET", "lowshot_overrides", "lowshot_setting", "run_published_seed"]
