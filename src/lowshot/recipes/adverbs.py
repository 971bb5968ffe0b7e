"""The ``adverbs`` recipe: train/evaluate a video-adverb method through the published protocol.

``lowshot reproduce regada.vatex --data-root DIR`` loads ``configs/regada/vatex.yaml``,
validates it against :class:`~lowshot.recipes.adverbs_config.AdverbsConfig` and calls
:func:`run_adverbs`. The loop is explicit: per epoch a shuffled pass over the training rows
(ReGaDa: 2001 epochs of batch 512), evaluation every ``eval_interval`` epochs on test (and
on a validation split when the ``validation`` protocol is chosen), one history line per
epoch, a safetensors checkpoint (model, optimizer, RNG) every ``checkpoint_interval``
epochs. A killed run resumes from its last checkpoint with the same command; shuffling
and negatives are drawn from generators seeded by (seed, epoch), so a resumed run
continues exactly as an uninterrupted one.

Several seeds (``train.seeds``) run in ``<run_dir>/seed_<s>/`` and the result holds
their mean and standard deviation (thesis App. E.5).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lowshot._registry import RECIPES
from lowshot.benchmarks.adverbs import (
    AdverbData,
    evaluate_scores,
    load_adverb_data,
    select_metrics,
    with_validation,
)
from lowshot.config import from_dict, to_dict
from lowshot.data.adverbs_splits import overlap_report
from lowshot.data.adverbs_synth import SynthSpec, generate
from lowshot.data.adverbs_text import build_text_encoder
from lowshot.errors import ConfigError
from lowshot.methods.adverbs import (
    AdverbMethod,
    VocabText,
    build_method,
    make_batch,
    method_spec,
    predict_adverb_scores,
)
from lowshot.recipes.adverbs_config import AdverbsConfig
from lowshot.utils.io import (
    atomic_write_text,
    flatten_state,
    load_state,
    save_state,
    unflatten_state,
)
from lowshot.utils.rundir import RunDir
from lowshot.utils.seed import resolve_device, seed_everything

CHECKPOINT = "last.safetensors"


def _resolve(root: Path, path: str | None) -> Path | None:
    if path is None:
        return None
    p = Path(path)
    return p if p.is_absolute() else root / p


def _data_root(cfg: AdverbsConfig, run_dir: Path, data_root: Path | None) -> Path:
    """Root of the released (or synthetic) data; generates synthetic data on first use."""
    if cfg.data.synthetic is not None:
        spec = from_dict(SynthSpec, cfg.data.synthetic, where="data.synthetic")
        root = run_dir / "data"
        if not (root / "synth_manifest.json").exists():
            generate(root, spec)
        return root
    root = data_root or (Path(cfg.data.root) if cfg.data.root else None)
    if root is None and os.environ.get("LOWSHOT_DATA_ROOT"):
        root = Path(os.environ["LOWSHOT_DATA_ROOT"])
    if root is None:
        raise ConfigError("no data root: pass --data-root, set data.root or $LOWSHOT_DATA_ROOT")
    return root


def build_text(cfg: AdverbsConfig, root: Path) -> Any:
    """Instantiate the configured text encoder (paths relative to ``root``)."""
    t = cfg.text
    if t.encoder == "adverbs.s3d_text":
        kwargs: dict[str, Any] = {
            "weights": _resolve(root, t.weights),
            "word_dict": _resolve(root, t.word_dict),
            "trust_pickle": cfg.data.trust_pickle,
        }
    elif t.encoder == "adverbs.text_cache":
        if t.cache is None:
            raise ConfigError("text.encoder=adverbs.text_cache needs text.cache")
        kwargs = {"path": _resolve(root, t.cache)}
    elif t.encoder == "adverbs.hash":
        kwargs = {"dim": t.dim, "seed": t.seed}
    else:
        kwargs = {}
    return build_text_encoder(t.encoder, **kwargs)


def load_experiment(
    cfg: AdverbsConfig, run_dir: Path, data_root: Path | None
) -> tuple[AdverbData, VocabText | None]:
    """Read split, features and text embeddings named by ``cfg``."""
    root = _data_root(cfg, run_dir, data_root)
    spec = method_spec(cfg.method)
    d = cfg.data
    data = load_adverb_data(
        _resolve(root, d.splits_root) or root,
        d.dataset,
        d.unseen,
        (_resolve(root, d.features_root) or root) if spec.needs_features else None,
        d.trust_pickle,
        d.use_antonyms,
        d.video_dim,
        d.joint_dim,
        d.air_native,
    )
    text = None
    if spec.needs_text:
        enc = build_text(cfg, root)
        text = VocabText(enc.encode, data.vocab.adverbs, data.vocab.actions)
    return data, text


def evaluate(
    method: AdverbMethod, data: AdverbData, cfg: AdverbsConfig, device: torch.device
) -> dict[str, dict[str, float]]:
    """Test (and validation) metrics of the current model."""
    out = {}
    parts = [("test", data.test)] + ([("val", data.val)] if data.val is not None else [])
    for name, rows in parts:
        gt, no_act = predict_adverb_scores(
            method,
            rows,
            data.vocab.n_actions,
            cfg.train.eval_batch_size,
            cfg.protocol.no_action_gt,
            device,
        )
        out[name] = evaluate_scores(rows, gt, data.antonyms, no_act, only_present=(name == "val"))
    return out


def _save_checkpoint(
    path: Path, method: AdverbMethod, opt: torch.optim.Optimizer, epoch: int
) -> None:
    tensors: dict[str, torch.Tensor] = {f"model/{k}": v for k, v in method.state_dict().items()}
    flat: dict[str, torch.Tensor] = {}
    meta: dict[str, Any] = {}
    flatten_state("", opt.state_dict(), flat, meta)
    tensors |= {f"optim/{k}": v for k, v in flat.items()}
    tensors["rng/torch"] = torch.get_rng_state()
    save_state(path, tensors, {"epoch": str(epoch), "optim_meta": json.dumps(meta)})


def _load_checkpoint(path: Path, method: AdverbMethod, opt: torch.optim.Optimizer) -> int:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        header = fh.metadata()
    tensors = load_state(path)
    method.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model/")})
    optim = unflatten_state(
        {k[6:]: v for k, v in tensors.items() if k.startswith("optim/")},
        json.loads(header["optim_meta"]),
    )
    opt.load_state_dict(optim)
    torch.set_rng_state(tensors["rng/torch"])
    return int(header["epoch"])


def _truncate_history(run: RunDir, last_epoch: int) -> list[dict[str, Any]]:
    """Drop history lines written after the checkpoint (the run was killed after them)."""
    kept = [r for r in run.history() if r.get("epoch", -1) <= last_epoch]
    atomic_write_text(run.history_path, "".join(json.dumps(r) + "\n" for r in kept))
    return kept


def train_one_seed(
    cfg: AdverbsConfig,
    data: AdverbData,
    text: VocabText | None,
    seed: int,
    run: RunDir,
    stop_after_epoch: int | None = None,
) -> dict[str, Any] | None:
    """Train and evaluate one seed in ``run``; returns the selection (None if stopped early).

    Args:
        stop_after_epoch: stop after this epoch without a result (simulates a kill; tests).
    """
    device = resolve_device(cfg.train.device)
    seed_everything(seed)
    if cfg.protocol.selection == "validation":
        data = with_validation(data, cfg.protocol.val_fraction, seed)
    feature_dim = data.train.store.video_dim if data.train.store is not None else 0
    method = build_method(cfg.method, cfg.model, data, text, feature_dim).to(device)
    spec = method_spec(cfg.method)
    ckpt = run.path / "checkpoints" / CHECKPOINT
    history: list[dict[str, Any]]
    if not spec.trainable:
        history = [r for r in run.history() if "test" in r]
        if not history:
            history = [{"epoch": 0, "seed": seed, **evaluate(method, data, cfg, device)}]
            run.append_history(history[0])
    else:
        opt = torch.optim.Adam(
            method.param_groups(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay
        )
        start = 0
        history = []
        if ckpt.exists():
            start = _load_checkpoint(ckpt, method, opt) + 1
            history = _truncate_history(run, start - 1)
        ck_every = cfg.train.checkpoint_interval or cfg.train.eval_interval
        n = len(data.train)
        for epoch in range(start, cfg.train.epochs + 1):
            gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
            method.on_epoch_start(epoch, opt, cfg.train.lr)
            method.train()
            t0 = time.perf_counter()
            losses: list[dict[str, float]] = []
            for b in torch.randperm(n, generator=gen).split(cfg.train.batch_size):
                batch = make_batch(data.train, b.numpy(), device)
                out = method.training_loss(batch, gen)
                opt.zero_grad(set_to_none=True)
                out["loss"].backward()
                opt.step()
                losses.append({"loss": float(out["loss"].detach()), **out["loss_terms"]})
            record: dict[str, Any] = {
                "epoch": epoch,
                "seed": seed,
                "train": {k: float(np.mean([x[k] for x in losses if k in x])) for k in losses[0]},
                "time_s": time.perf_counter() - t0,
            }
            last = epoch == cfg.train.epochs
            if epoch % cfg.train.eval_interval == 0 or last:
                record |= evaluate(method, data, cfg, device)
            run.append_history(record)
            history.append(record)
            if epoch % ck_every == 0 or last:
                _save_checkpoint(ckpt, method, opt, epoch)
            if stop_after_epoch is not None and epoch >= stop_after_epoch and not last:
                return None
    selection = select_metrics(
        history,
        cfg.protocol.selection,
        cfg.reported_metrics(),
        cfg.protocol.select_metric,
        cfg.protocol.epoch,
    )
    extra = [m for m in history[-1].get("test", {}) if m not in selection["metrics"]]
    selection["last_epoch_all_metrics"] = {m: history[-1]["test"][m] for m in extra}
    run.write_result({"seed": seed, **selection})
    return selection


def data_report(data: AdverbData) -> dict[str, Any]:
    """Duplicate rows, train/test clip overlap (kept, reference §10.5) and merge conflicts."""
    out: dict[str, Any] = overlap_report(data.split)
    stores = {id(r.store): r.store for r in (data.train, data.test) if r.store is not None}
    out["feature_merge_conflicts"] = sum(len(s.merge_conflicts) for s in stores.values())
    return out


def aggregate_seeds(results: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Mean and standard deviation (numpy ``ddof=0``) of each reported metric over seeds."""
    names = sorted({m for r in results.values() for m in r["metrics"]})
    vals = {m: [r["metrics"][m] for r in results.values() if m in r["metrics"]] for m in names}
    return {
        "mean": {m: float(np.mean(v)) for m, v in vals.items()},
        "std": {m: float(np.std(v)) for m, v in vals.items()},
        "n_seeds": len(results),
    }


