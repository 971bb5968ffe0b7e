"""Shared parts of the parity harness: settings, the lowshot side, result cache and the table.

A *row* of the table is one side (``published`` or ``lowshot``) in one variant (``default``,
``legacy``, or a named ablation) over several seeds; every seed is cached as one JSON file
under ``<work>/results`` so an interrupted comparison resumes and rows can be added later.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lowshot.utils.seed import seed_mean_std

METRICS = ("S", "U", "HM", "ZSL")


@dataclass(frozen=True)
class Settings:
    """Reduced settings applied identically to both sides.

    Attributes:
        dataset: ``UCF`` | ``ActivityNet`` | ``VGGSound``.
        split: ``main`` or ``cls``.
        epochs: stage-1 epochs (stage 2 trains the selected epoch + 1).
        n_batches: batches per epoch.
        batch_size: None keeps the published batch size of the setting.
        seeds: training seeds.
        size: synthetic data size (fraction of the real video counts).
        data_seed: seed of the data generator.
        keys: ``aligned`` or ``released`` class-embedding keys (see ``data.py``).
        lr: None keeps the learning rate of the setting (published and lowshot alike).
        depth: None keeps the transformer depth of the setting (TCaF only: published
            ``--transformer_depth``, lowshot ``model.depth``).
        shots: k of a GFSL setting (AV-Diff: ``avdiff.<ds>_<k>shot``); None for GZSL.
        epochs_fine_tune: GFSL full-phase epochs (published ``--epochs_fine_tune``, lowshot
            ``protocol.epochs_fine_tune``); None keeps the setting's.
    """

    dataset: str = "UCF"
    split: str = "main"
    epochs: int = 5
    n_batches: int = 100
    batch_size: int | None = None
    seeds: tuple[int, ...] = (42, 43, 44)
    size: float = 0.2
    data_seed: int = 0
    keys: str = "aligned"
    lr: float | None = None
    depth: int | None = None
    shots: int | None = None
    epochs_fine_tune: int | None = None

    def tag(self) -> str:
        bs = f"_bs{self.batch_size}" if self.batch_size else ""
        lr = f"_lr{self.lr:g}" if self.lr else ""
        lr += f"_depth{self.depth}" if self.depth else ""
        split = f"{self.split}_{self.shots}shot" if self.shots else self.split
        ft = f"_ft{self.epochs_fine_tune}" if self.epochs_fine_tune else ""
        return (f"{self.dataset}_{split}_e{self.epochs}{ft}_nb{self.n_batches}{bs}{lr}_size{self.size}"
                f"_d{self.data_seed}_{self.keys}")

    def published_flags(self) -> dict[str, object]:
        """The settings as published command-line flags (``--bs`` / ``--lr`` / depth only when set)."""
        flags: dict[str, object] = {"--epochs": self.epochs, "--n_batches": self.n_batches}
        if self.batch_size:
            flags["--bs"] = self.batch_size
        if self.lr:
            flags["--lr"] = self.lr
        if self.depth:
            flags["--transformer_depth"] = self.depth
        if self.epochs_fine_tune:
            flags["--epochs_fine_tune"] = self.epochs_fine_tune
        return flags


@dataclass
class SeedResult:
    """Test metrics (x100) of one seed, the selected epoch (0-based) and beta, seconds/epoch.

    GFSL rows (AV-Diff) store B / N / FSL in ``S`` / ``U`` / ``ZSL`` (the table names them
    ``B N HM FSL``) and the base phase's selected epoch in ``best_epoch`` (the full phase's in
    ``extra["best_full_epoch"]``).
    """

    seed: int
    S: float
    U: float
    HM: float
    ZSL: float
    best_epoch: int
    beta: float
    s_per_epoch: float
    extra: dict[str, Any] = field(default_factory=dict)


def cached(path: Path, compute: Callable[[], Any], kind: type = SeedResult) -> Any:
    """Read a cached seed result (a ``kind`` dataclass, JSON at ``path``), or compute and write it."""
    if path.exists():
        return kind(**json.loads(path.read_text()))
    res = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(res), indent=1))
    tmp.replace(path)
    return res


def variant_overrides(
    ablations: dict[str, tuple[str, ...]], variant: str, settings: Settings
) -> tuple[str, ...]:
    """Overrides of a lowshot row; ``released`` keys need the legacy row order on the legacy side."""
    ov = ablations[variant]
    if settings.keys == "released" and variant == "legacy":
        ov = (*ov, "data.legacy_text_order=true")
    return ov


def run_lowshot_seed(
    setting: str, overrides: Sequence[str], data_root: Path, run_dir: Path, settings: Settings, seed: int
) -> SeedResult:
    """One seed of a lowshot paper setting (GZSL or GFSL recipe) under the harness settings (in this process)."""
    from lowshot.config.paper import load_paper_config
    from lowshot.recipes.gfsl import run_gfsl
    from lowshot.recipes.gzsl import run_gzsl

    ov = [
        f"data.root={data_root}", f"data.dataset={settings.dataset}", f"data.split={settings.split}",
        "data.trust_pickle=true", f"train.epochs={settings.epochs}", f"train.n_batches={settings.n_batches}",
        f"train.seeds=[{seed}]", "train.num_threads=1", "train.progress=false", "train.device=cpu",
    ]  # fmt: skip
    if settings.batch_size:
        ov.append(f"train.batch_size={settings.batch_size}")
    if settings.lr:
        ov.append(f"train.lr={settings.lr}")
    if settings.depth:
        ov.append(f"model.depth={settings.depth}")
    if settings.epochs_fine_tune:
        ov.append(f"protocol.epochs_fine_tune={settings.epochs_fine_tune}")
    config = load_paper_config(setting, [*ov, *overrides])
    gfsl = config.get("recipe") == "gfsl"
    start = time.perf_counter()
    summary = (run_gfsl if gfsl else run_gzsl)(config, run_dir)
    wall = time.perf_counter() - start
    history = json.loads((run_dir / f"seed_{seed}" / "history.json").read_text())
    per_epoch = wall / max(len(history), 1)
    m = summary.per_seed[str(seed)]
    if gfsl:
        sel = summary.extra["per_seed"][str(seed)]
        return SeedResult(seed, m["B"], m["N"], m["HM"], m["FSL"], int(sel["best_base_epoch"]), float(sel["beta"]),
                          per_epoch, {"overrides": list(overrides), "best_full_epoch": int(sel["best_full_epoch"])})
    s = {**m, **summary.extra["selected"][str(seed)]}
    return SeedResult(seed, s["S"], s["U"], s["HM"], s["ZSL"], int(s["best_epoch"]), float(s["beta"]),
                      per_epoch, {"overrides": list(overrides)})


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0 for one value)."""
    stats = seed_mean_std([{"v": v} for v in values], ddof=1)["v"]
    return stats["mean"], stats["std"]


