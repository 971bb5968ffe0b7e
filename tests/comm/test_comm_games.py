"""Games, perception, parsing, renderer, GT speaker and pixel listener."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lowshot.comm.agents import Weakened
from lowshot.comm.attributes import COLORS, has_color_word, mentioned_values
from lowshot.comm.episodes import ImageItem, RESItem
from lowshot.comm.games import (
    evaluate_rei,
    evaluate_res,
    mask_iou,
    play_rei,
    sample_rei_episodes,
    sample_res_episodes,
)
from lowshot.comm.gt_speaker import ABLATIONS, GTSpeaker, distinguishing_values
from lowshot.comm.listeners import PixelListener, perceive
from lowshot.comm.parsing import parse_rei_answer, rei_reward
from lowshot.comm.perception import (
    GaussianBlur,
    Grayscale,
    draw_red_circle,
    make_weakness,
    side_by_side,
)
from lowshot.comm.render import Scene, SceneObject, object_mask, render, sample_scene
from lowshot.errors import ConfigError, DataError

# the published keyword groups ("left, A, 1" / "right, B, 2", thesis app. F.2), the answers
# real LLaVA / Qwen listeners give, and the article "A" (sentence-initial or lower-case)
REI_PARSER_TABLE = [
    # LLaVA-style left / right answers
    ("left", 0), ("Left", 0), ("LEFT.", 0), ("The left image.", 0), ("Right", 1), ("right image", 1),
    ("It describes a left image", 0), ("The sentence describes the right image.", 1),
    # Qwen-style option labels and picture numbers
    ("Picture 1", 0), ("picture 2", 1), ("1", 0), ("2.", 1), ("A", 0), ("B", 1), ("(A)", 0), ("(B)", 1),
    ("B.", 1), ("A. Picture 1", 0), ("B. Picture 2", 1), ("The answer is A.", 0), ("Answer: B", 1),
    ("It is A because the cube is red.", 0), ("A is correct.", 0),
    # the article "A" is no option label
    ("A bird sitting on a post is in the right image.", 1), ("A red cube: left image.", 0),
    ("The right one. A bird sits there.", 1), ("A small metal sphere is on the left", 0),
    ("a", None), ("A bird", None),
    # ambiguous: both groups or none; no substrings
    ("left or right", None), ("A or B", None), ("Picture 1 or Picture 2", None), ("", None),
    ("I don't know", None), ("I cannot tell.", None), ("leftover", None), ("bright", None),
    ("10", None), ("A. Picture 2", None),
]


@pytest.mark.parametrize("text,side", REI_PARSER_TABLE)
def test_rei_parser(text, side):
    assert parse_rei_answer(text) == side


def test_rei_reward_ambiguous_is_wrong():
    assert rei_reward("left", 0) == 1.0 and rei_reward("left", 1) == -1.0
    assert rei_reward("left right", 0) == -1.0 and rei_reward("hmm", 1) == -1.0


def test_weaknesses_change_only_what_they_should():
    img = render(Scene((SceneObject("red", "cube", "large", "metal", (10, 10, 40, 40)),)))
    g = np.asarray(Grayscale()(img))
    assert (g[..., 0] == g[..., 1]).all() and (g[..., 1] == g[..., 2]).all()
    b = np.asarray(GaussianBlur(3.0)(img), dtype=float)
    assert np.abs(np.diff(b, axis=1)).max() < np.abs(np.diff(np.asarray(img, float), axis=1)).max()
    both = np.asarray(make_weakness("grayscale+blur")(img))
    assert (both[..., 0] == both[..., 2]).all() and not (both == g).all()
    with pytest.raises(ConfigError):
        make_weakness("colorblind")


def test_side_by_side_has_white_bar_and_red_circle_is_red():
    a, b = Image.new("RGB", (10, 8), (0, 0, 0)), Image.new("RGB", (10, 8), (0, 0, 0))
    s = np.asarray(side_by_side([a, b], bar_width=4))
    assert s.shape == (8, 24, 3) and (s[:, 10:14] == 255).all() and (s[:, :10] == 0).all()
    c = np.asarray(draw_red_circle(a, (1, 1, 9, 7), width=1))
    assert ((c[..., 0] == 255) & (c[..., 1] == 0)).any()


def test_renderer_annotations_and_perception_match():
    rng = np.random.default_rng(0)
    for _ in range(40):
        s = sample_scene(rng, n_objects=1)
        objs = perceive(render(s))
        assert len(objs) == 1
        assert objs[0].attributes == s.objects[0].attributes()
        assert mask_iou(objs[0].mask, object_mask(s, 0)) > 0.9
    multi = sample_scene(rng, n_objects=3, width=96, height=96)
    assert len(multi.objects) == 3 and len(perceive(render(multi))) == 3


def test_grayscale_destroys_colour_but_not_shape():
    rng = np.random.default_rng(1)
    col = shp = 0
    n = 80
    for _ in range(n):
        s = sample_scene(rng)
        p = perceive(Grayscale()(render(s)))[0].attributes
        col += p["color"] == s.objects[0].color
        shp += p["shape"] == s.objects[0].shape
    assert col / n < 0.5 and shp / n > 0.95


def test_gt_speaker_and_ablations():
    t = Scene((SceneObject("red", "cube", "large", "metal"), SceneObject("blue", "sphere", "small", "metal")))
    c = Scene((SceneObject("red", "cylinder", "small", "rubber"),))
    assert distinguishing_values(t, c) == {"color": ["blue"], "shape": ["cube", "sphere"],
                                           "size": ["large"], "material": ["metal"]}
    assert GTSpeaker().describe_scenes(t, c) == "blue cube sphere large metal"
    assert GTSpeaker(ABLATIONS["no_color"]).describe_scenes(t, c) == "cube sphere large metal"
    assert GTSpeaker(ABLATIONS["no_shape"], budget=2).describe_scenes(t, c) == "blue large"
    assert not has_color_word(GTSpeaker(ABLATIONS["no_color"]).describe_scenes(t, c))
    with pytest.raises(ConfigError):
        GTSpeaker(("colour",))


def test_gt_speaker_branches_are_its_first_choices_with_their_probabilities():
    t = Scene((SceneObject("red", "cube", "large", "metal"),))
    c = Scene((SceneObject("blue", "sphere", "large", "rubber"),))
    prior = {"color": 0.55, "shape": 0.15, "size": 0.15, "material": 0.15}
    sp = GTSpeaker(budget=2, prior=prior, name_types=True)
    branches = dict((d, p) for p, d in sp.branches(t, c))
    assert branches == pytest.approx({"color red": 0.55 / 0.85, "shape cube": 0.15 / 0.85,
                                      "material metal": 0.15 / 0.85})
    drawn = [sp.describe_scenes(t, c) for _ in range(4000)]
    for d, p in branches.items():
        assert drawn.count(d) / len(drawn) == pytest.approx(p, abs=0.03)
    assert GTSpeaker(budget=2, name_types=True).branches(t, c) == [(1.0, "color red")]


def _pool(n, seed=0):
    rng = np.random.default_rng(seed)
    return [ImageItem(str(i), (lambda s=s: render(s)), None, s)
            for i, s in enumerate(sample_scene(rng) for _ in range(n))]


def test_rei_episodes_shuffle_sides_and_respect_labels():
    rng = np.random.default_rng(0)
    eps = sample_rei_episodes(_pool(30), 400, rng)
    assert 0.4 < np.mean([e.listener_target_side for e in eps]) < 0.6
    assert 0.4 < np.mean([e.speaker_target_side for e in eps]) < 0.6
    assert np.mean([e.speaker_target_side != e.listener_target_side for e in eps]) > 0.3
    e = eps[0]
    assert e.listener_images[e.listener_target_side] is e.target.image
    assert e.speaker_images[e.speaker_target_side] is e.target.image
    lab = [ImageItem(str(i), lambda: Image.new("RGB", (4, 4)), label=str(i % 2)) for i in range(6)]
    assert all(x.target.label != x.confounder.label for x in sample_rei_episodes(lab, 50, rng))
    with pytest.raises(DataError):
        sample_rei_episodes(lab[:1], 1, rng)


def test_pixel_listener_with_gt_speaker_and_weakness_effects():
    rng = np.random.default_rng(0)
    eps = sample_rei_episodes(_pool(60), 150, rng)
    only_color = GTSpeaker(ABLATIONS["only_color"], budget=1).describe
    only_shape = GTSpeaker(ABLATIONS["only_shape"], budget=1).describe
    normal = PixelListener(seed=0)
    gray = Weakened(PixelListener(seed=0), Grayscale())
    full = evaluate_rei(GTSpeaker().describe, normal, eps)["success_rate"]
    c_norm = evaluate_rei(only_color, normal, eps)["success_rate"]
    c_gray = evaluate_rei(only_color, gray, eps)["success_rate"]
    s_gray = evaluate_rei(only_shape, gray, eps)["success_rate"]
    assert full > 0.95
    assert c_norm - c_gray > 0.2  # colour words stop working for a colour-blind listener
    assert s_gray - c_gray > 0.1  # ... while shape still works: headroom for adaptation
    empty = evaluate_rei(lambda e: [""] * len(e), normal, eps)
    assert empty["success_rate"] == 0.0 and empty["nonempty_rate"] == 0.0  # "I cannot tell." = wrong
    guess = evaluate_rei(lambda e: ["big"] * len(e), PixelListener(seed=0, guess_without_evidence=True), eps)
    assert 0.3 < guess["success_rate"] < 0.7
    r, answers = play_rei(eps[:5], GTSpeaker().describe(eps[:5]), PixelListener(answer_style="picture"))
    assert all(a.startswith("Picture") for a in answers) and (r == 1).all()


def _absent_colour(e):
    """A colour that neither image of REI episode ``e`` shows (a description that ties)."""
    shown = e.target.scene.values("color") | e.confounder.scene.values("color")
    return next(c for c in COLORS if c not in shown)


def test_pixel_listener_abstains_on_ties_only_when_asked():
    eps = sample_rei_episodes(_pool(40), 60, np.random.default_rng(1))
    ties = [f"color {_absent_colour(e)}" for e in eps]  # fits neither image: both score -1
    guessing, _ = play_rei(eps, ties, PixelListener(seed=0))
    assert (guessing == 1).any() and (guessing == -1).any()  # the default listener guesses
    abstaining, answers = play_rei(eps, ties, PixelListener(seed=0, abstain_on_ties=True))
    assert (abstaining == -1).all() and set(answers) == {"I cannot tell."}
    # a description that tells the images apart is answered as before
    gt = GTSpeaker().describe(eps)
    assert (play_rei(eps, gt, PixelListener(seed=0, abstain_on_ties=True))[0] == 1).all()


def test_res_game_with_scripted_listener_gives_graded_iou():
    rng = np.random.default_rng(0)
    items = []
    for i in range(20):
        s = sample_scene(rng, n_objects=3, width=96, height=96)
        items.append(RESItem(str(i), (lambda s=s: render(s)), tuple(o.box for o in s.objects),
                             (lambda k, s=s: object_mask(s, k)), scene=s))
    eps = sample_res_episodes(items, 60, rng)
    assert np.asarray(eps[0].speaker_image).shape == (96, 96, 3)
    gt = GTSpeaker().describe_object
    normal = evaluate_res(gt, PixelListener(seed=0), eps)
    blur = evaluate_res(gt, Weakened(PixelListener(seed=0), GaussianBlur(3.0)), eps)
    nothing = evaluate_res(lambda e: [""] * len(e), PixelListener(seed=0), eps)
    assert normal["miou"] > 0.8 and normal["miou"] > blur["miou"] and normal["miou"] > nothing["miou"]
    assert mentioned_values("Two shiny balls") == {"material": ["metal"], "shape": ["sphere"]}
