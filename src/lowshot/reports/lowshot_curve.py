"""Table and figure of the low-shot curve (HM and novel accuracy against k, one line per method).

Input rows: ``{"method", "k", "seed", "B", "N", "HM", "FSL"}`` (x100), as written by
:func:`lowshot.recipes.lowshot_curve.run_curve`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lowshot.reports.figures import _pyplot
from lowshot.utils.io import atomic_write_text

METRICS = ("B", "N", "HM", "FSL")


def aggregate_curve(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and population std over seeds per (method, k), in first-seen method order and rising k."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    out = []
    for m in methods:
        for k in sorted({r["k"] for r in rows if r["method"] == m}):
            sel = [r for r in rows if r["method"] == m and r["k"] == k]
            stats: dict[str, Any] = {"method": m, "k": k, "seeds": len(sel)}
            for key in METRICS:
                vals = np.array([r[key] for r in sel], np.float64)
                stats[key], stats[f"{key}_std"] = float(vals.mean()), float(vals.std())
            out.append(stats)
    return out


def curve_markdown(stats: Sequence[dict[str, Any]]) -> str:
    """Markdown table: one row per (method, k), mean ± std of B, N, HM, FSL."""
    lines = ["| method | k | seeds | " + " | ".join(METRICS) + " |", "|---|---|---|" + "---|" * len(METRICS)]
    for s in stats:
        cells = " | ".join(f"{s[m]:.2f} ± {s[m + '_std']:.2f}" for m in METRICS)
        lines.append(f"| {s['method']} | {s['k']} | {s['seeds']} | {cells} |")
    return "\n".join(lines) + "\n"


def write_curve(rows: Sequence[dict[str, Any]], out: Path, title: str = "") -> Path:
    """Write ``curve.csv`` (every point), ``curve.md`` (mean ± std) and ``curve.png`` under ``out``.

    Returns:
        The figure's path.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["method", "k", "seed", *METRICS], lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: r[k] for k in writer.fieldnames} for r in rows)
    atomic_write_text(out / "curve.csv", buf.getvalue())
    stats = aggregate_curve(rows)
    atomic_write_text(out / "curve.md", curve_markdown(stats))
    plt = _pyplot()
    shots = sorted({s["k"] for s in stats})
    pos = {k: i for i, k in enumerate(shots)}
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, key, name in ((axes[0], "HM", "HM (GZSL k=0, GFSL k>0)"), (axes[1], "N", "novel-class accuracy N (U at k=0)")):
        for m in dict.fromkeys(s["method"] for s in stats):
            sel = [s for s in stats if s["method"] == m]
            x = np.array([pos[s["k"]] for s in sel])
            y, e = np.array([s[key] for s in sel]), np.array([s[key + "_std"] for s in sel])
            ax.plot(x, y, marker="o", label=m)
            ax.fill_between(x, y - e, y + e, alpha=0.2)
        ax.set_xticks(range(len(shots)), [str(k) for k in shots])
        ax.set_xlabel("shots k per novel class")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[0].legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = out / "curve.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
