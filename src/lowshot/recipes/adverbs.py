"""The ``adverbs`` recipe: train/evaluate a video-adverb method and select its reported epoch.

``lowshot reproduce regada.vatex --data-root DIR`` loads ``configs/regada/vatex.yaml``,
validates it against :class:`~lowshot.recipes.adverbs_config.AdverbsConfig` and calls
:func:`run_adverbs`. The loop is explicit: per epoch a shuffled pass over the training rows
(ReGaDa: 2001 epochs of batch 512), one history line per epoch, a checkpoint (model,
optimizer, RNG) every ``checkpoint_interval`` epochs, committed through the same
:class:`~lowshot.utils.checkpoint.CheckpointChain` as the GZSL protocol
(``checkpoints/train.json`` names a SHA-256-verified safetensors file; the previous commit is
kept as a fallback). A killed run resumes from its newest verifiable commit with the same
command; shuffling and negatives are drawn from generators seeded by (seed, epoch), so a
resumed run continues exactly as an uninterrupted one.

Selection (``protocol.selection``, see :mod:`lowshot.protocols.adverbs`): by default
(``validation``) two fits, as the GZSL two-stage protocol and scikit-learn's
``GridSearchCV(refit=True)``: stage 1 (``<run_dir>/select/``: its own history and
``checkpoints/select.json`` chain) trains on the training clips minus a validation split
and evaluates validation every ``eval_interval`` epochs; its best epoch E is selected (test
is never looked at). Stage 2 (``<run_dir>``) trains a fresh model (same seed, same initial
weights, same schedule; chain ``checkpoints/refit.json``) on all training clips for epochs
0..E and evaluates test once, after epoch E. ``last`` / ``fixed_epoch`` train once, to the epoch fixed in advance, and
evaluate test once, there. Only the published ``best_per_metric`` (legacy, test-selected)
evaluates test every ``eval_interval`` epochs. Every result carries the rule as
``selection``. Both stages resume from their own chain.

Several seeds (``train.seeds``) run in ``<run_dir>/seed_<s>/`` and the result holds
their mean and standard deviation (thesis App. E.5).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lowshot._registry import RECIPES
from lowshot.config import from_dict, to_dict
from lowshot.data.adverbs.splits import overlap_report
from lowshot.data.adverbs.synth import SynthSpec, generate
from lowshot.errors import ConfigError
from lowshot.extract.text import build_text_encoder
from lowshot.methods.adverbs.base import (
    AdverbMethod,
    VocabText,
    build_method,
    make_batch,
    method_class,
    predict_adverb_scores,
)
from lowshot.protocols.adverbs import (
    TEST_SELECTED,
    TRAINING_FREE,
    AdverbData,
    best_validation_epoch,
    evaluate_scores,
    load_adverb_data,
    select_metrics,
    selection_label,
    with_validation,
)
from lowshot.recipes.adverbs_config import AdverbsConfig
from lowshot.utils.checkpoint import CheckpointChain
from lowshot.utils.io import (
    atomic_write_text,
    pack_state,
    unpack_state,
)
from lowshot.utils.paths import resolve_data_root
from lowshot.utils.results import RunResult, make_result, write_result
from lowshot.utils.rundir import RunDir
from lowshot.utils.seed import resolve_device, seed_everything

CHAIN = "train"  # checkpoints/train.json + train_epoch<NNN>.safetensors: the tested model's fit
REFIT_CHAIN = "refit"  # the same for validation's stage 2 (checkpoints/refit.json)
SELECT_DIR, SELECT_CHAIN = "select", "select"  # validation stage 1: select/checkpoints/select.json


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
    return resolve_data_root(data_root, cfg.data.root, what="the adverb benchmark")


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
    elif t.encoder == "adverbs.word_vectors":
        if t.vectors is None:
            raise ConfigError("text.encoder=adverbs.word_vectors needs text.vectors")
        kwargs = {"path": _resolve(root, t.vectors)}
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
    method_cls = method_class(cfg.method)
    d = cfg.data
    data = load_adverb_data(
        _resolve(root, d.splits_root) or root,
        d.dataset,
        d.unseen,
        (_resolve(root, d.features_root) or root) if method_cls.needs_features else None,
        d.trust_pickle,
        d.use_antonyms,
        d.video_dim,
        d.joint_dim,
        d.air_native,
        method_cls.needs_unlabelled,
    )
    text = None
    if method_cls.needs_text:
        enc = build_text(cfg, root)
        text = VocabText(enc.encode, data.vocab.adverbs, data.vocab.actions)
    return data, text


def evaluate(
    method: AdverbMethod,
    data: AdverbData,
    cfg: AdverbsConfig,
    device: torch.device,
    parts: tuple[str, ...] = ("test",),
) -> dict[str, dict[str, float]]:
    """Metrics of the current model on ``parts`` (``"test"`` and/or ``"val"``)."""
    out = {}
    for name in parts:
        rows = data.test if name == "test" else data.val
        if rows is None:
            continue
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


def _training_state(method: AdverbMethod, opt: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """Model, optimizer and torch RNG as flat tensors (a :class:`CheckpointChain` commit)."""
    return pack_state(
        {
            "model": method.state_dict(),
            "optim": opt.state_dict(),
            "torch_rng": torch.get_rng_state(),
        }
    )


def _restore_training(
    chain: CheckpointChain, method: AdverbMethod, opt: torch.optim.Optimizer
) -> int | None:
    """Load the newest verifiable commit; returns its epoch (None if none was made)."""
    restored = chain.restore()
    if restored is None:
        return None
    epoch, _, tensors = restored
    state = unpack_state(tensors)
    method.load_state_dict(state["model"])
    opt.load_state_dict(state["optim"])
    torch.set_rng_state(state["torch_rng"])
    return epoch


def _truncate_history(run: RunDir, last_epoch: int) -> list[dict[str, Any]]:
    """Drop history lines written after the checkpoint (the run was killed after them)."""
    kept = [r for r in run.history() if r.get("epoch", -1) <= last_epoch]
    atomic_write_text(run.history_path, "".join(json.dumps(r) + "\n" for r in kept))
    return kept


def selection_rule(cfg: AdverbsConfig) -> str:
    """The table label of the selection that produces ``cfg``'s reported numbers."""
    if not method_class(cfg.method).trainable:
        return TRAINING_FREE
    p = cfg.protocol
    return selection_label(
        p.selection, cfg.reported_metrics(), p.select_metric, p.epoch, p.val_fraction
    )