@RECIPES.register("adverbs")
def run_adverbs(
    config: dict[str, Any],
    run_dir: Path,
    data_root: Path | None = None,
    stop_after_epoch: int | None = None,
) -> dict[str, Any]:
    """Run a video-adverb experiment (``recipe: adverbs``) and write its run directory.

    Args:
        config: raw mapping (paper YAML after overrides); validated strictly.
        run_dir: output directory; an existing one with the same config is resumed.
        data_root: root of the released data (else ``data.root`` / ``$LOWSHOT_DATA_ROOT``).
        stop_after_epoch: stop every seed after this epoch (simulated kill, for tests).

    Returns:
        The result mapping (also written to ``<run_dir>/result.json``).
    """
    cfg = from_dict(AdverbsConfig, config, where=str(config.get("name", "adverbs")))
    # fail fast (before touching data) on unknown methods and bad model keys
    from_dict(method_spec(cfg.method).schema, cfg.model, where=f"{cfg.name}.model")
    if cfg.train.num_threads is not None:
        torch.set_num_threads(cfg.train.num_threads)
    # read (and validate) the data first, so a bad data root leaves no run directory behind
    data, text = load_experiment(cfg, Path(run_dir), data_root)
    run = RunDir(run_dir)
    run.write_config(cfg)
    results: dict[int, dict[str, Any]] = {}
    for seed in cfg.train.seeds:
        sub = run if len(cfg.train.seeds) == 1 else RunDir(run.path / f"seed_{seed}")
        res = train_one_seed(cfg, data, text, seed, sub, stop_after_epoch)
        if res is None:
            return {"status": "stopped", "epoch": stop_after_epoch}
        results[seed] = res
    out: dict[str, Any] = {
        "name": cfg.name,
        "method": cfg.method,
        "dataset": data.split.name,
        "protocol": results[cfg.train.seeds[0]]["protocol"],
        "selected_on": results[cfg.train.seeds[0]]["selected_on"],
        "per_seed": {str(s): r for s, r in results.items()},
        **aggregate_seeds(results),
        "expected_x100": dict(cfg.provenance.expected),
        "data_report": data_report(data),
        "config": to_dict(cfg),
    }
    run.write_result(out)
    return out
