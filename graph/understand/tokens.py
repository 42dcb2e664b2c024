"""Text to words: folding, the tokenizer, break detection and recognised spans.

Every other module of the package reads a message through these pieces, so titles, names and
messages are normalised by one function (:func:`norm_tokens`) and can never disagree about what
a word is.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from recagents.data.titles import strip_accents
from recagents.graph.understand.vocabulary import COMMON_WORDS, ROMAN

#: Only this many leading characters of a message are read: a chat turn that matters fits, and
#: a pasted 20,000-character wall (or an attack) costs the same as a normal turn.
MAX_SCAN_CHARS = 2000
#: Longest title or name, in words, looked up as one n-gram.
MAX_NGRAM = 12

CLAUSE_BREAK = frozenset(".!?;\n…")
SOFT_BREAK = frozenset(',:()[]—–"“”«»')

ALNUM = re.compile(r"[0-9a-z]+")
_TOKEN = re.compile(r"[^\W_]+|&|\n|[^\w\s]")


def fold(text: str) -> str:
    """Accent-free lower case, so "Tchéky" and "tcheky" compare equal."""
    return strip_accents(text).lower()


def norm_tokens(text: str) -> list[str]:
    """Lower-case ASCII word tokens; the same function normalises titles, names and messages."""
    return ALNUM.findall(fold(text).replace("&", " and "))


def norm_key(text: str) -> str:
    """The normalised words of ``text`` joined by single spaces: a lexicon key."""
    return " ".join(norm_tokens(text))


def clean(text: str) -> str:
    """Control, format and surrogate characters become spaces: binary junk is just noise."""
    if text.isprintable():
        return text
    return "".join(ch if ch in "\n\t" or unicodedata.category(ch)[0] != "C" else " " for ch in text)


def unique(values: Iterable[str]) -> list[str]:
    """``values`` de-duplicated in order: an intent lists each item once, where first named."""
    return list(dict.fromkeys(values))


def sequel_numbers(text: str) -> frozenset[int]:
    """Sequel numbers in a normalised title ("part ii" and "part 2" agree)."""
    found = set()
    for token in text.split():
        if token.isdigit():
            found.add(int(token))
        elif token in ROMAN:
            found.add(ROMAN[token])
    return frozenset(found)


def distinctive(token: str) -> bool:
    """Whether a word says "this is a title" by itself (``fargo``) rather than plain English."""
    return len(token) >= 4 and token not in COMMON_WORDS and not token.isdigit()


@dataclass(frozen=True, slots=True)
class Word:
    """One normalised word of a message, with what the rules need about its surroundings."""

    norm: str
    start: int
    end: int
    cap: bool
    sent_start: bool
    brk: str  # punctuation between the previous word and this one


def tokenize(text: str) -> list[Word]:
    """Words with character offsets; punctuation is kept only as each word's ``brk``."""
    words: list[Word] = []
    pending = ""
    sentence = True
    for match in _TOKEN.finditer(text):
        tok = match.group()
        if tok == "&":
            parts = ["and"]
        elif tok[0].isalnum():
            parts = ALNUM.findall(fold(tok))
        else:
            pending += tok
            if tok in CLAUSE_BREAK:
                sentence = True
            continue
        if not parts:  # a word in a script that folds to nothing ASCII: a separator
            pending += " "
            continue
        for k, part in enumerate(parts):
            first = k == 0
            words.append(
                Word(
                    part,
                    match.start(),
                    match.end(),
                    first and tok[0].isupper(),
                    first and sentence,
                    pending if first else "",
                )
            )
        pending = ""
        sentence = False
    return words


def is_break(word: Word, soft: bool = True) -> bool:
    """Whether punctuation separates ``word`` from the previous one (``soft``: commas count)."""
    chars = CLAUSE_BREAK | SOFT_BREAK if soft else CLAUSE_BREAK
    return any(ch in chars for ch in word.brk)


@dataclass(frozen=True, slots=True)
class Span:
    """A recognised stretch of words: ``kind`` is title, person, genre, ordinal, pronoun, quoted."""

    i: int
    j: int
    kind: str
    value: str
    score: float
    start: int
    end: int
    quoted: bool = False
    extra: tuple[str, ...] = ()


def resolve_overlaps(spans: Iterable[Span]) -> list[Span]:
    """Keep the longest / best non-overlapping spans, in message order."""
    ranked = sorted(
        spans,
        key=lambda s: (s.quoted, (s.j - s.i) * s.score, s.kind == "title", s.score, -s.i),
        reverse=True,
    )
    taken: set[int] = set()
    kept: list[Span] = []
    for span in ranked:
        cover = range(span.i, span.j)
        if any(k in taken for k in cover):
            continue
        taken.update(cover)
        kept.append(span)
    return sorted(kept, key=lambda s: s.i)