def _fresh_method(
    cfg: AdverbsConfig,
    data: AdverbData,
    text: VocabText | None,
    seed: int,
    device: torch.device,
) -> AdverbMethod:
    """The configured method, built after ``seed_everything(seed)`` (same weights per seed)."""
    seed_everything(seed)
    feature_dim = data.train.store.video_dim if data.train.store is not None else 0
    return build_method(cfg.method, cfg.model, data, text, feature_dim).to(device)


def _fit(
    cfg: AdverbsConfig,
    data: AdverbData,
    text: VocabText | None,
    seed: int,
    run: RunDir,
    chain_name: str,
    last_epoch: int,
    evaluate_at: Callable[[int], tuple[str, ...]],
    stop_after_epoch: int | None,
) -> list[dict[str, Any]] | None:
    """Train a fresh model on ``data.train`` for epochs 0..``last_epoch`` in ``run`` (resumable).

    Every fit of a seed starts from the same weights (:func:`_fresh_method`); shuffling and
    negatives come from generators seeded by (seed, epoch).

    Args:
        chain_name: file stem of this fit's :class:`CheckpointChain` in ``run/checkpoints``.
        evaluate_at: epoch -> the parts evaluated after it (``()``, ``("val",)``, ``("test",)``).
        stop_after_epoch: stop after this epoch without a result (simulates a kill; tests).

    Returns:
        The history (one record per epoch), or None when stopped early.
    """
    device = resolve_device(cfg.train.device)
    method = _fresh_method(cfg, data, text, seed, device)
    opt, _ = method.build_optimizer(cfg.train)  # adverb methods have no scheduler
    chain = CheckpointChain(run.path / "checkpoints", chain_name)
    restored = _restore_training(chain, method, opt)
    start = 0 if restored is None else restored + 1
    history = _truncate_history(run, start - 1)  # lines of epochs after the commit are redone
    ck_every = cfg.train.checkpoint_interval or cfg.train.eval_interval
    n = len(data.train)
    for epoch in range(start, last_epoch + 1):
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
        record |= evaluate(method, data, cfg, device, evaluate_at(epoch))
        run.append_history(record)
        history.append(record)
        last = epoch == last_epoch
        if epoch % ck_every == 0 or last:
            chain.commit(epoch, _training_state(method, opt), {})
        if stop_after_epoch is not None and epoch >= stop_after_epoch and not last:
            return None
    return history


