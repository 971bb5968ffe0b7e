"""Turning REI listener text into decisions: the keyword groups.

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
