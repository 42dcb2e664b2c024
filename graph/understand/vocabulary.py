"""The word lists the rules read, loaded once from the data files in ``words/``.

Words are data, not code: a list grows by editing ``stopwords.txt``, ``common_words.txt``,
``lexicon.toml`` or ``genres.toml`` (shipped as package data), with no rule to touch. The files are
read through :mod:`importlib.resources`, so they are found in a wheel, an editable install or a
zip alike; every constant below is built at import, so a broken file fails at import, not in the
middle of a chat turn.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib.resources import files
from typing import Any

_WORDS = files("recagents.graph.understand") / "words"


def _lines(name: str) -> tuple[str, ...]:
    """Entries of a ``.txt`` list: one word or phrase a line, ``#`` comments and blanks skipped."""
    text = (_WORDS / name).read_text(encoding="utf-8")
    return tuple(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


@cache
def _toml(name: str) -> dict[str, Any]:
    """A ``.toml`` file of the word folder, parsed once."""
    return tomllib.loads((_WORDS / name).read_text(encoding="utf-8"))


def _set(table: str, key: str) -> frozenset[str]:
    return frozenset(_toml("lexicon.toml")[table][key])


def _indices(table: str, key: str) -> dict[str, int]:
    return {word: int(value) for word, value in _toml("lexicon.toml")[table][key].items()}


STOPWORDS = frozenset(_lines("stopwords.txt"))
#: Everyday English: a title made only of these needs a hint that it is a title.
COMMON_WORDS = STOPWORDS | frozenset(_lines("common_words.txt"))

TITLE_CUES = _set("titles", "cues")
TITLE_CUE_BIGRAMS: frozenset[tuple[str, ...]] = frozenset(
    tuple(phrase.split()) for phrase in _toml("lexicon.toml")["titles"]["cue_phrases"]
)
UNKNOWN_CUES = _set("titles", "unknown_cues")
MEDIA_NOUNS = _set("titles", "media_nouns")
EN_ARTICLES = _set("titles", "articles")
CONNECTORS = _set("titles", "connectors")

PERSON_CUES = _set("people", "cues")
NAME_SUFFIXES = _set("people", "suffixes")

ORDINAL_WORDS = _indices("references", "ordinals")
NUMBER_WORDS = _indices("references", "numbers")
NUMBER_LEADS = _set("references", "number_leads")
REF_NOUNS = _set("references", "nouns")
ORDINAL_FOLLOW_OK = _set("references", "ordinal_followers")
PRONOUN_FOLLOW_OK = _set("references", "pronoun_followers")
NOT_AFTER_IT = _set("references", "not_after_it")
AFTER_BARE_SEEN = _set("references", "after_bare_seen")
REF_TEXT_FILLER = _set("references", "text_filler")

SMALLTALK_CORE = _set("smalltalk", "core")
SMALLTALK = SMALLTALK_CORE | _set("smalltalk", "words")

DECADE_WORDS = _indices("years", "decades")
ROMAN = _indices("sequels", "roman")


def _genre_synonyms() -> tuple[dict[str, tuple[tuple[str, ...], ...]], frozenset[str]]:
    """Phrase -> candidate-name tuples per concept, and the comparative phrases ("funnier")."""
    data = _toml("genres.toml")
    concepts = {name: tuple(names) for name, names in data["concepts"].items()}
    synonyms: dict[str, tuple[tuple[str, ...], ...]] = {}
    comparatives: set[str] = set()
    for group in data["synonyms"]:
        targets = tuple(concepts[name] for name in group["concepts"])
        for phrase in group["phrases"]:
            synonyms[phrase] = targets
            if group.get("comparative", False):
                comparatives.add(phrase)
    return synonyms, frozenset(comparatives)


#: English words and phrases -> candidate catalog names per concept (the first that exists wins).
GENRE_SYNONYMS, COMPARATIVES = _genre_synonyms()
#: Genre names that are bookkeeping, not something a person asks for; "" is a missing genre.
IGNORED_GENRES = frozenset(_toml("genres.toml")["ignored"]) | {""}
