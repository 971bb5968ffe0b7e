"""AVCA: the published code (ExplainableML/AVCA-GZSL) beside ``lowshot`` ``avca.<ds>_<split>``.

Published side, per seed, exactly the three commands of ``run_scripts/<DS>-GZSL/avca.sh``
(their arguments are read from the checkout, then ``--epochs`` / ``--n_batches`` / ``--bs`` are
replaced by the harness settings (and ``--lr`` when set) and ``--seed`` / ``--device cpu`` / ``--dump_path`` added):

1. stage 1 (``main.py``, validation);
2. stage 2 (``main.py --retrain_all --save_checkpoints``) for ``selected epoch + 1`` epochs:
   the published run trains all epochs but evaluates the checkpoint of the selected epoch,
   which later epochs cannot change;
3. ``get_evaluation.py`` (beta from stage-1 validation, test on stage 2).

lowshot side: the paper setting with the same settings; ``legacy`` adds every option that
mirrors a published behaviour (see ``LEGACY``).
"""

from __future__ import annotations

import re
import shlex
import subprocess
import time
from pathlib import Path

from benchmarks.parity.harness import SeedResult, Settings, variant_overrides

SHIM = Path(__file__).with_name("upstream_shim.py")

#: lowshot options that mirror the published AVCA code (key variant "aligned": names agree)
LEGACY = (
    "protocol.stage2_scheduler=legacy_val_on_train",
    "model.legacy_negatives=true",
    "model.legacy_bn_passes=true",
    "model.legacy_fixed_position=true",
)
#: single-switch ablations on top of the lowshot default (name -> overrides)
ABLATIONS = {
    "default": (),
    "legacy": LEGACY,
    "+stage2_scheduler": LEGACY[:1],
    "+negatives": LEGACY[1:2],
    "+bn_passes": LEGACY[2:3],
    "+fixed_pos": LEGACY[3:4],
}


def lowshot_setting(settings: Settings) -> str:
    return f"avca.{settings.dataset.lower()}_{settings.split}"


def lowshot_overrides(variant: str, settings: Settings) -> tuple[str, ...]:
    """Overrides of a variant (see :func:`variant_overrides`)."""
    return variant_overrides(ABLATIONS, variant, settings)


def published_commands(repo: Path, settings: Settings) -> dict[str, list[str]]:
    """Arguments of the stage-1 / stage-2 / evaluation commands of the published run script."""
    script = repo / "run_scripts" / f"{settings.dataset}-GZSL" / "avca.sh"
    feature = f"{settings.split}_features"
    found: dict[str, list[str]] = {}
    for line in script.read_text().splitlines():
        args = shlex.split(line, comments=True)
        if len(args) < 2 or args[0] != "python":
            continue
        if args[1] == "main.py" and _value(args, "--feature_extraction_method") == feature:
            found["stage2" if "--retrain_all" in args else "stage1"] = args[2:]
        elif args[1] == "get_evaluation.py" and f"_{settings.split}" in _value(args, "--load_path_stage_A"):
            found["eval"] = args[2:]
    if set(found) != {"stage1", "stage2", "eval"}:
        raise ValueError(f"{script}: no stage-1/stage-2/evaluation commands for {feature}")
    return found


def _value(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1] if flag in args else ""


def _set(args: list[str], flag: str, value: object) -> list[str]:
    out = list(args)
    if flag in out:
        out[out.index(flag) + 1] = str(value)
    else:
        out += [flag, str(value)]
    return out


