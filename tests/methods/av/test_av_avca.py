"""AVCA: shapes, every ablation switch, losses, negatives, evaluation variants."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from av_tiny import AVCA_TINY, tiny_spec

from lowshot._registry import METHODS
from lowshot.errors import ConfigError
from lowshot.losses.triplet import sample_negatives
from lowshot.methods.av.avca import AVCA, OBJECTIVE_TERMS, AVCAConfig

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = AVCA_TINY

ABLATIONS = {
    "full": {},
    "visual_branch_only_input": dict(inputs="video", branches="video", fusion="none"),  # Table 2.3
    "audio_branch_only_input": dict(inputs="audio", branches="audio", fusion="none"),
    "without_cross_attention": dict(fusion="none"),  # Table 2.4
    "visual_with_x_att": dict(branches="video"),
    "audio_with_x_att": dict(branches="audio"),
    "eval_theta_a": dict(eval_output="audio"),  # Table 2.5
    "eval_sum": dict(eval_output="sum"),
    "eval_min": dict(eval_output="min"),
    **{
        f"minus_{t}": dict(drop_loss=t) for t in ("l_t", "l_rec", "l_ct", "l_w", "l_r")
    },  # Table 2.6
    "x_att_with_l_c": dict(objective="l_c"),  # Table A.3
}


def _method(**kw: object) -> AVCA:
    torch.manual_seed(0)
    return AVCA(AVCAConfig(**{**SMALL, **kw}), tiny_spec(temporal=False))


def _batch(method: AVCA, bench, n: int = 32, train: bool = True):
    fs = bench.splits["stage_1_train"]
    idx = np.arange(0, len(fs), max(1, len(fs) // n))[:n]
    return method.collate(fs, idx, fs.labels[idx] if train else None, train)


def test_registered() -> None:
    assert METHODS.get("avca") is AVCA


@pytest.mark.parametrize("name", sorted(ABLATIONS))
def test_every_ablation_trains_and_scores(name: str, tiny_averaged) -> None:
    method = _method(**ABLATIONS[name])
    emb = torch.as_tensor(tiny_averaged.class_embeddings)
    batch = _batch(method, tiny_averaged)
    out = method.training_loss(batch, emb)
    terms = out["loss_terms"]
    assert set(terms) == {"l_t", "l_rec", "l_ct", "l_w", "l_r"}
    assert out["loss"].ndim == 0 and torch.isfinite(out["loss"])
    dropped = ABLATIONS[name].get("drop_loss")
    summed = OBJECTIVE_TERMS[ABLATIONS[name].get("objective", "l")]
    expected = sum(terms[k] for k in summed if k != dropped)
    torch.testing.assert_close(out["loss"], expected)
    out["loss"].backward()
    # A_rec/V_rec only serve l_r
    unused = "net.rec." if dropped == "l_r" or "l_r" not in summed else "-"
    for pname, p in method.named_parameters():
        assert (p.grad is None) == pname.startswith(unused), pname  # every other parameter is used
        assert p.grad is None or torch.isfinite(p.grad).all()
    method.eval()
    with torch.no_grad():
        scores = method.class_scores(_batch(method, tiny_averaged, train=False), emb)
    assert scores.shape == (len(batch), emb.shape[0]) and (scores <= 0).all()


def test_l_c_objective_is_the_composite_loss_of_the_cross_attention_model(tiny_averaged) -> None:
    """Table A.3 "W x-att with l_c loss": same network, loss l_c = l_rec + l_ct + l_w (Eq. 2.6);
    l_t and l_r are computed for logging but give no gradient."""
    emb = torch.as_tensor(tiny_averaged.class_embeddings)
    full, l_c = _method(), _method(objective="l_c")
    l_c.load_state_dict(full.state_dict())
    batch = _batch(full, tiny_averaged)
    torch.manual_seed(1)
    out_full = full.training_loss(batch, emb)
    torch.manual_seed(1)
    out_c = l_c.training_loss(batch, emb)
    t = out_c["loss_terms"]
    torch.testing.assert_close(out_c["loss"], t["l_rec"] + t["l_ct"] + t["l_w"])
    torch.testing.assert_close(out_full["loss"] - out_c["loss"], t["l_t"] + t["l_r"])
    assert (t["l_t"] + t["l_r"]) > 0  # so the two objectives differ on this batch
    out_c["loss"].backward()
    assert l_c.net.cross_attention is not None
    assert l_c.net.cross_attention.layers[0].attn.to_qkv.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in l_c.net.rec.parameters())  # A_rec/V_rec serve l_r only
    with pytest.raises(ConfigError, match="not a term of objective='l_c'"):
        AVCAConfig(objective="l_c", drop_loss="l_t")


def test_unimodal_models_ignore_the_other_modality(tiny_averaged) -> None:
    method = _method(inputs="video", branches="video", fusion="none").eval()
    emb = torch.as_tensor(tiny_averaged.class_embeddings)
    batch = _batch(method, tiny_averaged, train=False)
    s1 = method.class_scores(batch, emb)
    batch.audio = torch.randn_like(batch.audio)
    torch.testing.assert_close(method.class_scores(batch, emb), s1)


def test_eval_variants_are_consistent(tiny_averaged) -> None:
    emb = torch.as_tensor(tiny_averaged.class_embeddings)
    scores = {}
    for kind in ("video", "audio", "sum", "mean", "min"):
        m = _method(eval_output=kind).eval()
        scores[kind] = m.class_scores(_batch(m, tiny_averaged, train=False), emb)
    torch.testing.assert_close(scores["sum"], scores["video"] + scores["audio"])
    torch.testing.assert_close(scores["mean"], scores["sum"] / 2)
    torch.testing.assert_close(scores["min"], torch.maximum(scores["video"], scores["audio"]))


@pytest.mark.parametrize(
    "kw",
    [
        dict(inputs="audio"),
        dict(fusion="none", branches="video"),
        dict(branches="audio", eval_output="video"),
        dict(branches="video", eval_output="min"),
    ],
)
def test_inconsistent_switches_are_config_errors(kw: dict) -> None:
    with pytest.raises(ConfigError):
        AVCAConfig(**kw)


def test_negatives_are_other_class_samples_and_class_uniform() -> None:
    labels = torch.tensor([0] * 8 + [1] * 1 + [2] * 1)
    gen = torch.Generator().manual_seed(0)
    picks = torch.stack([sample_negatives(labels, gen) for _ in range(2000)])
    assert (labels[picks] != labels[None, :]).all()
    # anchors of class 0: classes 1 and 2 equally likely although each has one sample
    share_1 = (labels[picks[:, :8]] == 1).float().mean()
    assert 0.45 < share_1 < 0.55
    # anchors of class 1: the 8 class-0 samples together get half of the picks
    assert 0.45 < (labels[picks[:, 8]] == 0).float().mean() < 0.55
    # a batch with one class falls back to random indices instead of failing
    assert sample_negatives(torch.zeros(5, dtype=torch.long)).shape == (5,)


def test_loss_decreases_on_a_fixed_batch(tiny_averaged) -> None:
    method = _method(embedding_dropout=0.0, decoder_dropout=0.0, additional_dropout=0.0)
    emb = torch.as_tensor(tiny_averaged.class_embeddings)[:10]
    batch = _batch(method, tiny_averaged, n=64)
    opt = torch.optim.Adam(method.parameters(), lr=3e-3)
    torch.manual_seed(1)
    first = method.training_loss(batch, emb)["loss"].item()
    for _ in range(60):
        loss = method.training_loss(batch, emb)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first


def test_temporal_features_are_averaged(tiny_temporal) -> None:
    method = _method()
    fs = tiny_temporal.splits["stage_1_train"]
    batch = method.collate(fs, np.array([0, 5]), None, False)
    np.testing.assert_allclose(batch.audio[1].numpy(), np.asarray(fs.audio[5]).mean(0), rtol=1e-5)


def _tracked(module: torch.nn.Module) -> list[int]:
    return [int(m.num_batches_tracked) for m in module.modules() if isinstance(m, torch.nn.BatchNorm1d)]


def test_legacy_fixed_position_is_not_optimised(tiny_averaged) -> None:
    emb = torch.as_tensor(tiny_averaged.class_embeddings)
    for fixed in (False, True):
        method = _method(legacy_fixed_position=fixed)
        before = method.net.pos.detach().clone()
        opt = torch.optim.Adam([p for p in method.parameters() if p.requires_grad], lr=1e-2, weight_decay=1e-5)
        method.training_loss(_batch(method, tiny_averaged), emb)["loss"].backward()
        opt.step()
        assert torch.equal(method.net.pos, before) == fixed
        assert ("net.pos" in dict(method.named_parameters())) and method.net.pos.requires_grad != fixed


def test_legacy_negatives_are_a_separate_class_uniform_batch(tiny_averaged) -> None:
    method = _method(legacy_negatives=True)
    fs = tiny_averaged.splits["stage_1_train"]
    classes = np.unique(fs.labels)
    targets_of = {c: i for i, c in enumerate(classes)}
    anchors = np.flatnonzero(fs.labels == classes[0])[:4]
    idx = np.repeat(anchors, 500)
    batch = method.collate(fs, idx, np.array([targets_of[c] for c in fs.labels[idx]]), True,
                           np.random.default_rng(0))
    n = len(idx)
    assert len(batch) == 2 * n
    neg_labels = batch.labels[n:].numpy()
    assert (neg_labels != classes[0]).all()
    # every other training class (not only those of the batch) is drawn, uniformly
    share = np.bincount(np.searchsorted(classes, neg_labels), minlength=len(classes))[1:] / n
    assert np.allclose(share, 1 / (len(classes) - 1), atol=0.04)
    assert np.array_equal(batch.targets[n:].numpy(), np.searchsorted(classes, neg_labels))
    terms = method.training_loss(batch, torch.as_tensor(tiny_averaged.class_embeddings)[classes])
    assert torch.isfinite(terms["loss"])
    # anchors and negatives are separate forwards: two BatchNorm updates per block and step
    assert set(_tracked(method.net.enc)) == {2} and set(_tracked(method.net.w_proj)) == {2}


def test_legacy_bn_passes_only_move_running_statistics(tiny_averaged) -> None:
    emb = torch.as_tensor(tiny_averaged.class_embeddings)
    runs = {}
    for legacy in (False, True):
        method = _method(legacy_bn_passes=legacy)
        batch = _batch(method, tiny_averaged)
        torch.manual_seed(3)
        terms = method.training_loss(batch, emb)
        runs[legacy] = (method, terms["loss"].detach())
    plain, legacy = runs[False][0], runs[True][0]
    torch.testing.assert_close(runs[True][1], runs[False][1])  # same loss, same dropout draws
    assert set(_tracked(plain.net.proj)) == {1}
    # published: proj(theta) + proj(rec(theta)) + the train-mode get_embeddings pass
    assert set(_tracked(legacy.net.proj)) == {3} and set(_tracked(legacy.net.enc)) == {2}
    hidden_bn = [m.net.proj["video"][0][1].running_mean for m in (plain, legacy)]
    assert not torch.allclose(*hidden_bn)
