"""Turning listener text into decisions: REI keyword groups and PaliGemma locations.

REI (thesis app. F.2): "the reward is computed by looking for keywords, i.e. 'left, A, 1'
and 'right, B, 2'". Project rules (``PARSER_VERSION``): ``left``/``right``/``first``/
``second`` and the digits ``1``/``2`` match as whole words (case-insensitive); ``A``/``B``
match only as upper-case standalone option labels (``A``, ``A.``, ``(A)``, ``the answer is
A``), so the article never counts: neither a lower-case "a" nor a sentence-initial "A"
followed by a lower-case word ("A bird sitting on a post is in the right image." is *right*).
An answer with keywords of both groups, or none, is ambiguous.
"""

from __future__ import annotations

import re

import numpy as np

PARSER_VERSION = "rei-keywords-2"

_FIRST_WORDS = re.compile(r"\b(left|first|1)\b", re.IGNORECASE)
_SECOND_WORDS = re.compile(r"\b(right|second|2)\b", re.IGNORECASE)
_FIRST_LABEL = re.compile(r"(?<![A-Za-z])\(?A\)?(?![A-Za-z])")
_SECOND_LABEL = re.compile(r"(?<![A-Za-z])\(?B\)?(?![A-Za-z])")
#: the article: "A" opening the answer or a sentence, followed by a lower-case word that is
#: not a conjunction or verb ("A or B", "A is correct" keep their label)
_ARTICLE_A = re.compile(r"(?:^|(?<=[.!?])\s|\n)\s*[\"']?A(?=\s+(?!(?:or|and|is|because)\b)[a-z])")


def parse_rei_answer(text: str) -> int | None:
    """Index of the image the answer points to (0 = left / picture 1 / A, 1 = right ...).

    Returns:
        0, 1, or None when the answer is ambiguous (both groups or none).
    """
    first = bool(_FIRST_WORDS.search(text) or _FIRST_LABEL.search(_ARTICLE_A.sub(" ", text)))
    second = bool(_SECOND_WORDS.search(text) or _SECOND_LABEL.search(text))
    if first == second:
        return None
    return 0 if first else 1


def rei_reward(text: str, target_index: int) -> float:
    """+1 when the parsed answer names ``target_index`` (listener order), else -1 (ambiguous = wrong)."""
    return 1.0 if parse_rei_answer(text) == target_index else -1.0


_LOC = re.compile(r"<loc(\d{4})>")


def parse_paligemma_box(text: str, width: int, height: int) -> tuple[float, float, float, float] | None:
    """First four ``<locYYYY>`` tokens (y0, x0, y1, x1 in 1024 bins) -> pixel box ``(x0, y0, x1, y1)``.

    Returns None for invalid outputs (fewer than 4 tokens, out of range, empty box).
    """
    vals = [int(v) for v in _LOC.findall(text)[:4]]
    if len(vals) < 4 or any(v > 1023 for v in vals):
        return None
    y0, x0, y1, x1 = vals
    if y1 <= y0 or x1 <= x0:
        return None
    return (x0 / 1024 * width, y0 / 1024 * height, x1 / 1024 * width, y1 / 1024 * height)


def box_to_paligemma(box: tuple[float, float, float, float], width: int, height: int) -> str:
    """Pixel box -> ``<loc..>`` x4 string (inverse of :func:`parse_paligemma_box`, up to binning)."""
    x0, y0, x1, y1 = box

    def b(v: float, s: int) -> int:
        return int(min(1023, max(0, round(v / s * 1024))))

    return "".join(f"<loc{v:04d}>" for v in (b(y0, height), b(x0, width), b(y1, height), b(x1, width)))


def box_mask(box: tuple[float, float, float, float] | None, width: int, height: int) -> np.ndarray:
    """Rasterise a pixel box into an ``[H, W]`` bool mask (the fallback without the VQ decoder)."""
    mask = np.zeros((height, width), dtype=bool)
    if box is None:
        return mask
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    mask[max(0, y0):max(0, y1), max(0, x0):max(0, x1)] = True
    return mask
