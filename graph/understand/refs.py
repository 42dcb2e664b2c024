"""References to the items shown in the previous reply: "the second one", "#2", "it", "them".

The parser finds them among a message's words (:func:`ref_spans`); a chat model writes them as
text (:func:`ref_from_text`). Both resolve through :func:`shown_index`, so "the last one" means the
same item whichever path read it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence

from recagents.graph.understand.tokens import Span, Word, is_break, norm_tokens
from recagents.graph.understand.vocabulary import (
    NOT_AFTER_IT,
    NUMBER_LEADS,
    NUMBER_WORDS,
    ORDINAL_FOLLOW_OK,
    ORDINAL_WORDS,
    PRONOUN_FOLLOW_OK,
    REF_NOUNS,
    REF_TEXT_FILLER,
)

#: "2", "2nd", "3rd": a numbered reference (bare digits only count after "#" or "number").
NUMBERED = re.compile(r"^(\d{1,2})(?:st|nd|rd|th)?$")


def ref_spans(words: Sequence[Word], covered: Collection[int]) -> list[Span]:
    """Ordinals ("the second one", "#2", "number 2", "the last one") and pronouns ("it", "them").

    ``value`` is the 0-based index (-1 = last) for ordinals, ``it`` / ``all`` / ``both`` for
    pronouns. "first" alone is not a reference ("first of all", "the first time"): it needs "the"
    before and nothing noun-like after, or a noun such as "one" / "movie" after.
    """
    spans: list[Span] = []
    n_words = len(words)
    i = 0
    last_ordinal_end = -10

    def free(k: int) -> bool:
        return 0 <= k < n_words and k not in covered

    def next_ok(k: int) -> bool:
        return k >= n_words or is_break(words[k]) or words[k].norm in ORDINAL_FOLLOW_OK

    while i < n_words:
        if not free(i):
            i += 1
            continue
        word = words[i].norm
        prev = words[i - 1].norm if free(i - 1) and not is_break(words[i]) else ""
        index: int | None = None
        start, end = i, i + 1
        numbered = NUMBERED.match(word)
        if word in ORDINAL_WORDS or (numbered and word != numbered.group(1)):
            index = ORDINAL_WORDS.get(word)
            if index is None and numbered:
                index = int(numbered.group(1)) - 1
            has_noun = free(i + 1) and words[i + 1].norm in REF_NOUNS and not is_break(words[i + 1])
            chained = prev in {"and", "or"} and last_ordinal_end == i - 1
            if has_noun:
                end = i + 2
            elif not ((prev == "the" and next_ok(i + 1)) or chained):
                index = None
            if prev == "the" and index is not None:
                start = i - 1
        elif (
            word in NUMBER_LEADS
            and free(i + 1)
            and (words[i + 1].norm.isdigit() or words[i + 1].norm in NUMBER_WORDS)
        ):
            target = words[i + 1].norm
            index = int(target) - 1 if target.isdigit() else NUMBER_WORDS[target]
            end = i + 2
        elif word.isdigit() and "#" in words[i].brk:
            index = int(word) - 1
        if index is not None and -1 <= index < 20:
            spans.append(
                Span(
                    start, end, "ordinal", str(index), 100.0, words[start].start, words[end - 1].end
                )
            )
            last_ordinal_end = end - 1
            i = end
            continue
        pronoun = _pronoun_at(words, i, free)
        if pronoun:
            kind, end = pronoun
            spans.append(Span(i, end, "pronoun", kind, 100.0, words[i].start, words[end - 1].end))
            i = end
            continue
        i += 1
    return spans


def _pronoun_at(
    words: Sequence[Word], i: int, free: Callable[[int], bool]
) -> tuple[str, int] | None:
    """A pronoun that can point at a shown item, as ``(kind, end)``, or None."""
    n_words = len(words)
    word = words[i].norm
    nxt = words[i + 1].norm if free(i + 1) and not is_break(words[i + 1]) else ""
    if word in {"that", "this"}:
        if nxt in REF_NOUNS:
            return "it", i + 2
        if i + 1 >= n_words or is_break(words[i + 1]) or nxt in PRONOUN_FOLLOW_OK:
            return "it", i + 1
        return None
    if word == "it":
        if nxt in NOT_AFTER_IT:
            return None
        return "it", i + 1
    plural = {"them", "those", "these"}
    if word in plural:
        return "all", i + 1
    if word == "all" and nxt == "of" and free(i + 2) and words[i + 2].norm in plural:
        return "all", i + 3
    if word == "both" and (i + 1 >= n_words or is_break(words[i + 1]) or nxt in {"of", "one"}):
        return "both", i + 1
    return None


def shown_index(index: int, shown: Sequence[str]) -> str | None:
    """The shown item at a 0-based ``index`` (-1 = the last); None when out of range."""
    if not shown:
        return None
    if index == -1:
        return shown[-1]
    return shown[index] if 0 <= index < len(shown) else None


def ref_from_text(text: str, shown: Sequence[str]) -> str | None:
    """An ordinal or pronoun written as text ("second", "#2", "the last one", "it") -> item id."""
    tokens = norm_tokens(text)
    tokens = [t for t in tokens if t not in REF_TEXT_FILLER]
    if len(tokens) != 1:
        return None
    token = tokens[0]
    if token in {"it", "that", "this"}:
        return shown[0] if shown else None
    if token in ORDINAL_WORDS:
        return shown_index(ORDINAL_WORDS[token], shown)
    numbered = NUMBERED.match(token)
    if numbered:
        return shown_index(int(numbered.group(1)) - 1, shown)
    return None
