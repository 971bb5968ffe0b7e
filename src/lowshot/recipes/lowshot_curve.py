"""The low-shot curve: any registered audio-visual method from k = 0 (GZSL) to k = 1, 5, 10, 20 (GFSL).

Every point uses the same class partition: the GZSL ``cls`` split, whose unseen classes are
the GFSL novel classes (B1 = stage-1 train, N1 = val-unseen, N2 = test-unseen). k = 0 is the
two-stage GZSL protocol on the GZSL benchmark; k >= 1 is the GFSL protocol on draws of k
videos per novel class taken out of the same benchmark's val/test-unseen videos (draw seed =
training seed). Each method keeps the features, hyperparameters and beta grid of its paper
setting (``avca.<ds>_cls``, ``tcaf.<ds>_cls``, ``clipclap.<ds>``, ``avdiff.<ds>_5shot``);
distance methods run the GFSL full phase for as many epochs as their base phase.

AV-Diff has no k = 0 point: its classifier has no row trained for a class without a sample.

Reported per (method, k, seed): B (S at k = 0), N (U at k = 0), HM and FSL (ZSL at k = 0), x100.

Each finished point is written at once (``<out>/points/<method>_k<k>_seed<s>.json``, atomically,
with a digest of the method's resolved setting and of the data it read); a rerun after a kill
reuses the finished points and computes only the rest, and refuses a point file that another
setting or other data produced. A point interrupted half-way is recomputed from its start.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from lowshot.config.paper import load_paper_config
from lowshot.data.av.featureset import GZSLBenchmark
from lowshot.data.av.fsl import gfsl_from_gzsl, kshot_synthetic_size
from lowshot.errors import ConfigError
from lowshot.methods.base import GZSLMethod, method_of_family
from lowshot.protocols.calibration import beta_grid
from lowshot.protocols.gzsl import TwoStageProtocol
from lowshot.recipes.gfsl import GFSLProtocolConfig, fit_gfsl, parse_gfsl_experiment
from lowshot.recipes.gzsl import (
    benchmark_root,
    data_fingerprint,
    input_spec,
    load_benchmark,
    parse_experiment,
)
from lowshot.recipes.gzsl_config import DataConfig, TrainConfig
from lowshot.recipes.gzsl_trainer import MethodTrainer
from lowshot.utils.io import atomic_write_json, read_json
from lowshot.utils.seed import resolve_device, seed_everything

log = logging.getLogger(__name__)

#: the paper setting whose features and hyperparameters a method uses on the curve
DEFAULT_SETTINGS = {"avca": "avca.{ds}_cls", "tcaf": "tcaf.{ds}_cls", "clipclap": "clipclap.{ds}", "avdiff": "avdiff.{ds}_5shot"}
SHOTS = (0, 1, 5, 10, 20)


@dataclass(frozen=True)
class CurveEntry:
    """One method on the curve, resolved from its paper setting.

    Attributes:
        label: the name shown (the method's registry name).
        method: registry name.
        model: the method's validated config.
        data: the GZSL data the points are drawn from (``cls`` split).
        train: optimisation settings (base phase = ``train.epochs``).
        protocol: GFSL settings (beta grid of the setting; full phase length).
        gzsl_betas: (start, stop, num) of the GZSL beta grid, or None (no k = 0 point).
    """

    label: str
    method: str
    model: Any
    data: DataConfig
    train: TrainConfig
    protocol: GFSLProtocolConfig
    gzsl_betas: tuple[float, float, int] | None


def _gzsl_data(data: DataConfig) -> DataConfig:
    """The :class:`DataConfig` fields of a (GFSL) data config, on the ``cls`` split."""
    return DataConfig(**{f.name: getattr(data, f.name) for f in fields(DataConfig)}) if type(data) is not DataConfig else data


def synthetic_preset(data: DataConfig) -> str:
    """The ``lowshot data synth`` preset that imitates a setting's features."""
    if "clip" in data.text or "clap" in data.text:
        return "clipclap"
    return "cls_averaged" if data.feature_dir == "cls_features" else "cls_temporal"


def method_overrides(method: str, overrides: list[str] | tuple[str, ...]) -> list[str]:
    """The overrides that apply to ``method``: plain ``key=value`` ones and ``<method>:key=value`` ones."""
    out = []
    for item in overrides:
        head, sep, rest = item.partition(":")
        if sep and "=" not in head:
            if head == method:
                out.append(rest)
        else:
            out.append(item)
    return out


def resolve_entry(method: str, dataset: str, overrides: list[str] | tuple[str, ...] = ()) -> CurveEntry:
    """A method's curve entry from its default paper setting (or a setting name) plus overrides
    (``key=value`` for every method, ``<method>:key=value`` for one)."""
    setting = DEFAULT_SETTINGS.get(method, method).format(ds=dataset.lower())
    raw = load_paper_config(setting, method_overrides(method, overrides))
    if raw["recipe"] == "gfsl":
        exp, model = parse_gfsl_experiment({**raw, "data": {**raw.get("data", {}), "synthetic": None, "draws": "generated"}})
        data = replace(_gzsl_data(exp.data), split="cls")
        return CurveEntry(exp.method, exp.method, model, data, exp.train, exp.protocol, None)
    if raw["recipe"] != "gzsl":
        raise ConfigError(f"{setting}: the low-shot curve runs audio-visual settings (recipe gzsl or gfsl), not {raw['recipe']}")
    exp, model = parse_experiment(raw)
    protocol = GFSLProtocolConfig(beta_grid=exp.protocol.beta_grid, epochs_fine_tune=exp.train.epochs)
    return CurveEntry(exp.method, exp.method, model, replace(exp.data, split="cls"), exp.train, protocol,
                      exp.protocol.beta_grid)  # fmt: skip


def fit_gzsl_point(entry: CurveEntry, bench: GZSLBenchmark, seed: int) -> dict[str, float]:
    """k = 0: the two-stage GZSL protocol; B/N/HM/FSL = S/U/HM/ZSL x100."""
    method_cls = method_of_family(entry.method, GZSLMethod, "gzsl")
    spec, device = input_spec(bench), resolve_device(entry.train.device, "train.device")

    def make_trainer(stage: int) -> MethodTrainer:
        seed_everything(seed + 1000 * stage)
        return MethodTrainer(method_cls(entry.model, spec), bench, stage, entry.train, seed, device)

    assert entry.gzsl_betas is not None
    res = TwoStageProtocol(entry.train.epochs, beta_grid(*entry.gzsl_betas)).fit(bench, make_trainer).result_.percent()
    return {"B": res["S"], "N": res["U"], "HM": res["HM"], "FSL": res["ZSL"]}


def fit_point(entry: CurveEntry, bench: GZSLBenchmark, k: int, seed: int) -> dict[str, float]:
    """One point: the GZSL protocol at k = 0, else the GFSL protocol on the seed's k-shot draws."""
    if k == 0:
        return fit_gzsl_point(entry, bench, seed)
    s = fit_gfsl(entry.method, entry.model, gfsl_from_gzsl(bench, k, seed), entry.train, entry.protocol, seed).summary()
    return {m: s[m] for m in ("B", "N", "HM", "FSL")}


@dataclass(frozen=True)
class PointStore:
    """Finished points of one method, one JSON file each, tied to the setting and data that made them.

    Attributes:
        folder: where the point files live (``<out>/points``).
        digest: SHA-256 of the resolved entry and the data fingerprint.
    """

    folder: Path
    digest: str

    @classmethod
    def for_entry(cls, folder: Path, entry: CurveEntry, data_digest: Any) -> PointStore:
        text = json.dumps({"entry": repr(entry), "data": data_digest}, sort_keys=True, default=str)
        return cls(Path(folder), hashlib.sha256(text.encode()).hexdigest())

    def path(self, label: str, k: int, seed: int) -> Path:
        return self.folder / f"{label}_k{k}_seed{seed}.json"

    def get(self, label: str, k: int, seed: int) -> dict[str, float] | None:
        """The finished point, or None.

        Raises:
            ConfigError: the file was written by another setting or other data.
        """
        path = self.path(label, k, seed)
        if not path.is_file():
            return None
        record = read_json(path)
        if not isinstance(record, dict) or record.get("digest") != self.digest:
            raise ConfigError(
                f"{path}: this point was computed with another setting or other data; "
                "use another --out or delete the file to recompute it"
            )
        return record["point"]

    def put(self, label: str, k: int, seed: int, point: dict[str, float]) -> None:
        atomic_write_json(self.path(label, k, seed), {"digest": self.digest, "point": point})


def curve_points(
    entry: CurveEntry,
    bench: GZSLBenchmark,
    shots: tuple[int, ...],
    seeds: tuple[int, ...],
    store: PointStore | None = None,
) -> list[dict[str, Any]]:
    """Every (k, seed) point of one method on one GZSL benchmark.

    Args:
        store: where finished points are kept and reused (None: compute every point).

    Returns:
        ``[{"method", "k", "seed", "B", "N", "HM", "FSL"}]`` (x100); k = 0 is skipped for
        methods without a GZSL protocol (AV-Diff).
    """
    out = []
    for seed in seeds:
        for k in shots:
            if k == 0 and entry.gzsl_betas is None:
                continue
            point = store.get(entry.label, k, seed) if store is not None else None
            if point is None:
                point = fit_point(entry, bench, k, seed)
                if store is not None:
                    store.put(entry.label, k, seed, point)
            log.info("%s k=%d seed=%d: %s", entry.label, k, seed, point)
            out.append({"method": entry.label, "k": k, "seed": seed, **point})
    return out


def run_curve(
    methods: list[str],
    dataset: str,
    out: Path,
    shots: tuple[int, ...] = SHOTS,
    seeds: tuple[int, ...] = (0,),
    overrides: list[str] | tuple[str, ...] = (),
    synthetic_size: float | None = None,
    data_root: Path | None = None,
) -> list[dict[str, Any]]:
    """Run the curve for ``methods`` (``lowshot.reports.lowshot_curve.write_curve`` writes its table and plot).

    Args:
        methods: registry names (default settings) or paper-setting names.
        dataset: ``ucf`` | ``activitynet`` | ``vggsound``.
        out: output folder (synthetic data goes to ``out/data/<preset>``, finished points to
            ``out/points``: a rerun reuses them).
        shots: k values (0 = GZSL).
        seeds: training and draw seeds.
        overrides: ``key=value`` overrides applied to every setting (e.g. ``train.epochs=2``).
        synthetic_size: generate synthetic data of this size (raised until the largest k fits).
        data_root: root of the released GZSL features otherwise.
    """
    out = Path(out)
    rows: list[dict[str, Any]] = []
    for name in methods:
        entry = resolve_entry(name, dataset, overrides)
        data = entry.data
        if synthetic_size is not None:
            size = kshot_synthetic_size(data.dataset, max(shots), synthetic_size)
            data = replace(data, synthetic=synthetic_preset(data), synthetic_size=size)
        entry = replace(entry, data=data)
        data_dir = out / "data" / (data.synthetic or "released")
        bench = load_benchmark(data, data_root, data_dir)
        fingerprint = data_fingerprint(data, benchmark_root(data, data_root, data_dir), bench)
        store = PointStore.for_entry(out / "points", entry, fingerprint)
        rows += curve_points(entry, bench, tuple(shots), tuple(seeds), store)
    return rows
