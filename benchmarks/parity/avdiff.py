"""AV-Diff: the published code (ExplainableML/AVDIFF-GFSL) beside ``lowshot`` ``avdiff.<ds>_<k>shot``.

Data: the released k-shot layout (``class-split/<k>-shot``, ``features/<k>-shot``: VGGish +
C3D temporal per-class pickles, one stage-1 and three stage-2 draws), written from the GZSL
``cls_temporal`` generator with the real class split (:func:`write_data`).

Published side, per seed, the README training command (``main.py --cfg
config/best/<k>-shot/best_<ds>.yaml --dataset_name <DS> --run all``: stage 1 base and full
phases, stage 2 base for ``selected base epoch + 1`` epochs, then per draw the full phase for
``selected full epoch + 1`` epochs and ``get_evaluation``; B / N / FSL averaged over the three
draws, HM of the averages) with ``--epochs`` / ``--epochs_fine_tune`` / ``--n_batches`` /
``--bs`` / ``--lr`` from the harness and ``--seed``, ``--device cpu``, ``--root_dir``,
``--log_dir``, ``--exp_name`` added. It runs in the seed's folder, as TCaF's: the published
dataset caches processed features under
``<cwd>/avgzsl_benchmark_non_averaged_datasets/w2v_embedding/<DS>/_features_processed``
whatever ``--root_dir`` says. ``--run all`` is one process: a seed whose log has no final
result line is rerun from the start.

lowshot side: the paper setting with the same settings; ``legacy`` adds every option that
mirrors a published behaviour on UCF (see ``LEGACY``; with ``aligned`` keys the class-name
order of §6.1 is already right, ``released`` keys add ``data.legacy_text_order``).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from benchmarks.parity.avca import _set, _shim, epoch_seconds
from benchmarks.parity.data import write_parity_kshot_data
from benchmarks.parity.harness import SeedResult, Settings, variant_overrides

#: the table's metric names (B / N / FSL are stored in SeedResult's S / U / ZSL)
LABELS = ("B", "N", "HM", "FSL")
#: the released k-shot features are the per-class temporal pickles of the ``cls`` features
PRESET = {"cls": "cls_temporal"}
#: published config file of each dataset (``config/best/<k>-shot``)
CONFIG = {"UCF": "best_ucf", "ActivityNet": "best_anet", "VGGSound": "best_vggsound"}
#: shims (``upstream_shim.py``): one validation batch (the metrics are computed on it), numpy 1.20
#: ragged arrays, the pandas < 2 column label, batches stacked in one copy, no ``./.git/HEAD``
SHIM_OPTIONS = ("--skip-val-loss", "--ragged-object-arrays", "--pandas-keys-columns", "--stacked-list-tensors",
                "--no-git-branch")
#: lowshot options that mirror the published AV-Diff code on UCF (``max`` sequences; key variant "aligned")
LEGACY = (
    "protocol.beta_source=last_epoch",
    "protocol.legacy_beta_zero_search_on_test=true",
    "model.input_norm=legacy_tcaf",
    "model.legacy_bn_over_padding=true",
    "model.legacy_final_step_noise=true",
)
#: single-switch ablations on top of the lowshot default (name -> overrides)
ABLATIONS = {
    "default": (),
    "legacy": LEGACY,
    "+beta": LEGACY[:2],
    "+input_norm": LEGACY[2:3],
    "+bn_over_padding": LEGACY[3:4],
}
DEFAULT_SHOTS = 5


def shots(settings: Settings) -> int:
    return settings.shots or DEFAULT_SHOTS


def lowshot_setting(settings: Settings) -> str:
    if settings.split != "cls":
        raise SystemExit("avdiff: use --split cls (the k-shot features are the temporal cls features)")
    return f"avdiff.{settings.dataset.lower()}_{shots(settings)}shot"


def lowshot_overrides(variant: str, settings: Settings) -> tuple[str, ...]:
    """Overrides of a variant (see :func:`variant_overrides`)."""
    return variant_overrides(ABLATIONS, variant, settings)


def write_data(data_root: Path, shared: Path, settings: Settings) -> Path:
    """The k-shot tree both sides read (draws from ``settings.data_seed``)."""
    lowshot_setting(settings)  # checks the split
    return write_parity_kshot_data(data_root, shared, settings.dataset, shots(settings), settings.size,
                                   settings.data_seed, settings.keys)  # fmt: skip


def published_args(settings: Settings) -> tuple[str, ...]:
    """The README training command's arguments (before the harness settings are set)."""
    k = shots(settings)
    return ("--cfg", f"config/best/{k}-shot/{CONFIG[settings.dataset]}.yaml", "--dataset_name", settings.dataset,
            "--run", "all")  # fmt: skip


