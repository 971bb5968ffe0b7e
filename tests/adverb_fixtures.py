"""Fixtures of the video-adverb tests (a pytest plugin, loaded by tests/conftest.py): small
synthetic datasets in the released layout, and single-threaded torch for the modules that
ask for it (``pytestmark = pytest.mark.usefixtures("one_thread")``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lowshot.data.adverbs.synth import SynthSpec, generate

TINY = SynthSpec(
    n_clips=240, n_adverb_pairs=3, n_actions=6, video_dim=16, joint_dim=8, t_min=2, t_max=5, seed=3
)


@pytest.fixture()
def one_thread():
    """Small models run far faster single-threaded on a shared 2-core CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny synthetic VATEX-layout dataset (string ids, variable lengths, duplicates)."""
    root = tmp_path_factory.mktemp("adverb_synth")
    generate(root, TINY)
    return root


@pytest.fixture(scope="session")
def synth_int_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny synthetic HowTo100M-layout dataset with integer clip ids."""
    root = tmp_path_factory.mktemp("adverb_synth_int")
    generate(
        root,
        SynthSpec(
            **{**TINY.__dict__, "dataset": "HowTo100M_Adverbs", "int_ids": True, "unseen": False}
        ),
    )
    return root
