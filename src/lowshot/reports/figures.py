"""Figures from runs: learning curves (history) and t-SNE of learned embeddings (Fig. 5.3).

Needs matplotlib (``pip install lowshot[report]``); t-SNE uses scikit-learn.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lowshot.errors import ConfigError


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover - optional extra
        raise ConfigError("figures need matplotlib: pip install 'lowshot[report]'") from err
    return plt


def plot_learning_curves(history: Sequence[dict[str, Any]], out: Path, title: str = "") -> Path:
    """Stage-1/2 training loss and stage-1 validation S/U/HM per epoch, as one PNG."""
    plt = _pyplot()
    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(10, 3.6))
    for stage, style in ((1, "-"), (2, "--")):
        rows = [h for h in history if h["stage"] == stage]
        if rows:
            ax_loss.plot([h["epoch"] for h in rows], [h["loss"] for h in rows], style, label=f"stage {stage}")
    stage1 = [h for h in history if h["stage"] == 1 and "val_HM" in h]
    for key in ("val_S", "val_U", "val_HM"):
        ax_val.plot([h["epoch"] for h in stage1], [h[key] for h in stage1], marker="o", label=key[4:])
    if stage1:
        best = max(stage1, key=lambda h: h["val_HM"])
        ax_val.axvline(best["epoch"], color="grey", linestyle=":", label="selected")
    ax_loss.set(xlabel="epoch", ylabel="training loss")
    ax_val.set(xlabel="epoch", ylabel="stage-1 validation (x100)")
    ax_loss.legend()
    ax_val.legend()
    fig.suptitle(title)
    return _save(fig, out)


def tsne_2d(points: np.ndarray, seed: int = 0) -> np.ndarray:
    """``[N, D]`` -> ``[N, 2]`` with scikit-learn's t-SNE (perplexity adapted to small N)."""
    from sklearn.manifold import TSNE

    perplexity = float(min(30.0, max(2.0, (len(points) - 1) / 3)))
    return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(points)


def plot_tsne(
    embeddings: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    unseen: set[int],
    out: Path,
    class_points: np.ndarray | None = None,
    class_ids: np.ndarray | None = None,
    title: str = "",
    seed: int = 0,
) -> Path:
    """t-SNE of sample embeddings ``[N, D]`` (dots) and class embeddings ``[K, D]`` (diamonds).

    Unseen classes get filled markers with a black edge, as in thesis Fig. 5.3.
    """
    plt = _pyplot()
    stacked = embeddings if class_points is None else np.concatenate([embeddings, class_points])
    xy = tsne_2d(stacked, seed)
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for i, c in enumerate(np.unique(labels)):
        color = plt.cm.tab10(i % 10)
        pts = xy[: len(embeddings)][labels == c]
        edge = "black" if int(c) in unseen else "none"
        ax.scatter(pts[:, 0], pts[:, 1], s=14, color=color, edgecolors=edge, linewidths=0.5,
                   label=f"{class_names[c]}{' (unseen)' if int(c) in unseen else ''}")
        if class_points is not None and class_ids is not None:
            k = np.flatnonzero(class_ids == c)
            if len(k):
                p = xy[len(embeddings) + k[0]]
                ax.scatter([p[0]], [p[1]], marker="D", s=80, color=color, edgecolors="black")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=7, loc="best")
    ax.set_title(title)
    return _save(fig, out)


def _save(fig: Any, out: Path) -> Path:
    """Lay out ``fig``, write it to ``out`` (PNG, 120 dpi; folders made) and close it."""
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    _pyplot().close(fig)
    return out