def run_published_seed(
    repo: Path, python: Path, data_root: Path, work: Path, settings: Settings, seed: int
) -> SeedResult:
    """Run the published ``main.py --run all`` for one seed in its own folder; parse its logs."""
    cwd = work / f"published_s{seed}"
    cwd.mkdir(parents=True, exist_ok=True)
    if not (cwd / "config").exists():
        (cwd / "config").symlink_to((repo / "config").resolve(), target_is_directory=True)
    runs = cwd / "runs"
    if _final_eval_log(runs) is None:
        shutil.rmtree(runs, ignore_errors=True)  # an interrupted --run all cannot resume
        args = list(published_args(settings))
        values = {"--root_dir": (data_root / settings.dataset).resolve(), "--log_dir": runs,
                  **settings.published_flags(), "--seed": seed, "--device": "cpu", "--exp_name": f"avdiff_s{seed}"}
        for flag, value in values.items():
            args = _set(args, flag, value)
        _shim(python, repo, cwd, "main.py", args, cwd / "harness.log", SHIM_OPTIONS)
    eval_log = _final_eval_log(runs)
    if eval_log is None:
        raise RuntimeError(f"published AV-Diff run in {cwd} ended without its final result line")
    run_b = eval_log.parent
    run_a = next(p for p in sorted(runs.iterdir()) if p.is_dir() and p != run_b)
    return parse_published(eval_log.read_text(), (run_b / "train.log").read_text(), seed,
                           epoch_seconds((run_a / "train.log").read_text()))


_FINAL = re.compile(r"Base performance=([\d.]+), Novel performance=([\d.]+), GFSL performance=([\d.]+), "
                    r"FSL performance=([\d.]+)")
_DRAW = re.compile(r"Seen performance=([\d.]+), Novel performance=([\d.]+), GFSL performance=([\d.]+), "
                   r"FSL performance=([\d.]+)")
_BETA = re.compile(r"Best beta combined: ([\d.e+-]+|None)")
_TRAIN = re.compile(r"TRAIN\tEpoch: \d+/(\d+)\t")


def _final_eval_log(runs: Path) -> Path | None:
    for log in runs.glob("*/eval.log") if runs.is_dir() else ():
        if _FINAL.search(log.read_text()):
            return log
    return None


def parse_published(eval_log: str, train_log_b: str, seed: int, s_per_epoch: float) -> SeedResult:
    """B / N / HM / FSL (means over the draws), transferred beta and selected epochs from the logs.

    ``train_log_b`` is stage 2's ``train.log``: its base phase trains ``selected base epoch + 1``
    epochs and each full phase ``selected full epoch + 1``.
    """
    final, beta, epochs = _FINAL.findall(eval_log), _BETA.findall(eval_log), _TRAIN.findall(train_log_b)
    if not final or not beta or not epochs:
        raise ValueError("no 'Base performance=...' / 'Best beta combined' / stage-2 'TRAIN' line in the logs")
    b, n, hm, fsl = (float(x) for x in final[-1])
    draws = [[float(x) for x in d] for d in _DRAW.findall(eval_log)]
    return SeedResult(seed, b, n, hm, fsl, int(epochs[0]) - 1, float(beta[0]) if beta[0] != "None" else 0.0,
                      s_per_epoch, {"best_full_epoch": int(epochs[-1]) - 1, "per_draw": draws,
                                    "beta_searched_on_test": beta[0] in ("0.0", "None")})  # fmt: skip


__all__ = ["ABLATIONS", "LABELS", "LEGACY", "PRESET", "lowshot_overrides", "lowshot_setting", "parse_published",
           "run_published_seed", "write_data"]
