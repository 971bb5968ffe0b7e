"""ReGaDa: the published code (ExplainableML/ReGaDa) beside ``lowshot`` ``regada.<run>``.

``python -m benchmarks.parity.regada --upstream CHECKOUT --upstream-python PY --work DIR``
prints one table: test mAP W / mAP M / Acc-A (x100) per seed and mean ± sd, the selected
epoch(s) and the training seconds per epoch, for the published code and lowshot's
``legacy`` and ``default`` variants. Each seed is cached as JSON under
``<work>/regada/<tag>/results``; rerunning resumes (cached published seeds need no
``--upstream``).

Data (``write_data``): lowshot's synthetic generator in the released layout
(``splits/s3d/seen_compositions/<DATASET>/*.csv``, ``features/<DATASET>/s3d/.../{train,test}.pth``
with S3D-shaped 1024-d ``s3d_features`` and ``frame_samples`` metadata), plus a random S3D
text module (``features/s3d``). Text embeddings: the published code embeds its vocabulary
(actions, adverbs and, unused, the "adverb action" phrases) with the S3D-HowTo100M text
module; offline, both sides use the *same* 512-d vectors: the harness computes them once
with lowshot's S3D text-module implementation over the generated weights and writes them to
``texts.pt``; the published side reads them through ``regada_shim.py`` (in place of its
S3D loader, which needs the full video+text checkpoint and a GPU) and the lowshot side
through ``text.encoder=adverbs.text_cache`` (the same file as a lowshot text cache).

Published side, per seed: ``train.py +run=main_<run>`` with ``seed``, ``max_epochs``,
``eval_interval``, ``batch_size``, ``lr`` and paths overridden (identical values on the
lowshot side), run on CPU through ``regada_shim.py``. Its result is its own protocol: each
metric's maximum over the test evaluations at epochs 0, ``eval_interval``, ... (first
maximum; "epoch" shows the epoch of each).

lowshot side: ``regada.<run>`` with the same settings. ``legacy`` = the published,
test-selected ``protocol.selection=best_per_metric``; ``default`` = lowshot's default
(stage 1: epoch E selected on a validation split carved from train, 10% of the clips;
stage 2: a fresh model refit on all training clips for epochs 0..E, test evaluated once,
after epoch E); ``last`` = the last epoch (fixed in advance, no selection, all clips).

Line-by-line comparison (published ``models/*.py``, ``dataset.py``, ``train.py``,
``test.py`` @ d9d0bfb vs ``lowshot.models.adverbs.regada`` / ``lowshot.methods.adverbs``
/ ``lowshot.recipes.adverbs``). Same: text encoder (separate Linear(512 -> 400)
projections of adverb (main) and action (aux); gate/residual = BN(800), (N - 1) x [Linear,
Dropout, LeakyReLU(0.2)], Linear(800 -> 400); w_g = w_r = 1 init; evaluated over all
adverb x action pairs per batch, so BN normalises over pairs), video encoder (4-head
single-query attention, bias-free q/k/v, scale head_dim^-0.5, padding masked from the true
lengths at train and test, dropout on the attention weights, output Linear; MLP [Linear,
LN, ReLU, Dropout] + [Linear, LN, ReLU]), query = frozen GT-action embedding, losses
(triplet margin 1 with action negative uniform over the other actions and antonym adverb
negative, MSE, on unnormalised embeddings; weights λ_act, λ_adv, λ_reg), cosine scores,
Adam (β 0.9/0.999, L2 weight decay 5e-5, no scheduler/clipping) over the same trainable
parameters, epochs 0..E inclusive, shuffled batches with a partial last batch, metrics
(sklearn-equivalent macro/weighted AP over adverbs given the GT action; Acc-A = GT adverb
vs antonym with the GT action), per-metric first maximum over test evaluations (legacy).
Different, none changing what is computed in distribution:

* random streams: the published code draws action negatives with numpy's global RNG in
  ``__getitem__`` and shuffles with torch's global RNG; lowshot draws both from a
  generator seeded by (seed, epoch) (resumable). Same distributions, different draws, so
  seeds are not comparable one by one, only their spread;
* parameter initialisation order (module construction order differs), same
  initialisers;
* the published evaluation also computes a test loss with freshly drawn negatives
  (consumes RNG, no effect on the metrics); lowshot does not;
* the first BN + Linear of each text branch is computed per vocabulary row and gathered
  (exact; float rounding only);
* lowshot's best_per_metric also evaluates the last epoch when it is not a multiple of
  ``eval_interval`` (the harness uses a multiple, so the evaluations coincide);
* the published ``composition: emb`` also embeds the "adverb action" phrases; they are
  never used with ``tokens: actadv`` (lowshot does not embed them);
* default selection (not legacy): the epoch is selected on validation (10% of the training
  clips, held out in stage 1 only) and the model is refit on all training clips, instead of
  the maximum of each metric over test evaluations.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.parity.harness import cached, mean_sd

SHIM = Path(__file__).with_name("regada_shim.py")
METRICS = ("map_w", "map_m", "acc_a")
#: published metric names (``utils.metric_string_mapping``)
PUBLISHED_NAMES = {"map_w": "mAP-W", "map_m": "mAP-M", "acc_a": "Acc-A"}
#: lowshot run (configs/regada/<run>.yaml) -> (published run config, dataset folder)
RUNS = {
    "vatex": ("main_vatex", "VATEX_Adverbs"),
    "activitynet": ("main_activitynet", "ActivityNet_Adverbs"),
    "msrvtt": ("main_msrvtt", "MSR-VTT_Adverbs"),
}
#: lowshot variants: overrides on top of the harness settings
VARIANTS: dict[str, tuple[str, ...]] = {
    "default": (),
    "legacy": ("protocol.selection=best_per_metric",),
    "last": ("protocol.selection=last",),
}


@dataclass(frozen=True)
class Settings:
    """Reduced settings applied identically to both sides.

    Attributes:
        run: lowshot setting ``regada.<run>`` / published ``+run=main_<run>``.
        epochs: last epoch (epochs 0..epochs are trained, as published).
        eval_interval: evaluations at epochs 0, k, 2k, ... (a divisor of ``epochs``).
        batch_size: training (and published test) batch.
        lr: Adam learning rate (published 1e-5 for 2000 epochs; raised for short runs).
        n_clips: synthetic clips (rows ~ clips; 25% test).
        signal: strength of the adverb effect in the synthetic features.
        seeds: training seeds.
        data_seed: seed of the data generator.
    """

    run: str = "vatex"
    epochs: int = 60
    eval_interval: int = 5
    batch_size: int = 128
    lr: float = 1e-4
    n_clips: int = 1200
    signal: float = 0.35
    seeds: tuple[int, ...] = (42, 43, 44)
    data_seed: int = 0

    def __post_init__(self) -> None:
        if self.run not in RUNS:
            raise ValueError(f"run must be one of {sorted(RUNS)}, got '{self.run}'")
        if self.epochs % self.eval_interval:
            raise ValueError(
                "epochs must be a multiple of eval_interval (same evaluations on both sides)"
            )

    @property
    def dataset(self) -> str:
        return RUNS[self.run][1]

    def tag(self) -> str:
        return (
            f"{self.run}_e{self.epochs}_i{self.eval_interval}_bs{self.batch_size}_lr{self.lr:g}"
            f"_n{self.n_clips}_sig{self.signal:g}_d{self.data_seed}"
        )


@dataclass
class SeedRow:
    """Test metrics (x100) of one seed, the epoch of each, training seconds per epoch."""

    seed: int
    metrics: dict[str, float]
    epochs: dict[str, int]
    s_per_epoch: float
    extra: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- data
def vocabulary_texts(root: Path, dataset: str) -> list[str]:
    """Actions, adverbs and "adverb action" phrases of the split (what the published code embeds)."""
    split = root / "splits" / "s3d" / "seen_compositions" / dataset
    rows = [r for part in ("train", "test") for r in csv.DictReader((split / f"{part}.csv").open())]
    adverbs = sorted({r["clustered_adverb"] for r in rows})
    actions = sorted({r["clustered_action"] for r in rows})
    return [*actions, *adverbs, *(f"{a} {v}" for a in adverbs for v in actions)]


def write_data(root: Path, st: Settings) -> dict[str, Path]:
    """Generate the split, S3D-shaped features and shared text embeddings below ``root``.

    Returns:
        ``{"texts_pt": ..., "text_cache": ...}``: the embeddings for the published shim and
        the same embeddings as a lowshot text cache.
    """
    import torch

    from lowshot.data.adverbs.synth import SynthSpec, generate
    from lowshot.data.adverbs.text import save_text_cache
    from lowshot.extract.text import S3DTextEncoder

    paths = {"texts_pt": root / "texts.pt", "text_cache": root / "texts.safetensors"}
    if all(p.exists() for p in paths.values()):
        return paths
    spec = SynthSpec(
        dataset=st.dataset,
        n_clips=st.n_clips,
        video_dim=1024,
        joint_dim=512,
        signal=st.signal,
        unseen=False,
        seed=st.data_seed,
    )
    generate(root, spec)
    texts = vocabulary_texts(root, st.dataset)
    enc = S3DTextEncoder(
        root / "features/s3d/s3d_howto100m.pth",
        root / "features/s3d/s3d_dict.npy",
        trust_pickle=True,
    )
    emb = torch.as_tensor(enc.encode(texts)).float()
    torch.save({"texts": texts, "embeddings": emb}, paths["texts_pt"])
    save_text_cache(paths["text_cache"], texts, emb)
    return paths


# ----------------------------------------------------------------------------- published
def published_overrides(data_root: Path, run_dir: Path, st: Settings, seed: int) -> list[str]:
    """Hydra overrides of the published ``train.py`` for one seed."""
    data_root = data_root.resolve()
    return [
        f"+run={RUNS[st.run][0]}", f"seed={seed}", f"max_epochs={st.epochs}",
        f"eval_interval={st.eval_interval}", f"batch_size={st.batch_size}", f"lr={st.lr}",
        "workers=0", f"feature_dir={data_root / 'features'}",
        f"data_dir={data_root / 'splits/s3d/seen_compositions' / st.dataset}/",
        f"log_dir={run_dir}", f"hydra.run.dir={run_dir}",
    ]  # fmt: skip


def run_published_seed(
    repo: Path, python: Path, data_root: Path, work: Path, st: Settings, seed: int
) -> SeedRow:
    """Train the published code for one seed (CPU, through the shim) and read its evaluations."""
    run_dir = (work / "published" / f"s{seed}").resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    evals = run_dir / "evals.jsonl"
    evals.unlink(missing_ok=True)
    cmd = [
        str(python),
        str(SHIM),
        "--embeddings",
        str((data_root / "texts.pt").resolve()),
        "--evals",
        str(evals),
        str(repo.resolve()),
        *published_overrides(data_root, run_dir, st, seed),
    ]
    log = run_dir / "harness.log"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": str(seed)}
    with log.open("w") as fh:
        fh.write("$ " + shlex.join(cmd) + "\n")
        fh.flush()
        proc = subprocess.run(cmd, cwd=data_root, stdout=fh, stderr=subprocess.STDOUT, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"published train.py failed (exit {proc.returncode}); see {log}")
    records = [json.loads(line) for line in evals.read_text().splitlines()]
    return published_row(records, seed)


def published_row(records: Sequence[dict[str, Any]], seed: int) -> SeedRow:
    """The published protocol on recorded evaluations: each metric's first maximum (x100)."""
    metrics, epochs = {}, {}
    for m, name in PUBLISHED_NAMES.items():
        best = max(r["metrics"][name] for r in records)
        metrics[m] = 100 * best
        epochs[m] = next(r["epoch"] for r in records if r["metrics"][name] == best)
    # training seconds between the first and the last evaluation, evaluations excluded
    train_s = sum(b["t_in"] - a["t_out"] for a, b in zip(records, records[1:]))
    n_epochs = records[-1]["epoch"] - records[0]["epoch"]
    last = {m: 100 * records[-1]["metrics"][n] for m, n in PUBLISHED_NAMES.items()}
    return SeedRow(seed, metrics, epochs, train_s / max(n_epochs, 1), {"last": last})


