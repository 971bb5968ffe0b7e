"""RES through the adaptation loop / ``comm`` recipe, and resuming killed adaptation runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("peft")

import lowshot.comm.adapt as adapt_mod  # noqa: E402
from lowshot.errors import ConfigError  # noqa: E402
from lowshot.recipes.comm import comm_recipe, load_config  # noqa: E402
from lowshot.utils.io import load_state  # noqa: E402


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: fastest, and bit-for-bit reproducible
    yield
    torch.set_num_threads(threads)


ALGOS: dict[str, dict[str, Any]] = {
    "ppo": {"lr": 3e-3, "kl_coef": 0.05, "ppo_epochs": 1, "whiten_advantages": False},
    "nlpo": {"lr": 3e-3, "kl_coef": 0.05, "ppo_epochs": 1, "mask_update_every": 2, "top_p_mask": 0.9,
             "whiten_advantages": False},
    "kto": {"lr": 3e-3, "desirable_threshold": 0.5, "binary_ge": True},
}


def _config(algo: str, game: str = "res", interactions: int = 6, listener: dict | None = None,
            **extra: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "recipe": "comm", "name": f"tiny_{game}_{algo}", "world": "synthetic", "game": game,
        "listeners": ["grayscale"], "seeds": [0], "algorithms": {algo: ALGOS[algo]},
        "loop": {"interactions": interactions, "eval_every": 3, "episodes_per_update": 3},
        "world_config": {"n_objects": 3 if game == "res" else 1, "train_images": 16, "test_images": 8,
                         "test_episodes": 8, "budget": 1, "lora": {"r": 4, "alpha": 8.0},
                         "speaker": {"sft_steps": 15, "sft_batch_size": 8}},
        **extra,
    }
    if listener is not None:
        cfg["listener"] = listener
    return cfg


def _check_res_run(res: Any, run_dir: Path, algo: str, trained: bool = True) -> None:
    run = res.extra["runs"][0]
    assert [c["interactions"] for c in run["curve"]] == [0, 3, 6]
    for c in run["curve"]:
        assert 0.0 <= c["miou"] <= 1.0 and 0.0 <= c["success_rate"] <= 1.0
        assert c["miou"] >= 0.5 * c["success_rate"]  # success = share of IoU >= 0.5
    assert {"miou_before", "miou_after"} <= {k.rsplit("/", 1)[1] for k in res.metrics if k.startswith(f"{algo}/grayscale/")}
    hist = [h for h in (run_dir / "history.jsonl").read_text().splitlines() if h]
    assert len(hist) == 3
    ckpt = run_dir / "checkpoints" / "seed0" / f"{algo}-grayscale"
    lora = {k: v for k, v in load_state(ckpt / "last.safetensors").items() if "lora_B" in k}
    assert lora
    if trained:  # B starts at 0; graded rewards move it
        assert any(v.abs().sum() > 0 for v in lora.values())


@pytest.mark.parametrize("algo", list(ALGOS))
def test_res_adaptation_with_scripted_listener(tmp_path, algo):
    res = comm_recipe(_config(algo), tmp_path / "run")
    _check_res_run(res, tmp_path / "run", algo)


@pytest.fixture(scope="module")
def tiny_paligemma_dir(tmp_path_factory) -> Path:
    from lowshot.comm.tiny import tiny_paligemma
    from lowshot.comm.world import vocabulary

    torch.manual_seed(0)
    model, proc = tiny_paligemma(vocabulary() + ["segment"])
    path = tmp_path_factory.mktemp("models") / "tiny-paligemma"
    model.save_pretrained(path)
    proc.save_pretrained(path)
    return path


def test_res_episode_with_tiny_paligemma_listener(tiny_paligemma_dir, mask_decoder_npz):
    from lowshot.comm.games import play_res
    from lowshot.comm.mllm import MLLMListener, load_mllm
    from lowshot.comm.segmentation import MaskDecoder, decode_segmentations, segmentation_tokens
    from lowshot.comm.world import World, WorldConfig

    world = World(WorldConfig(n_objects=3, train_images=4, test_images=4, test_episodes=4), 0, "res")
    listener = MLLMListener(load_mllm("paligemma", tiny_paligemma_dir, "cpu", "float32", max_new_tokens=20),
                            MaskDecoder.from_npz(mask_decoder_npz))
    eps = world.test_episodes[:2]
    rewards = play_res(eps, ["color red", "shape cube"], listener)
    assert rewards.shape == (2,) and np.all((rewards >= 0) & (rewards <= 1))
    # the listener's <loc>+<seg> answer is decoded into the mask whose IoU is the reward
    e = eps[0]
    w, h = e.listener_image.size
    answer = segmentation_tokens(e.item.boxes[e.target], np.arange(16), w, h)
    listener.mllm.generate = lambda images, prompts, **k: [answer]
    iou = play_res([e], ["anything"], listener)[0]
    pred = decode_segmentations([answer], [(w, h)], listener.mask_decoder)[0]
    gt = e.gt_mask
    assert pred.any() and iou == pytest.approx(np.logical_and(pred, gt).sum() / np.logical_or(pred, gt).sum())


@pytest.mark.parametrize("algo", list(ALGOS))
def test_res_adaptation_with_tiny_paligemma_listener(tmp_path, tiny_paligemma_dir, mask_decoder_npz, algo):
    listener = {"family": "paligemma", "path": str(tiny_paligemma_dir), "device": "cpu",
                "dtype": "float32", "max_new_tokens": 4, "mask_decoder": str(mask_decoder_npz)}
    res = comm_recipe(_config(algo, listener=listener), tmp_path / "run")
    # an untrained listener mostly emits no valid box (reward 0 everywhere), which gives PPO
    # no gradient: only the plumbing and valid IoUs are checked here
    _check_res_run(res, tmp_path / "run", algo, trained=algo == "kto")


def test_res_kto_needs_the_iou_threshold():
    bad = _config("kto")
    bad["algorithms"] = {"kto": {"lr": 1e-3}}
    with pytest.raises(ConfigError, match="IoU >= 0.5"):
        load_config(bad)
    with pytest.raises(ConfigError, match="world 'clevr' does not play game 'res'"):
        load_config({**_config("ppo"), "world": "clevr"})
    with pytest.raises(ConfigError, match="listener.mask_decoder"):
        load_config({**_config("ppo"), "listener": {"family": "paligemma", "path": "x"}})
    assert load_config(_config("kto")).algorithms["kto"].binary_ge


class Killed(RuntimeError):
    pass


def _count_updates(monkeypatch, kill_after: int | None = None) -> list[int]:
    """Wrap the update rules: count calls and raise after ``kill_after`` of them."""
    calls: list[int] = []
    for name in ("ppo_update", "kto_update"):
        real = getattr(adapt_mod, name)

        def wrapped(*a: Any, real=real, **k: Any) -> dict[str, float]:
            if kill_after is not None and len(calls) == kill_after:
                raise Killed("simulated kill")
            calls.append(1)
            return real(*a, **k)

        monkeypatch.setattr(adapt_mod, name, wrapped)
    return calls


def _strip(result: Any) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in result.extra["runs"]]


@pytest.mark.parametrize("algo,game,kill_after", [("ppo", "rei", 3), ("nlpo", "res", 2), ("kto", "rei", 3)])
def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch, algo, game, kill_after):
    cfg = _config(algo, game=game, interactions=15)  # 5 updates, state saved after each
    if algo == "nlpo":  # resume between mask refreshes (u = 0, 3) with a mask that moves quickly
        cfg["algorithms"] = {"nlpo": {**ALGOS["nlpo"], "mask_update_every": 3, "top_p_mask": 0.5, "lr": 0.05}}
    with monkeypatch.context() as m:
        calls = _count_updates(m)
        full = comm_recipe(cfg, tmp_path / "full")
    assert len(calls) == 5
    with monkeypatch.context() as m:
        calls = _count_updates(m, kill_after=kill_after)
        with pytest.raises(Killed):
            comm_recipe(cfg, tmp_path / "killed")
    assert len(calls) == kill_after
    assert not (tmp_path / "killed" / "result.json").exists()
    with monkeypatch.context() as m:
        calls = _count_updates(m)
        resumed = comm_recipe(cfg, tmp_path / "killed")
    assert len(calls) == 5 - kill_after  # continued where it was killed, not from scratch
    assert _strip(resumed) == _strip(full)
    read = lambda p: (p / "history.jsonl").read_text()  # noqa: E731
    assert read(tmp_path / "killed") == read(tmp_path / "full")
    sub = Path("checkpoints") / "seed0" / f"{algo}-grayscale"
    a, b = load_state(tmp_path / "full" / sub / "last.safetensors"), load_state(tmp_path / "killed" / sub / "last.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # a finished run is not repeated
    with monkeypatch.context() as m:
        calls = _count_updates(m)
        again = comm_recipe(cfg, tmp_path / "killed")
    assert not calls and _strip(again) == _strip(full)
