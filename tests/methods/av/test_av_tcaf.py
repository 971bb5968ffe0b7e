"""TCaF: shapes, every ablation switch, time embedding, normalisation, masking, losses."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from av_tiny import TCAF_TINY, tiny_spec

from lowshot._registry import METHODS
from lowshot.errors import ConfigError
from lowshot.layers.input_norm import normalize_features
from lowshot.methods.av.tcaf import TCaF, TCaFConfig
from lowshot.methods.base import InputSpec

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = TCAF_TINY
NO_DROPOUT = dict(
    embedding_dropout=0.0,
    token_dropout=0.0,
    transformer_dropout=0.0,
    decoder_dropout=0.0,
    additional_dropout=0.0,
)

ABLATIONS = {
    "tcaf": {},
    "no_class_token_cross": dict(readout="mean"),  # Table 3.3
    "no_class_token_self": dict(readout="mean", attention="self"),
    "no_class_token_full": dict(readout="mean", attention="full"),
    "class_token_self": dict(attention="self"),
    "class_token_full": dict(attention="full"),
    "audio_only": dict(modalities="audio", attention="full"),  # Table 3.4
    "video_only": dict(modalities="video", attention="full"),
    "no_time_embedding": dict(time_embedding="none"),  # Table B.1
    "one_layer": dict(depth=1),  # Table B.2
    "no_feed_forward": dict(feed_forward=False),
    "averaged_input": dict(inputs="averaged", readout="mean"),  # Table B.3
    "triplet": dict(objective="ce_reg_rec_triplet"),
    "att_from_avca": dict(attention_block="avca", attention="full"),
    "reg_only": dict(objective="reg"),  # Table 3.2
    "reg_ce": dict(objective="ce_reg"),
    "fixed_seqlen": dict(seqlen_mode="fixed", train_maxlen=4, eval_maxlen=6),
    "legacy_all": dict(
        input_norm="legacy_tcaf",
        legacy_bn_over_padding=True,
        legacy_eval_integer_timesteps=True,
        legacy_audio_len=True,
        legacy_train_integer_time_pass=True,
        legacy_window_relative_time=True,
        seqlen_mode="fixed",
        train_maxlen=4,
    ),
}


def _method(spec: InputSpec | None = None, **kw: object) -> TCaF:
    torch.manual_seed(0)
    return TCaF(TCaFConfig(**{**SMALL, **kw}), spec or tiny_spec())


def _batch(method: TCaF, bench, n: int = 24, train: bool = True, seed: int = 0):
    fs = bench.splits["stage_1_train"]
    idx = np.random.default_rng(seed).choice(len(fs), n, replace=False)
    return method.collate(
        fs, idx, fs.labels[idx] if train else None, train, np.random.default_rng(seed)
    )


def test_registered() -> None:
    assert METHODS.get("tcaf") is TCaF


@pytest.mark.parametrize("name", sorted(ABLATIONS))
def test_every_ablation_trains_and_scores(name: str, tiny_temporal) -> None:
    cfg = ABLATIONS[name]
    method = _method(**cfg)
    emb = torch.as_tensor(tiny_temporal.class_embeddings)
    batch = _batch(method, tiny_temporal)
    assert batch.audio.ndim == 3 and batch.audio_mask.shape == batch.audio.shape[:2]
    out = method.training_loss(batch, emb)
    terms = out["loss_terms"]
    expected_terms = {
        "ce_reg_rec": {"ce", "reg", "rec"},
        "ce_reg": {"ce", "reg"},
        "reg": {"reg"},
        "ce_reg_rec_triplet": {"ce", "reg", "rec", "triplet"},
    }[cfg.get("objective", "ce_reg_rec")]
    assert set(terms) == expected_terms
    torch.testing.assert_close(out["loss"], sum(terms.values()))
    out["loss"].backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in method.parameters())
    assert method.net.transformer.layers[0].attn.to_qkv.weight.grad is not None
    method.eval()
    with torch.no_grad():
        scores = method.class_scores(_batch(method, tiny_temporal, train=False), emb)
    assert scores.shape == (24, emb.shape[0]) and torch.isfinite(scores).all()


def test_attention_maps_follow_the_cross_pattern(tiny_temporal) -> None:
    method = _method().eval()
    batch = _batch(method, tiny_temporal, n=4, train=False)
    _, maps = method.embed(batch, return_attention=True)
    ta = batch.audio.shape[1]
    assert len(maps) == 2
    a = maps[0]  # [B, H, N, N]
    audio_rows = slice(1, 1 + ta)
    assert torch.all(a[:, :, audio_rows, 1 : 1 + ta] == 0)  # A_x: no audio -> audio attention
    assert torch.all(a[:, :, 1 + ta :, 1 + ta :] == 0)  # nor video -> video
    assert torch.all(
        a[:, :, 0, 1 : 1 + ta][~batch.audio_mask[:, None].expand(-1, 2, -1)] == 0
    )  # padding


def test_attention_block_from_avca(tiny_temporal) -> None:
    """Table B.3 "TC_AF + att from [157]": one time-averaged token per modality, full attention
    (the audio token attends to itself, which TCaF's A_x forbids), and a residual connection
    around the whole block: c_o = x^c + Block([x^c, mean(a), mean(v)])[0]."""
    method = _method(attention_block="avca", attention="full", **NO_DROPOUT).eval()
    tcaf = _method(**NO_DROPOUT).eval()
    assert method.net.transformer.layers[0].norm_ff is not None  # AVCA: two LayerNorms per layer
    assert tcaf.net.transformer.layers[0].norm_ff is None  # TCaF: one shared
    batch = _batch(method, tiny_temporal, n=6, train=False)
    assert not bool(batch.audio_mask.all())  # padded sequences: the means are over valid steps
    inputs = method._inputs(batch)
    net = method.net
    with torch.no_grad():
        means = []
        for m in ("audio", "video"):
            tok, mask = net._encode(m, inputs[m]), inputs[m].mask
            means.append(torch.stack([tok[i, mask[i]].mean(0) for i in range(len(tok))]))
        seq = torch.cat([net.cls_token.expand(6, -1, -1), torch.stack(means, 1)], dim=1)
        h = seq
        for layer in net.transformer.layers:  # full attention: no mask at all
            h, _ = layer(h)
        expected = seq[:, 0] + h[:, 0]
        c_o, maps = net(inputs, return_attention=True)
        torch.testing.assert_close(c_o, expected, rtol=1e-5, atol=1e-5)
        assert maps[0].shape[-2:] == (3, 3) and bool((maps[0][:, :, 1, 1] > 0).all())
        # the computation is not TCaF's
        tcaf.load_state_dict(method.state_dict(), strict=False)
        assert not torch.allclose(tcaf.net(inputs)[0], c_o, atol=1e-3)
    with pytest.raises(ConfigError, match="attention='full'"):
        TCaFConfig(attention_block="avca")


def test_padding_does_not_change_scores(tiny_temporal) -> None:
    method = _method().eval()
    fs = tiny_temporal.splits["stage_1_train"]
    emb = torch.as_tensor(tiny_temporal.class_embeddings)
    lengths = fs.video.lengths
    short, long = int(np.argmin(lengths)), int(np.argmax(lengths))
    alone = method.class_scores(method.collate(fs, np.array([short]), None, False), emb)
    padded = method.class_scores(method.collate(fs, np.array([short, long]), None, False), emb)
    torch.testing.assert_close(padded[:1], alone, rtol=1e-4, atol=1e-4)


def test_time_embedding_sees_seconds_in_training_and_evaluation(tiny_temporal) -> None:
    emb = torch.as_tensor(tiny_temporal.class_embeddings)
    default = _method().eval()
    legacy = _method(legacy_eval_integer_timesteps=True).eval()
    legacy.load_state_dict(default.state_dict())
    batch = _batch(default, tiny_temporal, train=False)
    np.testing.assert_allclose(batch.video_times[0, :3].numpy(), [0, 0.64, 1.28], rtol=1e-6)
    np.testing.assert_allclose(batch.audio_times[0, :3].numpy(), [0, 0.96, 1.92], rtol=1e-6)
    # evaluation with seconds == training-mode embedding path; legacy differs
    theta, _ = default.embed(batch)
    inputs = default._inputs(batch)
    c_o, _ = default.net(inputs)
    torch.testing.assert_close(theta, default.net.o_proj(c_o))
    assert not torch.allclose(legacy.class_scores(batch, emb), default.class_scores(batch, emb))
    # without a time embedding the legacy switch is irrelevant
    a, b = (
        _method(time_embedding="none").eval(),
        _method(time_embedding="none", legacy_eval_integer_timesteps=True),
    )
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(a.class_scores(batch, emb), b.eval().class_scores(batch, emb))


def test_masked_batchnorm_statistics_equal_valid_steps_only(tiny_temporal) -> None:
    """Encoder BatchNorm statistics come from valid steps only (published: padding included)."""
    fs = tiny_temporal.splits["stage_1_train"]
    idx = np.arange(8)
    for legacy, expect_equal in ((False, True), (True, False)):
        m = _method(legacy_bn_over_padding=legacy, **NO_DROPOUT)
        bn = m.net.enc["video"][0][1]  # first BatchNorm of V_enc
        bn.momentum = 1.0  # running stats := last batch stats
        batch = m.collate(fs, idx, None, True)
        m.net._encode("video", m._inputs(batch)["video"])
        valid_steps = batch.video[batch.video_mask]
        ref = m.net.enc["video"][0][0](valid_steps).mean(0)
        assert torch.allclose(bn.running_mean, ref.detach(), atol=1e-5) == expect_equal


def test_input_normalisation_per_family() -> None:
    x = torch.tensor([[[0.0, 255.0], [127.5, 51.0]]])
    torch.testing.assert_close(
        normalize_features(x, "vggish", "audio", "per_family"),
        torch.tensor([[[-2.0, 2.0], [0.0, -1.2]]]),
    )
    torch.testing.assert_close(normalize_features(x, "vggish", "audio", "legacy_tcaf"), x / 255)
    v = torch.tensor([[[3.0, 0.0], [4.0, 1.0]]])
    per_step = normalize_features(v, "c3d", "video", "per_family")
    torch.testing.assert_close(per_step.norm(dim=-1), torch.ones(1, 2))
    over_time = normalize_features(v, "c3d", "video", "legacy_tcaf")
    torch.testing.assert_close(over_time.norm(dim=1), torch.ones(1, 2))  # published: over time
    torch.testing.assert_close(normalize_features(v, "selavi", "video", "per_family"), v)
    torch.testing.assert_close(normalize_features(v, "c3d", "video", "none"), v)


def test_single_modality_needs_full_attention() -> None:
    with pytest.raises(ConfigError, match="attention='full'"):
        TCaFConfig(modalities="audio")


def test_dense_features_are_rejected(tiny_averaged) -> None:
    m = _method()
    with pytest.raises(TypeError, match="temporal"):
        m.collate(tiny_averaged.splits["stage_1_train"], np.arange(4), None, False)


def test_loss_decreases_on_a_fixed_batch(tiny_temporal) -> None:
    method = _method(**NO_DROPOUT)
    emb = torch.as_tensor(tiny_temporal.class_embeddings)[:10]
    batch = _batch(method, tiny_temporal, n=40)
    opt = torch.optim.Adam(method.parameters(), lr=3e-3)
    first = method.training_loss(batch, emb)["loss"].item()
    for _ in range(30):
        loss = method.training_loss(batch, emb)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first


def _bn_stats(method: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in method.state_dict().items() if "running_" in k}


def test_legacy_train_integer_time_pass(tiny_temporal) -> None:
    """The published train_step's extra get_embeddings call: a gradient-free training-mode
    pass with integer positions; it changes BatchNorm running statistics only."""
    emb = torch.as_tensor(tiny_temporal.class_embeddings)
    default = _method(**NO_DROPOUT).train()
    batch = _batch(default, tiny_temporal, n=12)
    before = {k: v.clone() for k, v in default.state_dict().items()}
    default.after_step(batch, emb)  # off by default: nothing changes
    for k, v in default.state_dict().items():
        torch.testing.assert_close(v, before[k])

    legacy = _method(legacy_train_integer_time_pass=True, **NO_DROPOUT).train()
    legacy.load_state_dict(before)
    legacy.after_step(batch, emb)
    expected = _method(**NO_DROPOUT).train()
    expected.load_state_dict(before)
    with torch.no_grad():  # what get_embeddings runs: encoders, transformer, O_proj, W_proj(w_i)
        c_o, _ = expected.net(expected._inputs(batch, integer_times=True))
        expected.net.o_proj(c_o)
        expected.net.w_proj(emb[batch.targets])
    got, want = _bn_stats(legacy), _bn_stats(expected)
    for k in want:
        torch.testing.assert_close(got[k], want[k])
    o_proj_mean = "net.o_proj.1.1.running_mean"
    assert not torch.allclose(got[o_proj_mean], before[o_proj_mean])
    with torch.no_grad():  # ... from integer positions, not from seconds
        seconds = _method(**NO_DROPOUT).train()
        seconds.load_state_dict(before)
        seconds.net.o_proj(seconds.net(seconds._inputs(batch))[0])
    assert not torch.allclose(got[o_proj_mean], _bn_stats(seconds)[o_proj_mean])
    assert all(p.grad is None for p in legacy.parameters())


def test_trainer_runs_the_after_step_hook(tiny_temporal) -> None:
    from lowshot.recipes.gzsl_config import TrainConfig
    from lowshot.recipes.gzsl_trainer import MethodTrainer

    method = _method(legacy_train_integer_time_pass=True)
    calls = []
    method.after_step = lambda batch, emb: calls.append((len(batch), emb.shape))  # type: ignore[method-assign]
    trainer = MethodTrainer(
        method, tiny_temporal, 1, TrainConfig(n_batches=3, batch_size=8), 0, torch.device("cpu")
    )
    trainer.train_epoch(0)
    assert calls == [(8, trainer.train_embeddings.shape)] * 3


def test_window_relative_times_only_with_the_legacy_switch(tiny_temporal) -> None:
    """fixed mode: times are absolute in the video by default, from the window start with
    ``legacy_window_relative_time`` (published collator); max mode: both start at 0."""
    fs = tiny_temporal.splits["stage_1_train"]
    long = np.argsort(fs.video.lengths)[-6:]  # longer than the 3-step window
    assert fs.video.lengths[long].min() > 3
    cfg = dict(seqlen_mode="fixed", train_maxlen=3, eval_maxlen=3)
    absolute = _method(**cfg).collate(fs, long, None, False)
    relative = _method(legacy_window_relative_time=True, **cfg).collate(fs, long, None, False)
    torch.testing.assert_close(absolute.video, relative.video)
    start_v = (fs.video.lengths[long] - 3) // 2  # centred crop
    np.testing.assert_allclose(absolute.video_times[:, 0].numpy(), start_v * 0.64, rtol=1e-6)
    np.testing.assert_allclose(relative.video_times.numpy(), np.tile([0, 0.64, 1.28], (6, 1)), rtol=1e-6)
    assert relative.audio_times[:, 0].eq(0).all() and absolute.audio_times[:, 0].gt(0).any()
    torch.testing.assert_close(
        absolute.video_times - absolute.video_times[:, :1], relative.video_times
    )
    whole_a = _method().collate(fs, long, None, False)
    whole_r = _method(legacy_window_relative_time=True).collate(fs, long, None, False)
    torch.testing.assert_close(whole_a.video_times, whole_r.video_times)
    torch.testing.assert_close(whole_a.audio_times, whole_r.audio_times)


@pytest.mark.parametrize(
    "name",
    ["tcaf", "no_class_token_cross", "no_class_token_self", "class_token_self", "class_token_full",
     "audio_only", "video_only", "att_from_avca", "fixed_seqlen"],
)  # fmt: skip
@pytest.mark.parametrize("pack", [True, False])
@pytest.mark.parametrize("block_from", [0, 10**9])
def test_block_sparse_attention_equals_the_dense_masked_path(
    name: str, pack: bool, block_from: int, tiny_temporal, monkeypatch
) -> None:
    """The fused attention (block-sparse from ``block_from`` tokens on, else over all scores
    with the dense mask) and the explicit path over the dense ``[B, N, N]`` mask give the same
    output token and the same gradients, on padded batches."""
    from lowshot.layers import attention

    monkeypatch.setattr(attention, "BLOCK_SPARSE_MIN_TOKENS", block_from)
    method = _method(**{**ABLATIONS[name], **NO_DROPOUT})
    method.net.pack_tokens = pack
    batch = _batch(method, tiny_temporal, n=12)
    if name != "fixed_seqlen":  # (fixed windows of 4 steps: every step valid)
        assert not bool(batch.audio_mask.all()) and not bool(batch.video_mask.all())
    inputs = method._inputs(batch)
    params = [p for p in method.net.parameters() if p.requires_grad]
    out = {}
    for dense in (False, True):
        c_o, _ = method.net(inputs, return_attention=dense)
        out[dense] = (c_o, torch.autograd.grad(c_o.square().sum(), params, allow_unused=True))
    torch.testing.assert_close(out[False][0], out[True][0], rtol=1e-5, atol=1e-5)
    for a, b in zip(out[False][1], out[True][1]):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
