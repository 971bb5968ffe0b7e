"""Every Table 6.2 baseline setting (and E.5's MLP + Act Mod) runs on the built-in synthetic data."""

from __future__ import annotations

from pathlib import Path

import pytest

from lowshot.config.paper import load_paper_config
from lowshot.recipes.adverbs import run_adverbs

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = {
    "tirg": {"emb_dim": 8, "heads": 2},
    "action_modifier": {"heads": 2, "d_k": 8, "adverb_start": 1},
    "ac_cls": {"heads": 2, "d_k": 8, "hidden": [8]},
    "ac_reg": {"heads": 2, "d_k": 8, "hidden": [8]},
}


@pytest.mark.parametrize(
    "name",
    [
        "priors_vatex",
        "s3d_pretrained_vatex",
        "clip_vatex",
        "tirg_vatex",
        "action_modifier_vatex",
        "ac_cls_vatex",
        "ac_reg_vatex",
        "mlp_action_modifier_air_seeds",
    ],
)
def test_table_6_2_baseline_runs_on_synthetic_data(
    name: str, synth_root: Path, tmp_path: Path
) -> None:
    cfg = load_paper_config(f"adverbs_baselines.{name}")
    method = name.rsplit("_", 1)[0].removesuffix("_air")
    cfg["data"] = {"dataset": "vatex", "trust_pickle": True, "video_dim": 16, "joint_dim": 8}
    cfg["model"] = (cfg.get("model") or {}) | SMALL.get(method.removeprefix("mlp_"), {})
    if method == "mlp_action_modifier":
        cfg["model"]["video_mlp"] = [8]
    cfg.pop("text", None)  # the synthetic S3D text module (CLIP's text cache is not offline)
    cfg["train"] = {"epochs": 2, "batch_size": 32, "lr": 1e-3, "eval_interval": 1, "seeds": [0]}
    res = run_adverbs(cfg, tmp_path / name, synth_root)
    assert set(res.means()) == {"map_w", "map_m", "acc_a"}
    assert all(0.0 <= v <= 1.0 for v in res.means().values())
    assert res.expected == load_paper_config(f"adverbs_baselines.{name}")["provenance"][
        "expected"
    ]
