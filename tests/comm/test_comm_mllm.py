"""Tiny random LLaVA / Qwen2-VL / PaliGemma built from configs: generation, log-probs,
LoRA targeting and swapping, pi_0 via disabled adapters, one update of each algorithm."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("peft")

from lowshot.comm.adapt import AlgoConfig, kto_update, ppo_update  # noqa: E402
from lowshot.comm.games import sample_rei_episodes  # noqa: E402
from lowshot.comm.mllm import (  # noqa: E402
    FAMILIES,
    MLLM,
    MLLMListener,
    MLLMSpeaker,
    load_mllm,
)
from lowshot.comm.policy import LoraSpec, SamplingConfig, SpeakerPolicy  # noqa: E402
from lowshot.comm.tiny import tiny_llava, tiny_paligemma, tiny_qwen2_vl  # noqa: E402
from lowshot.comm.world import WorldConfig, scene_pool, vocabulary  # noqa: E402
from lowshot.errors import ConfigError  # noqa: E402

WORDS = vocabulary() + ["left", "right", "image", "the", "Picture", "1", "2", "A", "B", "segment"]
BUILDERS = {"llava": tiny_llava, "qwen2_vl": tiny_qwen2_vl, "paligemma": tiny_paligemma}


@pytest.fixture(scope="module")
def episodes():
    rng = np.random.default_rng(0)
    return sample_rei_episodes(scene_pool(8, rng, WorldConfig(), "t"), 3, rng)


def _policy(name: str):
    torch.manual_seed(0)
    model, proc = BUILDERS[name](WORDS)
    mllm = MLLM(FAMILIES.get(name)(), model, proc, max_new_tokens=4)
    pol = SpeakerPolicy(model, mllm.tokenizer, MLLMSpeaker(mllm).encode_rei, LoraSpec(r=4, alpha=8),
                        mllm.family.pass_position_ids)
    return mllm, pol


@pytest.mark.parametrize("name", list(BUILDERS))
def test_tiny_mllm_listener_and_speaker_paths(name, episodes):
    mllm, pol = _policy(name)
    answers = MLLMListener(mllm).answer([e.listener_images for e in episodes], ["red cube"] * 3)
    assert len(answers) == 3 and all(isinstance(a, str) for a in answers)
    pol.add_adapter("colorblind")
    n_lora = sum(1 for n, _ in pol.model.named_modules() if n.endswith("lora_A"))
    n_layers = mllm.model.config.get_text_config().num_hidden_layers
    assert n_lora == 7 * n_layers  # LLM linear layers only: no vision tower, projector, lm_head
    assert not any("lora" in n for n, _ in pol.model.named_parameters()
                   if "vision" in n or "visual" in n or "projector" in n)
    torch.manual_seed(1)
    roll = pol.sample(episodes, SamplingConfig(max_new_tokens=4))
    assert roll.tokens.shape[0] == 3 and roll.mask.shape == roll.tokens.shape
    lp, v = pol.logprobs(roll, values=True)
    assert lp.shape == roll.tokens.shape and v.shape == roll.tokens.shape
    assert torch.isfinite(lp[roll.mask.bool()]).all()
    with pol.reference():
        ref, _ = pol.logprobs(roll)
    assert torch.allclose(lp, ref, atol=1e-5)  # LoRA B = 0: the adapter starts at pi_0

    # one update of each algorithm moves the adapter away from pi_0
    rewards = np.array([1.0, -1.0, 1.0])
    for algo in ("ppo", "nlpo", "kto"):
        pol.add_adapter(algo)
        opt = torch.optim.Adam(pol.trainable_parameters(), lr=1e-2)
        kw = {}
        if algo == "nlpo":
            kw = dict(mask_adapter=pol.snapshot(), mask_top_p=0.9, min_tokens_to_keep=2)
        r = pol.sample(episodes, SamplingConfig(max_new_tokens=2), **kw)
        assert (r.action_masks is not None) == (algo == "nlpo")
        update = kto_update if algo == "kto" else ppo_update
        stats = update(pol, opt, r, rewards, AlgoConfig(name=algo, ppo_epochs=1))
        assert np.isfinite(stats["loss"])
        with torch.no_grad():
            new, _ = pol.logprobs(r)
            with pol.reference():
                base, _ = pol.logprobs(r)
        assert not torch.allclose(new, base, atol=1e-6)
    # swapping adapters without reloading: the untouched first adapter is still pi_0
    pol.use("colorblind")
    with torch.no_grad():
        again, _ = pol.logprobs(roll)
    assert torch.allclose(again, ref, atol=1e-5)
    assert set(pol.adapter_names()) >= {"colorblind", "ppo", "nlpo", "kto"}


def test_paligemma_segments_from_loc_and_seg_tokens(episodes, mask_decoder_npz):
    from lowshot.comm.segmentation import MaskDecoder, segmentation_tokens

    mllm, _ = _policy("paligemma")
    images = [e.listener_images[0] for e in episodes]
    with pytest.raises(ConfigError, match="mask_decoder"):
        MLLMListener(mllm).segment(images, ["red"] * 3)
    listener = MLLMListener(mllm, MaskDecoder.from_npz(mask_decoder_npz))
    masks = listener.segment(images, ["red"] * 3)
    assert [m.shape for m in masks] == [(64, 64)] * 3 and all(m.dtype == bool for m in masks)
    # the tokenizer round-trips <loc>/<seg> answers, which decode to masks inside the box
    answer = segmentation_tokens((8.0, 8.0, 40.0, 40.0), np.arange(16), 64, 64)
    ids = mllm.tokenizer(answer, add_special_tokens=False)["input_ids"]
    assert len(ids) == 20 and mllm.tokenizer.unk_token_id not in ids
    listener.mllm.generate = lambda imgs, prompts, **k: [mllm.tokenizer.decode(ids)] * len(imgs)
    m = listener.segment(images[:1], ["red"])[0]
    assert m.any() and not m[:, 41:].any() and not m[41:].any()


def test_adapter_state_roundtrip(tmp_path, episodes):
    from lowshot.utils.io import load_state, save_state

    _, pol = _policy("llava")
    pol.add_adapter("first")
    for p in pol.trainable_parameters():
        torch.nn.init.normal_(p, std=0.05)
    roll = pol.sample(episodes, SamplingConfig(max_new_tokens=3))
    with torch.no_grad():
        before, _ = pol.logprobs(roll)
    save_state(tmp_path / "a.safetensors", pol.adapter_state())
    pol.add_adapter("second")
    pol.load_adapter_state(load_state(tmp_path / "a.safetensors"), "second")
    with torch.no_grad():
        after, _ = pol.logprobs(roll)
    assert torch.allclose(before, after, atol=1e-5)


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="not available offline"):
        load_mllm("llava", tmp_path / "no-such-model")
    with pytest.raises(ConfigError, match="did you mean"):
        load_mllm("lava", tmp_path)


def _clevr_layout(root, n: int = 4, seed: int = 0) -> None:
    """``root/CLEVR_v1.0`` with ``n`` rendered 2-object scenes per split (train, val)."""
    import json

    from lowshot.comm.render import render, sample_scene, scene_to_clevr

    rng = np.random.default_rng(seed)
    root = root / "CLEVR_v1.0"
    for split in ("train", "val"):
        scenes = []
        (root / "images" / split).mkdir(parents=True)
        for i in range(n):
            s = sample_scene(rng, n_objects=2, width=96, height=64)
            entry = scene_to_clevr(s, split, i)
            render(s).save(root / "images" / split / entry["image_filename"])
            scenes.append(entry)
        (root / "scenes").mkdir(exist_ok=True)
        (root / "scenes" / f"CLEVR_{split}_scenes.json").write_text(json.dumps({"scenes": scenes}))


def test_recipe_on_clevr_layout_with_local_tiny_llava(tmp_path):
    """The dataset path of the recipe: CLEVR files + an MLLM speaker loaded from a local dir."""
    from lowshot.recipes.comm import comm_recipe

    _clevr_layout(tmp_path / "data")
    model, proc = tiny_llava(WORDS)
    model.save_pretrained(tmp_path / "data" / "tiny-llava")
    proc.save_pretrained(tmp_path / "data" / "tiny-llava")
    config = {
        "recipe": "comm", "name": "clevr_tiny", "world": "clevr", "listeners": ["grayscale"],
        "seeds": [0], "test_episodes": 4,
        "speaker": {"family": "llava", "path": "tiny-llava", "max_new_tokens": 3},
        "listener": {"family": "llava", "path": "tiny-llava", "max_new_tokens": 3},
        "algorithms": {"kto": {"lr": 1e-3}},
        "loop": {"interactions": 6, "eval_every": 3},
        "lora": {"r": 4, "alpha": 8.0},
    }
    res = comm_recipe(config, tmp_path / "run", tmp_path / "data")
    assert [c["interactions"] for c in res.extra["runs"][0]["curve"]] == [0, 3, 6]
    assert (tmp_path / "run" / "checkpoints" / "kto-grayscale-s0" / "last.safetensors").exists()


def _same_rollouts(pol, episodes, cfg: SamplingConfig, seed: int, **kw) -> None:
    """Sampling with and without the KV cache from one seed: the same tokens and log-probs."""
    rolls = []
    for use_cache in (True, False):
        torch.manual_seed(seed)
        rolls.append(pol.sample(episodes, replace(cfg, use_cache=use_cache), **kw))
    cached, full = rolls
    assert torch.equal(cached.tokens, full.tokens) and torch.equal(cached.mask, full.mask)
    assert cached.texts == full.texts
    assert torch.allclose(cached.logprobs, full.logprobs, atol=1e-4)
    assert torch.allclose(cached.full_logprobs, full.full_logprobs, atol=1e-4)
    if full.action_masks is not None:
        assert torch.equal(cached.action_masks, full.action_masks)


@pytest.mark.parametrize("name", list(BUILDERS))
def test_kv_cache_generation_gives_the_same_tokens(name, episodes):
    mllm, pol = _policy(name)
    pol.add_adapter("adapted")
    with torch.no_grad():  # a trained-looking adapter (B != 0), so that pi != pi_0
        for n, p in pol.model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.5)
    pol.eos_id = -1  # random weights: generate the full length (no early EOS)
    cfg = SamplingConfig(max_new_tokens=6)
    _same_rollouts(pol, episodes, replace(cfg, do_sample=False), 0)
    for seed in (0, 1):
        _same_rollouts(pol, episodes, cfg, seed)
    _same_rollouts(pol, episodes, cfg, 2, mask_adapter=pol.snapshot(), mask_top_p=0.9, min_tokens_to_keep=2)
    assert pol.describe(episodes, 6) == pol.describe(episodes, 6, use_cache=False)


def test_gt_speaker_settings_and_missing_weights_on_clevr(tmp_path, capsys):
    """Figs. 7.3 / F.1 as settings: GT speakers read by a listener of each weakness (a pixel
    listener stands in for the MLLM); the MLLM settings name the missing weights in one line."""
    import json

    from lowshot.cli.main import main

    _clevr_layout(tmp_path / "data", n=30)
    args = ["--data-root", str(tmp_path / "data")]
    rc = main(["comm", "run", "clevr_gt_llava7b", "listener.family=pixel", "listener.path=", "test_episodes=60",
               "listeners=[normal,grayscale]", *args, "--json", str(tmp_path / "gt.json")])
    assert rc == 0
    metrics = json.loads((tmp_path / "gt.json").read_text())["metrics"]
    success = {tuple(k.split("/")[1:3]): m["mean"] for k, m in metrics.items()}
    assert {s for s, _ in success} == {"all", "no_color", "no_shape", "no_size", "no_material"}
    assert success["all", "normal"] >= 0.9  # every distinguishing value: the normal listener finds it
    assert success["all", "grayscale"] < success["all", "normal"]  # colour words mislead the colour-blind
    capsys.readouterr()
    assert main(["comm", "run", "clevr_llava13b", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert "models/llava-1.5-7b-hf" in err and "not available offline" in err  # the speaker, loaded first and "\n" not in err
