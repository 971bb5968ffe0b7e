"""t-SNE of a finished GZSL run's test embeddings (thesis Fig. 5.3): 4 seen + 2 unseen classes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lowshot.errors import ConfigError
from lowshot.reports.figures import plot_tsne


def run_tsne(run_dir: Path, out: Path, seed: int = 0, n_seen: int = 4, n_unseen: int = 2) -> Path:
    """Rebuild the run's final model and plot its test embeddings and class embeddings."""
    from lowshot._registry import METHODS
    from lowshot.config.schema import load_yaml
    from lowshot.data.featureset import FeatureSet
    from lowshot.recipes.gzsl import input_spec, load_benchmark, parse_experiment
    from lowshot.utils.io import load_state

    exp, model_cfg = parse_experiment(load_yaml(run_dir / "config.yaml"))
    weights = run_dir / f"seed_{exp.train.seeds[0]}" / "checkpoints" / "final_model.safetensors"
    if not weights.is_file():
        raise ConfigError(f"t-SNE needs {weights}, which a finished run writes; this run has not finished")
    bench = load_benchmark(exp.data, None, run_dir)
    method = METHODS.get(exp.method)(model_cfg, input_spec(bench))
    method.load_state_dict(load_state(weights))
    method.eval()
    if not hasattr(method, "embed") or not hasattr(method, "embed_classes"):
        raise ConfigError(f"method '{exp.method}' does not expose embed()/embed_classes() for t-SNE")
    seen_set, unseen_set, seen_cls, unseen_cls = bench.stage_eval(2)
    rng = np.random.default_rng(seed)
    chosen = np.concatenate([rng.choice(seen_cls, n_seen, replace=False), rng.choice(unseen_cls, n_unseen, replace=False)])
    test = FeatureSet.concat([seen_set, unseen_set]).select_classes(chosen)
    with torch.no_grad():
        batch = method.collate(test, np.arange(len(test)), None, False)
        emb = method.embed(batch).numpy()
        cls = method.embed_classes(torch.as_tensor(bench.class_embeddings[chosen])).numpy()
    return plot_tsne(emb, test.labels, bench.class_names, set(unseen_cls.tolist()), out, cls, chosen,
                     title=f"{exp.name}: test embeddings", seed=seed)