def _shim(python: Path, repo: Path, cwd: Path, script: str, args: list[str], log: Path,
          options: tuple[str, ...] = ("--skip-val-loss",)) -> float:
    cmd = [str(python), str(SHIM), *options, str(repo), script, *args]
    start = time.perf_counter()
    with log.open("a") as fh:
        fh.write("$ " + shlex.join(cmd) + "\n")
        fh.flush()
        proc = subprocess.run(cmd, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise RuntimeError(f"published {script} failed (exit {proc.returncode}); see {log}")
    return time.perf_counter() - start


def run_published_seed(
    repo: Path, python: Path, data_root: Path, work: Path, settings: Settings, seed: int
) -> SeedResult:
    """Run the published stage 1, stage 2 and evaluation for one seed; parse the results."""
    import torch

    cmds = published_commands(repo, settings)
    cwd = work / f"published_s{seed}"
    cwd.mkdir(parents=True, exist_ok=True)
    link = cwd / "avgzsl_benchmark_datasets"  # the published code resolves paths from its cwd
    if not link.exists():
        link.symlink_to(data_root.resolve(), target_is_directory=True)
    log = cwd / "harness.log"
    common = {**settings.published_flags(), "--seed": seed, "--device": "cpu", "--dump_path": cwd}
    names = {"stage1": f"avca_s{seed}_A", "stage2": f"avca_s{seed}_B"}

    def stage_args(stage: str, epochs: int) -> list[str]:
        args = cmds[stage]
        for flag, value in {**common, "--epochs": epochs, "--exp_name": names[stage]}.items():
            args = _set(args, flag, value)
        return args

    run_a, run_b = cwd / "runs" / names["stage1"], cwd / "runs" / names["stage2"]
    if not (run_a / "AVCA_score.pt").exists():
        _shim(python, repo, cwd, "main.py", stage_args("stage1", settings.epochs), log)
    selected = int(torch.load(run_a / "AVCA_score.pt", map_location="cpu", weights_only=False)["epoch"]) - 1
    if not list((run_b / "checkpoints").glob(f"*_ckpt_{selected}.pt")):
        _shim(python, repo, cwd, "main.py", stage_args("stage2", selected + 1), log)
    ev = _set(_set(cmds["eval"], "--load_path_stage_A", run_a), "--load_path_stage_B", run_b)
    ev = _set(ev, "--device", "cpu")
    eval_log = run_b / "eval.log"
    eval_log.unlink(missing_ok=True)
    _shim(python, repo, cwd, "get_evaluation.py", ev, log)
    per_epoch = epoch_seconds((run_a / "train.log").read_text())
    return parse_published_eval(eval_log.read_text(), seed, selected, per_epoch)


_VALID = re.compile(r" - (\d+):(\d\d):(\d\d) - VALID\tEpoch")


def epoch_seconds(train_log: str) -> float:
    """Mean seconds between consecutive validation lines of a published ``train.log`` (0: < 2 epochs)."""
    t = [int(h) * 3600 + int(m) * 60 + int(s) for h, m, s in _VALID.findall(train_log)]
    return (t[-1] - t[0]) / (len(t) - 1) if len(t) > 1 else 0.0


_PERF = re.compile(
    r"Seen performance=([\d.]+), Unseen performance=([\d.]+), GZSL performance=([\d.]+), ZSL performance=([\d.]+)"
)
_BETA = re.compile(r"Best beta combined: ([\d.e+-]+)")


def parse_published_eval(text: str, seed: int, best_epoch: int, s_per_epoch: float) -> SeedResult:
    """S/U/HM/ZSL and the transferred beta from a published ``eval.log``."""
    perf = _PERF.findall(text)
    beta = _BETA.findall(text)
    if not perf or not beta:
        raise ValueError("no 'Seen performance=...' / 'Best beta combined' line in the evaluation log")
    s, u, hm, zsl = (float(x) for x in perf[-1])
    return SeedResult(seed, s, u, hm, zsl, best_epoch, float(beta[-1]), s_per_epoch)


__all__ = ["ABLATIONS", "LEGACY", "lowshot_overrides", "lowshot_setting", "published_commands",
           "run_published_seed", "parse_published_eval"]

#: ``lowshot data synth`` preset of each split (the published averaged h5 layout)
PRESET = {"main": "main_averaged", "cls": "cls_averaged"}