# ----------------------------------------------------------------------------- lowshot
def lowshot_overrides(variant: str, data_root: Path, st: Settings, seed: int) -> list[str]:
    """Overrides of the lowshot setting ``regada.<run>`` for one variant and seed."""
    return [
        f"data.root={data_root.resolve()}", "data.trust_pickle=true",
        "text.encoder=adverbs.text_cache", f"text.cache={(data_root / 'texts.safetensors').resolve()}",
        f"train.epochs={st.epochs}", f"train.eval_interval={st.eval_interval}",
        f"train.batch_size={st.batch_size}", f"train.lr={st.lr}", f"train.seeds=[{seed}]",
        "train.num_threads=1", *VARIANTS[variant],
    ]  # fmt: skip


def run_lowshot_seed(variant: str, data_root: Path, work: Path, st: Settings, seed: int) -> SeedRow:
    """One seed of ``regada.<run>`` in this process."""
    from lowshot.config.paper import load_paper_config
    from lowshot.recipes.adverbs import run_adverbs

    run_dir = work / "lowshot" / f"{variant}_s{seed}"
    config = load_paper_config(f"regada.{st.run}", lowshot_overrides(variant, data_root, st, seed))
    result = run_adverbs(config, run_dir)
    res = {**result.extra["seed_details"][str(seed)], "metrics": result.per_seed[str(seed)]}
    history = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    times = [r["time_s"] for r in history if "time_s" in r]
    epochs = res.get("epochs") or {m: res.get("epoch") for m in METRICS}
    return SeedRow(
        seed,
        {m: 100 * res["metrics"][m] for m in METRICS},
        {m: int(epochs[m]) for m in METRICS},
        float(np.mean(times)),
        {"selection": res["selection"]},
    )