def _final_epoch(cfg: AdverbsConfig) -> int:
    """Last epoch of the fit whose model is tested: ``protocol.epoch`` for ``fixed_epoch``
    (training stops there), ``train.epochs`` otherwise."""
    p, last = cfg.protocol, cfg.train.epochs
    if p.selection != "fixed_epoch":
        return last
    if p.epoch is None or not 0 <= p.epoch <= last:
        raise ConfigError(f"protocol.epoch must be in [0, {last}] for fixed_epoch, got {p.epoch}")
    return p.epoch


def _select_epoch(
    cfg: AdverbsConfig,
    data: AdverbData,
    text: VocabText | None,
    seed: int,
    run: RunDir,
    stop_after_epoch: int | None,
) -> tuple[int, dict[str, float]] | None:
    """Stage 1 of ``validation``: fit on the training clips minus a validation split (in
    ``run/select``), evaluating it every ``eval_interval`` epochs and at the last; returns
    the epoch of the best validation score and its validation metrics (None if stopped)."""
    p, last, every = cfg.protocol, cfg.train.epochs, cfg.train.eval_interval
    history = _fit(
        cfg,
        with_validation(data, p.val_fraction, seed),
        text,
        seed,
        RunDir(run.path / SELECT_DIR),
        SELECT_CHAIN,
        last,
        lambda e: ("val",) if e % every == 0 or e == last else (),
        stop_after_epoch,
    )
    if history is None:
        return None
    epoch = best_validation_epoch(history, cfg.reported_metrics(), p.select_metric)
    return epoch, next(r["val"] for r in history if r["epoch"] == epoch and "val" in r)


