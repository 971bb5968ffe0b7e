"""ClipClap-GZSL: every ablation switch of Tables 5.2–5.4 builds, trains and scores."""

import pytest
import torch

from lowshot.data.av.batch import Batch
from lowshot.errors import ConfigError
from lowshot.methods.av.clipclap import ClipClap, ClipClapConfig
from lowshot.methods.base import InputSpec

SPEC = InputSpec(audio_dim=1024, video_dim=512, text_dim=1536)


def batch(n=8, classes=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    targets = torch.randint(0, classes, (n,), generator=g)
    return Batch(torch.randn(n, 1024, generator=g), torch.randn(n, 512, generator=g), targets, targets)


@pytest.mark.parametrize(
    "switch",
    [
        {},
        {"label_embeddings": "clip"},
        {"label_embeddings": "clap"},
        {"modality": "audio", "label_embeddings": "clap"},
        {"modality": "visual", "label_embeddings": "clip"},
        {"losses": ("reg",)},
        {"losses": ("ce", "reg")},
    ],
)
def test_ablation_switches_train_and_score(switch):
    torch.manual_seed(0)
    method = ClipClap(ClipClapConfig(**switch), SPEC)
    emb = torch.randn(5, 1536)
    b = batch()
    out = method.training_loss(b, emb)
    assert set(out["loss_terms"]) == set(method.config.losses)
    out["loss"].backward()
    grads = {n for n, p in method.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert any(n.startswith("net.o_enc") for n in grads)
    method.eval()
    scores = method.class_scores(b, emb)
    assert scores.shape == (8, 5) and torch.all(scores <= 0)  # negative distances


def test_modality_switch_ignores_the_other_modality():
    torch.manual_seed(0)
    method = ClipClap(ClipClapConfig(modality="visual"), SPEC).eval()
    b1, b2 = batch(seed=1), batch(seed=1)
    b2.audio = torch.randn_like(b2.audio)
    emb = torch.randn(5, 1536)
    torch.testing.assert_close(method.class_scores(b1, emb), method.class_scores(b2, emb))


def test_label_embedding_switch_reads_only_its_slice():
    torch.manual_seed(0)
    method = ClipClap(ClipClapConfig(label_embeddings="clip"), SPEC).eval()
    emb = torch.randn(5, 1536)
    other = emb.clone()
    other[:, 512:] = 0  # CLAP part changed
    b = batch()
    torch.testing.assert_close(method.class_scores(b, emb), method.class_scores(b, other))


def test_losses_reduce_on_a_fixed_batch():
    torch.manual_seed(0)
    method = ClipClap(ClipClapConfig(), SPEC)
    opt = torch.optim.Adam(method.parameters(), lr=1e-3)
    b, emb = batch(n=32), torch.randn(5, 1536)
    first = None
    for _ in range(30):
        loss = method.training_loss(b, emb)["loss"]
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first


def test_bad_switches_are_config_errors():
    with pytest.raises(ConfigError, match="at least one"):
        ClipClap(ClipClapConfig(losses=()), SPEC)
    with pytest.raises(ConfigError, match="clip_text_dim"):
        ClipClap(ClipClapConfig(label_embeddings="clap"), InputSpec(1024, 512, 300))


def test_joint_space_is_non_negative():
    torch.manual_seed(0)
    method = ClipClap(ClipClapConfig(), SPEC)
    b, emb = batch(n=16), torch.randn(5, 1536)
    method.training_loss(b, emb)["loss"].backward()  # move BN running stats off their init
    method.eval()
    assert torch.all(method.embed(b) >= 0)
    assert torch.all(method.embed_classes(emb) >= 0)


def test_legacy_train_extra_pass_updates_batchnorm_statistics_only():
    """The published train_step's extra get_embeddings call in training mode: off by default."""
    b, emb = batch(n=16), torch.randn(5, 1536)
    torch.manual_seed(0)
    default = ClipClap(ClipClapConfig(), SPEC).train()
    before = {k: v.clone() for k, v in default.state_dict().items()}
    default.after_step(b, emb)
    for k, v in default.state_dict().items():
        torch.testing.assert_close(v, before[k])

    zero = dict(embedding_dropout=0.0, decoder_dropout=0.0, additional_dropout=0.0)
    legacy = ClipClap(ClipClapConfig(legacy_train_extra_pass=True, **zero), SPEC).train()
    legacy.load_state_dict(before)
    legacy.after_step(b, emb)
    expected = ClipClap(ClipClapConfig(**zero), SPEC).train()
    expected.load_state_dict(before)
    with torch.no_grad():  # get_embeddings: O_enc, O_proj on the batch; W_enc, W_proj on w_i
        expected.net.w_proj(expected.net.w_enc(emb[b.targets]))
        expected.net.o_proj(expected.net.o_enc(torch.cat([b.video, b.audio], 1)))
    changed = set()
    for k, v in legacy.state_dict().items():
        torch.testing.assert_close(v, expected.state_dict()[k])
        if not torch.equal(v, before[k]):
            changed.add(k.rsplit(".", 1)[0])
    # the five BatchNorms of O_enc, O_proj (2), W_enc and W_proj; no weights, no decoder
    assert changed == {"net.o_enc.1", "net.o_proj.0.1", "net.o_proj.1.1", "net.w_enc.1", "net.w_proj.1"}
