"""`lowshot extract --ray local`: the Ray Data pipeline gives the in-process features in bounded safetensors
shards (issue #13 item 6)."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open

from lowshot.extract import pipeline
from lowshot.extract.av import build_encoders

pytest.importorskip("av", reason="PyAV (extra 'extract') is not installed")
ray = pytest.importorskip("ray", reason="Ray (extra 'scale') is not installed")

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.slow]


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_pipeline_gives_the_in_process_features(stage_tree: Path, tiny_ckpts: dict[str, Path], tmp_path: Path,
                                                   local_ray: None) -> None:
    spec = {"audio": ("av.vggish", str(tiny_ckpts["vggish"])), "video": ("av.c3d", str(tiny_ckpts["c3d"]))}
    encs = build_encoders(spec)
    items = pipeline.scan_stage_tree(stage_tree)
    one = pipeline.extract_all(items, encs, tmp_path / "c1", progress=False)
    build = functools.partial(build_encoders, spec)
    two = pipeline.extract_all(items, encs, tmp_path / "c2", progress=False, workers=2, build=build, ray="local",
                               shard_size=5)
    shards = sorted((tmp_path / "c2").glob("shard-*.safetensors"))
    sizes = [len(json.loads(safe_open(f, "np").metadata()["videos"])) for f in shards]
    assert sum(sizes) == len(items) and max(sizes) <= 5 and len(shards) >= 3  # bounded shards, no per-video file
    assert not list((tmp_path / "c2").glob("*.npz"))
    assert sorted(one.features) == sorted(two.features) and len(one.features) > 0
    assert sorted(s["video"] for s in two.skipped) == sorted(s["video"] for s in one.skipped)
    assert [s["reason"] for s in sorted(two.skipped, key=str)] == [s["reason"] for s in sorted(one.skipped, key=str)]
    for k, f in one.features.items():
        for m in ("audio", "video"):
            np.testing.assert_allclose(two.features[k][m], f[m], atol=1e-5)
    # resumable: a finished cache is read back, nothing is submitted again
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "c2").iterdir()}
    pipeline.extract_all(items, encs, tmp_path / "c2", progress=False, workers=2, build=build, ray="local")
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "c2").iterdir()} == before