def train_one_seed(
    cfg: AdverbsConfig,
    data: AdverbData,
    text: VocabText | None,
    seed: int,
    run: RunDir,
    stop_after_epoch: int | None = None,
) -> dict[str, Any] | None:
    """Train and evaluate one seed in ``run``; returns the selection (None if stopped early).

    ``validation`` runs two fits: stage 1 (:func:`_select_epoch`) picks the epoch E on a
    validation split, stage 2 refits a fresh model on all training clips for epochs 0..E
    and evaluates test once, after epoch E. ``last`` / ``fixed_epoch`` fit once and test
    once, at the end; ``best_per_metric`` (legacy) tests at every evaluation.

    Args:
        stop_after_epoch: stop after this epoch of the first fit that reaches it, without a
            result (simulates a kill; tests).
    """
    p = cfg.protocol
    metrics = cfg.reported_metrics()
    extra: dict[str, Any] = {}
    if not method_class(cfg.method).trainable:
        history = [r for r in run.history() if "test" in r]
        if not history:
            device = resolve_device(cfg.train.device)
            method = _fresh_method(cfg, data, text, seed, device)
            history = [{"epoch": 0, "seed": seed, **evaluate(method, data, cfg, device)}]
            run.append_history(history[0])
        selection = select_metrics(history, "last", metrics)
    else:
        last = _final_epoch(cfg)
        if p.selection == "validation":
            selected = _select_epoch(cfg, data, text, seed, run, stop_after_epoch)
            if selected is None:
                return None
            last, extra["val_metrics"] = selected
        every = cfg.train.eval_interval
        legacy = p.selection == "best_per_metric"  # published: test at every evaluation
        history = _fit(
            cfg,
            data,
            text,
            seed,
            run,
            REFIT_CHAIN if p.selection == "validation" else CHAIN,
            last,
            lambda e: ("test",) if e == last or (legacy and e % every == 0) else (),
            stop_after_epoch,
        )
        if history is None:
            return None
        selection = select_metrics(history, p.selection, metrics, p.epoch)
    chosen = [r for r in history if "test" in r][-1]  # best_per_metric: the last evaluation
    selection = {
        "protocol": p.selection if method_class(cfg.method).trainable else "none",
        "selection": selection_rule(cfg),
        **{k: v for k, v in selection.items() if k != "protocol"},
        **extra,
        "other_metrics": {m: v for m, v in chosen["test"].items() if m not in selection["metrics"]},
    }
    return selection


def data_report(data: AdverbData) -> dict[str, Any]:
    """Duplicate rows, train/test clip overlap (kept, reference §10.5) and merge conflicts."""
    out: dict[str, Any] = overlap_report(data.split)
    stores = {id(r.store): r.store for r in (data.train, data.test) if r.store is not None}
    out["feature_merge_conflicts"] = sum(len(s.merge_conflicts) for s in stores.values())
    return out


@RECIPES.register("adverbs")
def run_adverbs(
    config: dict[str, Any],
    run_dir: Path,
    data_root: Path | None = None,
    stop_after_epoch: int | None = None,
) -> RunResult | None:
    """Run a video-adverb experiment (``recipe: adverbs``) and write its run directory.

    Args:
        config: raw mapping (paper YAML after overrides); validated strictly.
        run_dir: output directory; an existing one with the same config is resumed.
        data_root: root of the released data (else ``data.root`` / ``$LOWSHOT_DATA_ROOT``).
        stop_after_epoch: stop every seed after this epoch (simulated kill, for tests).

    Returns:
        The result (:mod:`lowshot.utils.results`, values 0-1; also written to
        ``<run_dir>/result.json``; ``extra``: dataset, protocol, per-seed selection details,
        the published numbers' selection, data report), or None when stopped early.
    """
    cfg = from_dict(AdverbsConfig, config, where=str(config.get("name", "adverbs")))
    # fail fast (before touching data) on unknown methods and bad model keys
    from_dict(method_class(cfg.method).Config, cfg.model, where=f"{cfg.name}.model")
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
            return None
        if sub is not run:  # a single seed's record lives in the run's own result (never two writes of one file)
            sub.write_result({"seed": seed, **res})
        results[seed] = res
    first = results[cfg.train.seeds[0]]
    trainable = method_class(cfg.method).trainable
    result = make_result(
        setting=cfg.name,
        family="adverbs",
        method=cfg.method,
        per_seed={s: r["metrics"] for s, r in results.items()},
        unit="fraction",
        selection=selection_rule(cfg),
        config=to_dict(cfg),
        provenance=to_dict(cfg.provenance),
        metric_order=[m for m in cfg.reported_metrics() if m in first["metrics"]],
        extra={
            "dataset": data.split.name,
            "protocol": first["protocol"],
            "seed_details": {str(s): {k: v for k, v in r.items() if k != "metrics"} for s, r in results.items()},
            "expected_selection": (TRAINING_FREE if not trainable else TEST_SELECTED)
            if cfg.provenance.expected else None,
            "data_report": data_report(data),
        },
    )
    write_result(run.path, result)
    return result
