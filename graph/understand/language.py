"""Which language a message is written in, enough to say so when it is not English.

The rules and the exemplars read English only. A person who writes "quiero una película de
terror" deserves one clear sentence saying so, not an English clarifying question that ignores
what they wrote. Detection is deliberately simple and offline: counts of function words per
language (``words/languages.toml``), and the writing system for scripts other than Latin. A
title in another language inside an English sentence ("I loved La Strada") must not flip it, so a
message is foreign only when several function words of one language appear and clearly outnumber
the English ones.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Sequence

from recagents.graph.understand.vocabulary import _toml

#: Function words of one language a message needs before it can be called that language.
MIN_HITS = 2

_DATA = _toml("languages.toml")
_STOPWORDS: dict[str, frozenset[str]] = {
    language: frozenset(words) for language, words in _DATA["stopwords"].items()
}
_ENGLISH = frozenset(_DATA["english"]["words"])

#: Unicode script names (the first word of a letter's Unicode name) and the language we name.
_SCRIPTS = {
    "CJK": "Chinese or Japanese",
    "HIRAGANA": "Japanese",
    "KATAKANA": "Japanese",
    "HANGUL": "Korean",
    "CYRILLIC": "Russian or another Cyrillic-script language",
    "ARABIC": "Arabic",
    "HEBREW": "Hebrew",
    "GREEK": "Greek",
    "DEVANAGARI": "Hindi",
    "THAI": "Thai",
}


def detect_foreign(words: Sequence[str], text: str) -> str | None:
    """The language ``text`` seems written in when it is not English, else None.

    Args:
        words: The message's folded words (``Word.norm`` values) - accents may be folded away.
        text: The message itself, for its letters' scripts and unfolded words.

    Returns:
        A language name ("Spanish"), ``""`` for a foreign script we do not name (mixed scripts,
        junk), or None for English (or too little to tell).
    """
    letters = [ch for ch in text if ch.isalpha()]
    if letters:
        latin = sum(1 for ch in letters if _script(ch) == "LATIN")
        if latin / len(letters) < 0.5:
            scripts = Counter(_script(ch) for ch in letters if _script(ch) != "LATIN")
            script, count = scripts.most_common(1)[0]
            return _SCRIPTS.get(script, "") if count / len(letters) >= 0.6 else ""
    raw = [w.strip(".,!?;:¿¡\"'()").casefold() for w in text.split()]
    tokens = set(words) | {w for w in raw if w}
    english = sum(1 for w in words if w in _ENGLISH)
    best, hits = "", 0
    for language, stopwords in _STOPWORDS.items():
        found = len({w for w in tokens if w in stopwords and w not in _ENGLISH})
        if found > hits:
            best, hits = language, found
    if hits >= MIN_HITS and hits > english:
        return best
    return None


def _script(ch: str) -> str:
    """The script word of a letter's Unicode name ("LATIN", "CYRILLIC"...); "" if unnamed."""
    try:
        return unicodedata.name(ch).split(" ", 1)[0]
    except ValueError:
        return ""
