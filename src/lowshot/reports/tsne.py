"""t-SNE of a finished GZSL run's test embeddings (thesis Fig. 5.3): 4 seen + 2 unseen classes.

The report gets the trained method and its benchmark from the recipe that wrote the run
(:func:`lowshot.recipes.gzsl.load_final_method`, called by the CLI): a report reads what
recipes produce and never imports a recipe.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from lowshot.data.av.featureset import FeatureSet, GZSLBenchmark
from lowshot.errors import ConfigError
from lowshot.reports.figures import plot_tsne


def run_tsne(method: Any, method_name: str, bench: GZSLBenchmark, out: Path, title: str,
             seed: int = 0, n_seen: int = 4, n_unseen: int = 2) -> Path:
    """Plot the test embeddings of ``n_seen`` + ``n_unseen`` random classes and their class embeddings.

    Args:
        method: a trained method with ``collate``, ``embed`` and ``embed_classes``.
        method_name: its registry name (for messages).
        bench: the benchmark it was trained on (stage-2 test folders are embedded).
        out: the PNG to write.
        title: the figure title.
        seed: picks the classes and seeds t-SNE.

    Raises:
        ConfigError: the method exposes no ``embed()``/``embed_classes()``.
    """
    if not hasattr(method, "embed") or not hasattr(method, "embed_classes"):
        raise ConfigError(f"method '{method_name}' does not expose embed()/embed_classes() for t-SNE")
    method.eval()
    seen_set, unseen_set, seen_cls, unseen_cls = bench.stage_eval(2)
    rng = np.random.default_rng(seed)
    chosen = np.concatenate([rng.choice(seen_cls, n_seen, replace=False), rng.choice(unseen_cls, n_unseen, replace=False)])
    test = FeatureSet.concat([seen_set, unseen_set]).select_classes(chosen)
    with torch.no_grad():
        batch = method.collate(test, np.arange(len(test)), None, False)
        emb = method.embed(batch).numpy()
        cls = method.embed_classes(torch.as_tensor(bench.class_embeddings[chosen])).numpy()
    return plot_tsne(emb, test.labels, bench.class_names, set(unseen_cls.tolist()), out, cls, chosen,
                     title=title, seed=seed)
