"""AV-Diff: registration, config errors, phases (freezing, generation), and learning on tiny GFSL data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from av_tiny import tiny_spec
from gfsl_tiny import TINY_AVDIFF

from lowshot._registry import METHODS
from lowshot.data.av.fsl import gfsl_from_gzsl
from lowshot.errors import ConfigError
from lowshot.methods.av.avdiff import AVDiff, AVDiffConfig
from lowshot.methods.gfsl import GFSLInputSpec
from lowshot.protocols.gfsl import start_phase
from lowshot.recipes.gfsl import GFSLProtocolConfig, fit_gfsl
from lowshot.recipes.gzsl_config import TrainConfig
from lowshot.recipes.gzsl_trainer import MethodTrainer

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = TINY_AVDIFF


def _spec() -> GFSLInputSpec:
    from dataclasses import asdict

    return GFSLInputSpec(**asdict(tiny_spec()), num_classes=20)


def test_registered_and_config_errors() -> None:
    assert METHODS.get("avdiff") is AVDiff
    with pytest.raises(ConfigError, match="fusion='full'"):
        AVDiffConfig(modalities="audio")
    with pytest.raises(ConfigError, match="attention_switch"):
        AVDiffConfig(depth=2, attention_switch=3)
    with pytest.raises(ConfigError, match="model.attention is a TCaF setting"):
        AVDiffConfig(attention="full")
    with pytest.raises(ConfigError, match="number of classes"):
        AVDiff(AVDiffConfig(**TINY), tiny_spec())


def test_hybrid_schedule_reaches_the_transformer() -> None:
    m = AVDiff(AVDiffConfig(**{**TINY, "depth": 4, "attention_switch": 2}), _spec())
    assert m.net.fusion.patterns == ("self", "self", "full", "full")
    m = AVDiff(AVDiffConfig(**{**TINY, "fusion": "alternate", "depth": 3}), _spec())
    assert m.net.fusion.patterns == ("self", "full", "self")


def test_full_phase_freezes_fusion_and_generates_for_novel_samples(tiny_temporal) -> None:
    torch.manual_seed(0)
    m = AVDiff(AVDiffConfig(**TINY), _spec())
    fs = tiny_temporal.splits["stage_1_train"]
    base = np.arange(10)
    m.start_phase("base", base, np.zeros(0, np.int64))
    idx = np.arange(0, len(fs), 8)
    batch = m.collate(fs, idx, fs.labels[idx], True)
    emb = torch.as_tensor(tiny_temporal.class_embeddings[base])
    out = m.training_loss(batch, emb)
    assert set(out["loss_terms"]) == {"ce", "diffusion"}
    assert all(p.requires_grad for p in m.net.fusion_parameters())
    # full phase: classes 0..9 base + 10..13 novel, novel samples in the batch get generated twins
    view = gfsl_from_gzsl(tiny_temporal, 2).phase(1, "full")
    train, classes = view.stage_train(1), view.train_classes(1)
    m.start_phase("full", classes, np.arange(10, 14))
    assert not any(p.requires_grad for p in m.net.fusion_parameters())
    assert all(p.requires_grad for p in m.net.classifier.parameters())
    idx = np.flatnonzero(train.labels >= 8)
    batch = m.collate(train, idx, np.searchsorted(classes, train.labels[idx]), True)
    out = m.training_loss(batch, torch.as_tensor(tiny_temporal.class_embeddings[classes]))
    assert set(out["loss_terms"]) == {"ce", "diffusion", "ce_generated"}
    out["loss"].backward()
    assert m.net.fusion.transformer.layers[0].attn.to_qkv.weight.grad is None
    scores = m.class_scores(batch, torch.as_tensor(tiny_temporal.class_embeddings))
    assert scores.shape == (len(idx), 20)
    assert torch.allclose(scores.sum(1), torch.ones(len(idx))) and (scores[:, 14:] == 0).all()


def test_base_phase_classifies_over_all_classes_of_the_stage(tiny_temporal) -> None:
    """Published: CL_net has one output per class of the stage (base + novel, AVDIFF-GFSL main.py
    logits_length), so the base-phase CE and the base-phase validation softmax range over the
    novel classes too (their logits are trained down before any novel sample is seen)."""
    torch.manual_seed(0)
    bench = gfsl_from_gzsl(tiny_temporal, 2)
    view = bench.phase(1, "base")
    m = AVDiff(AVDiffConfig(**TINY), _spec())
    start_phase(m, view, "base", bench.partition.novel_1)
    stage = np.union1d(view.train_classes(1), bench.partition.novel_1)
    assert len(m.novel_) == 0 and m.classes_.tolist() == stage.tolist()
    train = view.stage_train(1)
    idx = np.arange(0, len(train), 4)
    batch = m.collate(train, idx, np.searchsorted(view.train_classes(1), train.labels[idx]), True)
    assert m._logits(m.embed(batch)[0]).shape == (len(idx), len(stage))
    m.eval()
    with torch.no_grad():
        scores = m.class_scores(batch, torch.as_tensor(tiny_temporal.class_embeddings))
    assert (scores[:, bench.partition.novel_1] > 0).all() and torch.allclose(scores.sum(1), torch.ones(len(idx)))
    assert (np.delete(scores.numpy(), stage, axis=1) == 0).all()


def test_full_phase_alternates_base_and_novel_steps_with_generated_twins(tiny_temporal) -> None:
    """Published fine-tune (AVDIFF-GFSL src/train.py:train_step_two_dataloaders): per configured
    batch, one optimiser step on B real base samples (class-balanced over the base classes, CE +
    diffusion), then one on B real novel shots (class-balanced over the novel classes) with B
    generated novel features, one per real novel sample (CE real + CE generated + diffusion)."""
    torch.manual_seed(0)
    bench = gfsl_from_gzsl(tiny_temporal, 2)
    view = bench.phase(1, "full")
    m = AVDiff(AVDiffConfig(**TINY), _spec())
    start_phase(m, view, "full", bench.partition.novel_1)
    novel = m.novel_.numpy()
    assert len(novel) and np.isin(view.stage_train(1).labels, novel).mean() < 0.5  # novel shots are a minority
    batches: list[np.ndarray] = []  # labels of each training batch
    terms: list[set[str]] = []
    ce_generated: list[float] = []
    generated: list[int] = []  # size of each generated batch
    loss, generate = m.training_loss, m.generate

    def logged_loss(batch, emb):
        out = loss(batch, emb)
        batches.append(batch.labels.numpy())
        terms.append(set(out["loss_terms"]))
        if "ce_generated" in out["loss_terms"]:
            ce_generated.append(float(out["loss_terms"]["ce_generated"]))
        return out

    m.training_loss = logged_loss
    m.generate = lambda cond: generated.append(len(cond)) or generate(cond)
    B = 8
    train = TrainConfig(batch_size=B, n_batches=3, device="cpu", progress=False)
    steps = []
    trainer = MethodTrainer(m, view, 1, train, 0, torch.device("cpu"))
    step = trainer.optimizer.step
    trainer.optimizer.step = lambda *a, **k: steps.append(1) or step(*a, **k)
    logged = trainer.train_epoch(0)
    assert len(batches) == 6 and len(steps) == 6 and generated == [B] * 3
    # the epoch log averages a term over the steps that have it (the 3 novel steps), not all 6
    assert logged["ce_generated"] == pytest.approx(np.mean(ce_generated), rel=1e-5)
    for i, labels in enumerate(batches):
        is_novel = np.isin(labels, novel)
        assert len(labels) == B and is_novel.all() == bool(i % 2) and is_novel.any() == bool(i % 2)
        assert terms[i] == ({"ce", "diffusion", "ce_generated"} if i % 2 else {"ce", "diffusion"})


def test_ce_on_generated_features_trains_the_noise_predictor(tiny_temporal) -> None:
    """Published: the generated features keep their graph, so the CE on them reaches epsilon_theta
    through the whole reverse chain (thesis §4.4.3: the diffusion model trains on L_ce + L_diff)."""
    torch.manual_seed(0)
    m = AVDiff(AVDiffConfig(**TINY), _spec())
    m.start_phase("full", np.arange(14), np.arange(10, 14))
    m.train()
    fake = m.generate(torch.randn(5, _spec().text_dim))
    torch.nn.functional.cross_entropy(m._logits(fake), m._rows(torch.tensor([10, 11, 12, 13, 10]))).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.net.eps_model.parameters())


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_gfsl_learns_novel_classes_above_chance(tiny_temporal, seed: int) -> None:
    bench = gfsl_from_gzsl(tiny_temporal, 2, seed=seed)
    train = TrainConfig(epochs=4, batch_size=32, n_batches=8, lr=3e-3, device="cpu", seeds=(seed,), progress=False)
    proto = fit_gfsl("avdiff", AVDiffConfig(**TINY), bench, train, GFSLProtocolConfig(epochs_fine_tune=4), seed)
    out = proto.summary()
    chance_novel = 100 / 6  # FSL: 6 stage-2 novel classes
    assert out["FSL"] > 2 * chance_novel, out
    assert out["N"] > 100 / 20, out


def test_wgan_losses_update_only_their_own_side() -> None:
    from lowshot.losses.wgan import wgan_gp_losses
    from lowshot.models.av.avdiff import ConditionedMLP

    torch.manual_seed(0)
    gen, critic = ConditionedMLP(4, 3, 8, 4), ConditionedMLP(4, 3, 8, 1)
    cond, real = torch.randn(16, 3), torch.randn(16, 4)
    d_loss, g_loss = wgan_gp_losses(critic, real, gen(torch.randn(16, 4), cond), cond)
    g_loss.backward(retain_graph=True)
    assert all(p.grad is None for p in critic.parameters()) and all(p.grad is not None for p in gen.parameters())
    gen.zero_grad(set_to_none=True)
    d_loss.backward()
    assert all(p.grad is None for p in gen.parameters()) and all(p.grad is not None for p in critic.parameters())


def test_wgan_generator_variant_trains_and_generates(tiny_temporal) -> None:
    torch.manual_seed(0)
    m = AVDiff(AVDiffConfig(**{**TINY, "generator": "wgan"}), _spec())
    assert not hasattr(m.net, "ddpm")
    view = gfsl_from_gzsl(tiny_temporal, 2).phase(1, "full")
    train, classes = view.stage_train(1), view.train_classes(1)
    m.start_phase("full", classes, np.arange(10, 14))
    idx = np.flatnonzero(train.labels >= 8)
    batch = m.collate(train, idx, np.searchsorted(classes, train.labels[idx]), True)
    out = m.training_loss(batch, torch.as_tensor(tiny_temporal.class_embeddings[classes]))
    assert set(out["loss_terms"]) == {"ce", "critic", "generator", "ce_generated"}
    out["loss"].backward()
    assert all(p.grad is not None for p in m.net.gan_g.parameters())
