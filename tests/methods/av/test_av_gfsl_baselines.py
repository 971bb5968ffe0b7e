"""GFSL baselines of Table 4.2: one hand-checkable piece per method, and a tiny GFSL run of each
(through the gfsl recipe's ``fit_gfsl``) with novel accuracy above chance."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest
import torch
from av_tiny import make_benchmark, tiny_spec

from lowshot._registry import METHODS
from lowshot.config.schema import from_dict
from lowshot.data.av.batch import Batch
from lowshot.data.av.fsl import gfsl_from_gzsl
from lowshot.errors import ConfigError
from lowshot.layers.masks import AUDIO, VIDEO
from lowshot.methods.av.avca import AVCA, AVCAConfig
from lowshot.methods.av.hip import HiP, HiPConfig, time_groups
from lowshot.methods.av.mbt import MBT, MBTConfig
from lowshot.methods.av.protogan import ProtoGan, ProtoGanConfig
from lowshot.methods.av.sldg import gaussian_weights
from lowshot.methods.av.tsl import TSL, TSLConfig, segment_means
from lowshot.methods.av.zorro import FUSION, Zorro, ZorroConfig, zorro_mask
from lowshot.methods.gfsl import GFSLInputSpec
from lowshot.models.av.tcaf import TemporalInput
from lowshot.recipes.gfsl import GFSLProtocolConfig, fit_gfsl
from lowshot.recipes.gzsl_config import TrainConfig

pytestmark = pytest.mark.usefixtures("one_thread")

T = dict(dim=32, encoder_hidden=32, decoder_hidden=32, dim_out=16, pos_dim=8, depth=2, heads=2, dim_head=8, mlp_dim=32)
#: tiny model blocks of every baseline (the learning runs)
TINY = {
    "mbt": {**T, "fusion_layer": 0, "bottlenecks": 2},
    "zorro": {**T, "fusion_tokens": 4},
    "hip": {k: v for k, v in T.items() if k != "depth"} | {"groups": (2, 1), "latents": 4},
    "sldg": {"dim": 32, "encoder_hidden": 32, "decoder_hidden": 32, "dim_out": 16},
    "tsl": {"classifier_hidden": 32, "gan_hidden": 32, "noise_dim": 8, "segment_seconds": 2.0},
    "protogan": {"classifier_hidden": 32, "gan_hidden": 32, "noise_dim": 8},
    "avca": {"dim": 32, "encoder_hidden": 32, "decoder_hidden": 32, "dim_out": 16, "heads": 2, "dim_head": 8,
             "mlp_dim": 32, "gfsl_classifier": True},
    "tcaf": T,
}  # fmt: skip


def _spec() -> GFSLInputSpec:
    return GFSLInputSpec(**asdict(tiny_spec()), num_classes=20)


def _batch(bench, method, n: int = 6) -> Batch:
    fs = bench.splits["stage_1_train"]
    idx = np.arange(0, len(fs), len(fs) // n)[:n]
    return method.collate(fs, idx, fs.labels[idx], False)


def _perturbed(batch: Batch, modality: str, steps: slice = slice(None)) -> Batch:
    x = getattr(batch, modality).clone()
    x[:, steps] += 3.0 * torch.randn_like(x[:, steps])
    return Batch(**{**batch.__dict__, modality: x})


def test_registered_and_need_the_number_of_classes() -> None:
    for name in ("protogan", "sldg", "tsl", "hip", "mbt", "zorro"):
        assert name in METHODS
    with pytest.raises(ConfigError, match="number of classes"):
        MBT(MBTConfig(**T), tiny_spec())
    with pytest.raises(ConfigError, match="number of classes"):
        AVCA(AVCAConfig(gfsl_classifier=True), tiny_spec())
    with pytest.raises(ConfigError, match="fusion_layer"):
        MBTConfig(**{**T, "fusion_layer": 3})
    with pytest.raises(ConfigError, match="each dividing the previous"):
        HiPConfig(groups=(3, 2))
    with pytest.raises(ConfigError, match="model.objective is a TCaF setting"):
        ZorroConfig(objective="reg")
    with pytest.raises(ConfigError, match="model.depth is a TCaF setting"):
        HiPConfig(depth=2)


@torch.no_grad()
def test_mbt_modalities_meet_only_in_the_bottleneck(tiny_temporal) -> None:
    """The video class token ignores the audio unless a bottleneck written by one fusion layer is
    read by the next (fusion from layer 0 of 2; from layer 1 the last bottleneck update is unused)."""
    torch.manual_seed(0)
    for fusion_layer, depends in ((2, False), (1, False), (0, True)):
        m = MBT(MBTConfig(**{**T, "fusion_layer": fusion_layer}), _spec()).eval()
        batch = _batch(tiny_temporal, m)
        before, after = m.streams(batch), m.streams(_perturbed(batch, "audio"))
        assert torch.allclose(before["video"], after["video"], atol=1e-6) != depends
        assert not torch.allclose(before["audio"], after["audio"], atol=1e-6)


def test_zorro_mask_by_hand() -> None:
    ids = torch.tensor([AUDIO, AUDIO, VIDEO, FUSION])
    valid = torch.tensor([[True, False, True, True]])
    expected = torch.tensor([[1, 0, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0], [1, 0, 1, 1]], dtype=torch.bool)
    # row 1 (a padded audio query) keeps its valid audio key; fusion sees every valid token
    assert torch.equal(zorro_mask(ids, valid)[0], expected)


@torch.no_grad()
def test_zorro_unimodal_streams_do_not_see_the_other_modality(tiny_temporal) -> None:
    torch.manual_seed(0)
    m = Zorro(ZorroConfig(**T), _spec()).eval()
    batch = _batch(tiny_temporal, m)
    (out, ids), (out2, _) = m.forward_tokens(batch), m.forward_tokens(_perturbed(batch, "video"))
    valid_a = batch.audio_mask
    audio = out[:, ids == AUDIO][valid_a]
    assert torch.allclose(audio, out2[:, ids == AUDIO][valid_a], atol=1e-6)
    assert not torch.allclose(out[:, ids == FUSION], out2[:, ids == FUSION], atol=1e-4)


def test_hip_groups_by_hand() -> None:
    valid = torch.tensor([[True] * 4 + [False] * 2, [True] * 6])
    assert time_groups(valid, 2).tolist() == [[0, 0, 1, 1, 1, 1], [0, 0, 0, 1, 1, 1]]


@torch.no_grad()
def test_hip_first_level_latents_are_group_local(tiny_temporal) -> None:
    """Level-0 latents of group 0 ignore the second half of the clip; the top level does not."""
    torch.manual_seed(0)
    m = HiP(HiPConfig(**TINY["hip"]), _spec()).eval()
    batch = _batch(tiny_temporal, m)
    # shift the second half of every modality's valid steps (group 1 of level 0)
    a, v = batch.audio.clone(), batch.video.clone()
    for x, mask in ((a, batch.audio_mask), (v, batch.video_mask)):
        n = mask.sum(1)
        for b in range(len(n)):
            half = int(n[b]) // 2 + int(n[b]) % 2  # steps t with floor(2 t / n) = 1
            x[b, half : int(n[b])] += 3.0
    moved = Batch(**{**batch.__dict__, "audio": a, "video": v})
    before, after = m.levels(batch), m.levels(moved)
    k = m.config.latents
    assert torch.allclose(before[0][:, :k], after[0][:, :k], atol=1e-6)
    assert not torch.allclose(before[0][:, k:], after[0][:, k:], atol=1e-4)
    assert not torch.allclose(before[-1], after[-1], atol=1e-4)


def test_sldg_gaussian_weights_by_hand() -> None:
    valid = torch.tensor([[True, True, True, True, False]])
    w = gaussian_weights(valid, torch.tensor([0.5]), torch.tensor([0.25]))[0, 0]
    u = (np.arange(4) + 0.5) / 4
    pdf = np.exp(-0.5 * ((u - 0.5) / 0.25) ** 2)
    assert np.allclose(w[:4].numpy(), pdf / pdf.sum(), atol=1e-6) and w[4] == 0


def test_tsl_segments_and_averaged_segment_scores() -> None:
    x = TemporalInput(torch.tensor([[[1.0], [3.0], [10.0], [0.0]]]), torch.tensor([[True, True, True, False]]),
                      torch.tensor([[0.0, 1.0, 2.5, 3.0]]))  # fmt: skip
    means, counts = segment_means(x, 2.0, 2)
    assert means[0, :, 0].tolist() == [2.0, 10.0] and counts[0].tolist() == [2.0, 1.0]
    torch.manual_seed(0)
    m = TSL(TSLConfig(**TINY["tsl"]), _spec()).eval()
    bench = make_benchmark(temporal=True)
    batch = _batch(bench, m, 2)
    with torch.no_grad():
        seg, valid = m.segments(batch)
        by_hand = torch.stack([m.segment_logits(seg[b, valid[b]]).softmax(-1).mean(0) for b in range(len(seg))])
        assert valid.sum(1).min() >= 2  # several segments per video
        assert torch.allclose(m.probs(batch), by_hand, atol=1e-6)


def test_protogan_prototypes_are_class_means_and_condition_the_generator(tiny_averaged) -> None:
    torch.manual_seed(0)
    m = ProtoGan(ProtoGanConfig(**TINY["protogan"]), _spec())
    fs = tiny_averaged.splits["stage_1_train"]
    idx = np.arange(len(fs))
    batch = m.collate(fs, idx, fs.labels[idx], True)
    m.training_loss(batch, torch.as_tensor(tiny_averaged.class_embeddings))
    x = m.inputs(batch)
    for c in (0, 3):
        assert torch.allclose(m.prototypes(torch.tensor([c]))[0], x[batch.labels == c].mean(0), atol=1e-5)
    p = m.prototypes(torch.tensor([0, 3]))
    torch.manual_seed(1)
    g0 = m.generator(p[:1])
    torch.manual_seed(1)
    g3 = m.generator(p[1:])
    assert not torch.allclose(g0, g3, atol=1e-4)  # same noise, other prototype, other feature


def test_avca_gfsl_classifier_scores_are_phase_probabilities(tiny_averaged) -> None:
    torch.manual_seed(0)
    m = AVCA(AVCAConfig(**TINY["avca"]), _spec())
    m.start_phase("base", np.arange(10), np.zeros(0, np.int64))
    batch = _batch(tiny_averaged, m)
    emb = torch.as_tensor(tiny_averaged.class_embeddings)
    out = m.training_loss(batch, emb[:10])
    assert "ce" in out["loss_terms"]
    scores = m.eval().class_scores(batch, emb)
    assert torch.allclose(scores.sum(1), torch.ones(len(batch))) and (scores[:, 10:] == 0).all()


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name", sorted(TINY))
def test_gfsl_learns_novel_classes_above_chance(tiny_temporal, name: str, seed: int) -> None:
    bench = gfsl_from_gzsl(tiny_temporal, 2, seed=seed)
    train = TrainConfig(epochs=4, batch_size=32, n_batches=8, lr=3e-3, device="cpu", seeds=(seed,), progress=False)
    cfg = from_dict(METHODS.get(name).Config, TINY[name])
    out = fit_gfsl(name, cfg, bench, train, GFSLProtocolConfig(epochs_fine_tune=4), seed).summary()
    assert out["FSL"] > 2 * 100 / 6, out  # FSL: 6 stage-2 novel classes
    assert out["N"] > 100 / 20, out  # N: among all 20 classes
