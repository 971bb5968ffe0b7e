"""CLEVR attribute vocabulary (Johnson et al., CVPR 2017) and its official RGB colours."""

from __future__ import annotations

COLORS: dict[str, tuple[int, int, int]] = {
    "gray": (87, 87, 87),
    "red": (173, 35, 35),
    "blue": (42, 75, 215),
    "green": (29, 105, 20),
    "brown": (129, 74, 25),
    "purple": (129, 38, 192),
    "cyan": (41, 208, 208),
    "yellow": (255, 238, 51),
}
SHAPES: tuple[str, ...] = ("cube", "sphere", "cylinder")
SIZES: tuple[str, ...] = ("large", "small")
MATERIALS: tuple[str, ...] = ("rubber", "metal")

#: attribute type -> its values, in the order the GT speaker lists them
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "color": tuple(COLORS),
    "shape": SHAPES,
    "size": SIZES,
    "material": MATERIALS,
}
ATTRIBUTE_TYPES: tuple[str, ...] = tuple(ATTRIBUTES)

#: word -> attribute type, including common synonyms a free-text speaker may use
WORD_TO_TYPE: dict[str, str] = {v: t for t, vals in ATTRIBUTES.items() for v in vals}
SYNONYMS: dict[str, str] = {
    "grey": "gray", "block": "cube", "blocks": "cube", "cubes": "cube", "ball": "sphere",
    "balls": "sphere", "spheres": "sphere", "cylinders": "cylinder", "big": "large",
    "tiny": "small", "shiny": "metal", "metallic": "metal", "matte": "rubber",
}

COLOR_WORDS: frozenset[str] = frozenset(list(COLORS) + ["grey"])


def normalise_word(word: str) -> str:
    """Lower-case, strip punctuation and map synonyms to the CLEVR value (``"Balls,"`` -> sphere)."""
    w = word.lower().strip(".,;:!?'\"()")
    return SYNONYMS.get(w, w)


def mentioned_values(text: str) -> dict[str, list[str]]:
    """Attribute values mentioned in ``text`` grouped by type (whole words only)."""
    out: dict[str, list[str]] = {}
    for raw in text.split():
        w = normalise_word(raw)
        t = WORD_TO_TYPE.get(w)
        if t is not None and w not in out.setdefault(t, []):
            out[t].append(w)
    return {t: v for t, v in out.items() if v}


def has_color_word(text: str) -> bool:
    """True when ``text`` mentions a colour word (the colour-word rate of the thesis' analysis)."""
    return any(normalise_word(w) in COLOR_WORDS for w in text.split())