# ----------------------------------------------------------------------------- table
def _epochs(r: SeedRow) -> str:
    e = [r.epochs[m] for m in METRICS]
    return str(e[0]) if len(set(e)) == 1 else "/".join(map(str, e))


def table(rows: Sequence[tuple[str, Sequence[SeedRow]]]) -> str:
    """Markdown: one line per (row, seed), then mean ± sd (ddof=1) per row."""
    lines = [
        "| row | seed | mAP W | mAP M | Acc-A | epoch (W/M/A) | s/epoch |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, results in rows:
        for r in results:
            cells = " | ".join(f"{r.metrics[m]:.2f}" for m in METRICS)
            lines.append(f"| {name} | {r.seed} | {cells} | {_epochs(r)} | {r.s_per_epoch:.2f} |")
        if len(results) > 1:
            cells = " | ".join(
                "**{:.2f} ± {:.2f}**".format(*mean_sd([r.metrics[m] for r in results]))
                for m in METRICS
            )
            t = np.mean([r.s_per_epoch for r in results])
            lines.append(f"| {name} | mean ± sd | {cells} | | {t:.2f} |")
    return "\n".join(lines)


def within_spread(published: Sequence[SeedRow], ours: Sequence[SeedRow], metric: str) -> bool:
    """Whether the mean of ``ours`` lies within [min, max] of the published seeds."""
    pub = [r.metrics[metric] for r in published]
    return min(pub) <= mean_sd([r.metrics[metric] for r in ours])[0] <= max(pub)


# ----------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    d = Settings()
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.parity.regada", description=__doc__.splitlines()[0]
    )
    p.add_argument("--upstream", type=Path, help="local checkout of ExplainableML/ReGaDa")
    p.add_argument(
        "--upstream-python",
        type=Path,
        default=Path(sys.executable),
        help="Python of an environment with the published code's dependencies",
    )
    p.add_argument("--work", type=Path, required=True, help="data, runs and cached results")
    p.add_argument(
        "--rows",
        nargs="+",
        default=["published", "legacy", "default"],
        choices=["published", *VARIANTS],
    )
    p.add_argument("--run", default=d.run, choices=sorted(RUNS))
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--eval-interval", type=int, default=d.eval_interval)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--n-clips", type=int, default=d.n_clips)
    p.add_argument("--signal", type=float, default=d.signal)
    p.add_argument("--seeds", type=int, nargs="+", default=list(d.seeds))
    p.add_argument("--data-seed", type=int, default=d.data_seed)
    return p


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    os.environ.setdefault("LOWSHOT_NO_PROGRESS", "1")
    st = Settings(
        a.run,
        a.epochs,
        a.eval_interval,
        a.batch_size,
        a.lr,
        a.n_clips,
        a.signal,
        tuple(a.seeds),
        a.data_seed,
    )
    work = a.work / "regada" / st.tag()
    data_root = work / "data"
    write_data(data_root, st)
    rows = []
    for row in a.rows:
        results = []
        for seed in st.seeds:
            out = work / "results" / f"{row}_s{seed}.json"
            start = time.perf_counter()
            if row == "published":
                if a.upstream is None and not out.exists():
                    raise SystemExit(
                        "--rows published needs --upstream (a checkout of the published code)"
                    )
                res = cached(
                    out,
                    lambda s=seed: run_published_seed(
                        a.upstream, a.upstream_python, data_root, work, st, s
                    ),
                    SeedRow,
                )
            else:
                res = cached(
                    out, lambda s=seed, row=row: run_lowshot_seed(row, data_root, work, st, s), SeedRow
                )
            print(
                f"[{row} seed {seed}: {time.perf_counter() - start:.0f}s]",
                file=sys.stderr,
                flush=True,
            )
            results.append(res)
        rows.append(("published code" if row == "published" else f"lowshot {row}", results))
    print(f"regada on {st.tag()} (test, x100)")
    print(table(rows))
    pub = dict(rows).get("published code")
    if pub and len(pub) > 1:
        for name, res in rows:
            if name != "published code" and len(res) > 1:
                ok = {m: within_spread(pub, res, m) for m in METRICS}
                print(
                    f"{name}: mean within the published seed range: "
                    + ", ".join(f"{m} {'yes' if v else 'no'}" for m, v in ok.items())
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