def table(rows: Sequence[tuple[str, Sequence[SeedResult]]], labels: Sequence[str] = METRICS) -> str:
    """Markdown: one line per (row, seed), then mean ± sd per row; ``labels`` name the four metric columns."""
    head = f"| row | seed | {' | '.join(labels)} | epoch | β | s/epoch |\n|---|---|---|---|---|---|---|---|---|"
    lines = [head]
    for name, results in rows:
        for r in results:
            lines.append(f"| {name} | {r.seed} | {r.S:.2f} | {r.U:.2f} | {r.HM:.2f} | {r.ZSL:.2f} | "
                         f"{r.best_epoch} | {r.beta:.2f} | {r.s_per_epoch:.1f} |")
        if len(results) > 1:
            cells = []
            for k in METRICS:
                m, sd = mean_sd([getattr(r, k) for r in results])
                cells.append(f"**{m:.2f} ± {sd:.2f}**")
            t = np.mean([r.s_per_epoch for r in results])
            lines.append(f"| {name} | mean ± sd | {' | '.join(cells)} | | | {t:.1f} |")
    return "\n".join(lines)


def within_spread(published: Sequence[SeedResult], ours: Sequence[SeedResult], key: str) -> bool:
    """Whether the mean of ``ours`` lies within [min, max] of the published seeds on ``key``."""
    pub = [getattr(r, key) for r in published]
    m, _ = mean_sd([getattr(r, key) for r in ours])
    return min(pub) <= m <= max(pub)
