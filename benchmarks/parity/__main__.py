"""``python -m benchmarks.parity METHOD --upstream CHECKOUT --upstream-python PY``: one table.

Example (the AVCA rows of docs/parity.md)::

    python -m benchmarks.parity avca --upstream /work/upstream/AVCA-GZSL \\
        --upstream-python /work/upstream/venv/bin/python --work /tmp/parity \\
        --epochs 5 --n-batches 100 --seeds 42 43 44 --rows published default legacy

``--rows`` picks the table rows: ``published`` (the checkout's code through the device shims),
and lowshot variants (``default``, ``legacy`` and single-switch ablations such as
``+negatives``). Without ``--upstream`` only lowshot rows can be run. Every seed is cached under
``<work>/results``; rerunning the command resumes.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from benchmarks.parity import avca, avdiff, clipclap, tcaf
from benchmarks.parity.data import KEYS, write_parity_data
from benchmarks.parity.harness import (
    METRICS,
    Settings,
    cached,
    run_lowshot_seed,
    table,
    within_spread,
)

METHODS = {"avca": avca, "avdiff": avdiff, "clipclap": clipclap, "tcaf": tcaf}
DEFAULT_SHARED = Path(
    os.environ.get("LOWSHOT_SHARED_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "data")
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.parity", description=__doc__.splitlines()[0])
    p.add_argument("method", choices=sorted(METHODS))
    p.add_argument("--upstream", type=Path, help="local checkout of the published repository")
    p.add_argument("--upstream-python", type=Path, default=Path(sys.executable),
                   help="Python of an environment with the published code's dependencies")
    p.add_argument("--work", type=Path, required=True, help="data, runs and cached results")
    p.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="the shared data folder")
    p.add_argument("--rows", nargs="+", default=["published", "default", "legacy"])
    p.add_argument("--dataset", default="UCF")
    p.add_argument("--split", default="main", choices=("main", "cls"))
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--n-batches", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate for both sides (default: each setting's published one)")
    p.add_argument("--depth", type=int, default=None,
                   help="transformer depth for both sides (tcaf only; default: the published one)")
    p.add_argument("--shots", type=int, default=None, help="k of a GFSL setting (avdiff only; default 5)")
    p.add_argument("--epochs-fine-tune", type=int, default=None,
                   help="GFSL full-phase epochs for both sides (avdiff only; default: the published one)")
    p.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    p.add_argument("--size", type=float, default=0.2, help="synthetic data size (fraction of real)")
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--keys", choices=KEYS, default="aligned")
    return p


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    os.environ.setdefault("LOWSHOT_NO_PROGRESS", "1")
    mod = METHODS[a.method]
    st = Settings(a.dataset, a.split, a.epochs, a.n_batches, a.batch_size, tuple(a.seeds), a.size,
                  a.data_seed, a.keys, a.lr, a.depth, a.shots, a.epochs_fine_tune)
    if a.depth and a.method != "tcaf":
        raise SystemExit("--depth: only tcaf has a transformer depth setting")
    if (a.shots or a.epochs_fine_tune) and a.method != "avdiff":
        raise SystemExit("--shots / --epochs-fine-tune: only avdiff is a GFSL method")
    work = a.work / a.method / st.tag()
    data_root = work / "data"
    if hasattr(mod, "write_data"):
        mod.write_data(data_root, a.shared, st)
    else:
        write_parity_data(data_root, a.shared, st.dataset, mod.PRESET[st.split], st.size, st.data_seed, st.keys)
    rows = []
    for row in a.rows:
        results = []
        for seed in st.seeds:
            out = work / "results" / f"{row}_s{seed}.json"
            if row == "published":
                if a.upstream is None:
                    raise SystemExit("--rows published needs --upstream (a checkout of the published code)")
                results.append(cached(out, lambda s=seed: mod.run_published_seed(
                    a.upstream, a.upstream_python, data_root, work, st, s)))
            else:
                ov = mod.lowshot_overrides(row, st)
                results.append(cached(out, lambda s=seed, ov=ov, row=row: run_lowshot_seed(
                    mod.lowshot_setting(st), ov, data_root, work / "lowshot" / f"{row}_s{s}", st, s)))
        rows.append((("published code" if row == "published" else f"lowshot {row}"), results))
    print(f"{a.method} on {st.tag()} (test, x100)")
    labels = getattr(mod, "LABELS", METRICS)  # a GFSL method names its columns B / N / HM / FSL
    named = dict(zip(METRICS, labels))
    print(table(rows, labels))
    pub = dict(rows).get("published code")
    if pub and len(pub) > 1:
        for name, res in rows:
            if name != "published code" and len(res) > 1:
                ok = {k: within_spread(pub, res, k) for k in ("HM", "U")}
                print(f"{name}: mean within the published seed range: " +
                      ", ".join(f"{named[k]} {'yes' if v else 'no'}" for k, v in ok.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
