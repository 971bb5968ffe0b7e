"""Selection noise of the two-stage GZSL protocol: per stage-1 epoch the validation HM / ZSL that
selects the stage-2 length, and per stage-2 epoch the test ZSL / HM that length would give.

Usage (figures in docs/benchmarks.md)::

    python benchmarks/gzsl_selection.py attention_fusion.ucf_cls --seeds 43 \\
        --set data.synthetic=cls_temporal data.synthetic_size=0.1 train.epochs=10 train.n_batches=50 \\
        train.batch_size=64 train.lr=1e-3 model.depth=1 model.encoder_hidden=128

Stage 1 and the selection are the protocol's own (:class:`TwoStageProtocol`); stage 2 then trains
all ``train.epochs`` epochs (the selected LR drops replayed) and the test split is scored after
every epoch with the selected beta. The row of the selected epoch is the protocol's result (marked
``*``); the other rows are diagnostics only (test data selects nothing).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from lowshot.config.paper import load_paper_config
from lowshot.protocols.calibration import beta_grid
from lowshot.protocols.gzsl import TwoStageProtocol, evaluate_gzsl
from lowshot.recipes.gzsl import _make_trainer, load_benchmark, parse_experiment


def curves(setting: str, overrides: list[str], seed: int, data_dir: Path) -> None:
    """Print the stage-1 validation and stage-2 test curves of one seed."""
    exp, model_cfg = parse_experiment(load_paper_config(setting, [*overrides, f"train.seeds=[{seed}]"]))
    bench = load_benchmark(exp.data, None, data_dir)
    protocol = TwoStageProtocol(exp.train.epochs, beta_grid(*exp.protocol.beta_grid),
                                stage2_scheduler=exp.protocol.stage2_scheduler)
    trainer = _make_trainer(exp, model_cfg, bench, seed, 1)
    _, s1 = protocol._start_stage1(trainer)
    for epoch in range(exp.train.epochs):
        protocol._end_stage1_epoch(bench, trainer, None, s1, epoch, trainer.train_epoch(epoch))
    trainer = _make_trainer(exp, model_cfg, bench, seed, 2)
    _, s2 = protocol._start_stage2(trainer)
    chance = 100 / len(bench.split_classes["stage_2_test_unseen"])
    print(f"## {setting} seed {seed}: selected epoch {s1['best_epoch']}, beta {s1['beta']:.2f}, "
          f"LR drops {s1['lr_drops']}, chance ZSL {chance:.1f}, "
          f"{len(bench.splits['stage_2_test_unseen'])} unseen test videos")
    print("| epoch | val HM | val ZSL | test S | test U | test HM | test ZSL (stage 2 of epoch+1 epochs) |\n"
          "|---|---|---|---|---|---|---|")
    for epoch, rec in enumerate(s1["history"]):
        protocol._end_stage2_epoch(bench, trainer, None, s2, s1, epoch, trainer.train_epoch(epoch))
        test = evaluate_gzsl(bench, 2, trainer.scores, beta=s1["beta"]).percent()
        mark = "*" if epoch == s1["best_epoch"] else ""
        print(f"| {epoch}{mark} | {rec['val_HM']:.1f} | {rec['val_ZSL']:.1f} | {test['S']:.1f} | {test['U']:.1f} | "
              f"{test['HM']:.1f} | {test['ZSL']:.1f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("setting")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    parser.add_argument("--set", nargs="*", default=[], help="key=value overrides of the setting")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            curves(args.setting, args.set, seed, Path(tmp))


if __name__ == "__main__":
    main()
