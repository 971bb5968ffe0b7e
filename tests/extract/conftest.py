"""Tiny media and tiny random-initialised checkpoints of the ported encoders (made in-process)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lowshot.data.av.featureset import STAGES
from lowshot.extract.base import save_checkpoint
from lowshot.extract.c3d import C3D
from lowshot.extract.media import write_test_video
from lowshot.extract.vggish import VGGish

COLOURS = {"alpha": ((220, 30, 30), 330.0), "beta": ((30, 220, 30), 660.0), "gamma": ((30, 30, 220), 990.0),
           "delta": ((220, 220, 30), 1320.0)}
#: classes per stage folder (alpha/beta seen, gamma val-unseen, delta test-unseen)
STAGE_CLASSES = {"stage_1_train": ["alpha", "beta"], "stage_1_val_seen": ["alpha", "beta"],
                 "stage_1_val_unseen": ["gamma"], "stage_2_test_seen": ["alpha", "beta", "gamma"],
                 "stage_2_test_unseen": ["delta"]}


@pytest.fixture(scope="session")
def tiny_ckpts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny VGGish (128-d out) and C3D (4096-d fc7) checkpoints of the real architectures."""
    import torch

    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("ckpt")
    return {"vggish": save_checkpoint(VGGish((4, 4, 8, 8), 16, 128), d / "vggish.safetensors"),
            "c3d": save_checkpoint(C3D((2, 2, 4, 4, 4), 8, 4096), d / "c3d.safetensors")}


@pytest.fixture(scope="session")
def stage_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """INPUT/<stage>/<class>/<video>.mp4: 0.7 s clips (coloured square + tone), 1 per class and stage,
    plus a truncated file and a file without audio in stage_1_train/alpha."""
    root = tmp_path_factory.mktemp("media")
    for stage in STAGES:
        for c in STAGE_CLASSES[stage]:
            colour, tone = COLOURS[c]
            (root / stage / c).mkdir(parents=True)
            write_test_video(root / stage / c / "v0.mp4", seconds=0.7, colour=colour, tone_hz=tone)
    good = (root / "stage_1_train/alpha/v0.mp4").read_bytes()
    (root / "stage_1_train/alpha/broken.mp4").write_bytes(good[: len(good) // 3])
    write_test_video(root / "stage_1_train/alpha/silent.mp4", seconds=0.5, tone_hz=None)
    (root / "stage_1_train/alpha/empty.mp4").write_bytes(b"")
    return root
