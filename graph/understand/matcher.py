"""Catalog titles as people type them: exact, article-, accent- and typo-tolerant look-ups."""

from __future__ import annotations

import logging
import math
import re
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from rapidfuzz import fuzz, process

from recagents.data.titles import move_article, title_variants
from recagents.errors import DataError
from recagents.graph.understand.lexicons import genre_phrases
from recagents.graph.understand.tokens import (
    MAX_NGRAM,
    MAX_SCAN_CHARS,
    Span,
    Word,
    clean,
    distinctive,
    fold,
    is_break,
    norm_tokens,
    resolve_overlaps,
    sequel_numbers,
    tokenize,
)
from recagents.graph.understand.vocabulary import (
    COMMON_WORDS,
    EN_ARTICLES,
    IGNORED_GENRES,
    MEDIA_NOUNS,
    STOPWORDS,
    TITLE_CUE_BIGRAMS,
    TITLE_CUES,
)

if TYPE_CHECKING:
    from recagents.data import Dataset

logger = logging.getLogger(__name__)

#: Fuzzy title look-ups per message (each is one rapidfuzz scan over titles of similar length).
MAX_FUZZY_QUERIES = 300
#: Minimum rapidfuzz ratio for a fuzzy multi-word title inside free text.
FUZZY_SPAN_SCORE = 88.0
#: Minimum rapidfuzz ratio for :meth:`CatalogMatcher.find` (a whole string typed as a title).
FIND_SCORE = 85.0

_TRAILING_YEAR = re.compile(r"[\s,(\[]*((?:18|19|20)\d{2})\s*[)\]]?\s*$")
_YEAR_AFTER = re.compile(r"\s*(?:\(\s*|\[\s*|,\s*)?((?:18|19|20)\d{2})(?!\d)\s*[)\]]?")
_QUOTED = re.compile(
    r"\"([^\"\n]{1,120})\"|“([^”\n]{1,120})”|«([^»\n]{1,120})»|(?<!\w)'([^'\n]{1,120})'(?!\w)"
)


@dataclass(frozen=True, slots=True)
class Mention:
    """A catalog title found inside a message.

    Attributes:
        item_id: Catalog item id.
        start: Offset of the first character of the mention in the message.
        end: Offset just past the mention (a year right after the title is included).
        score: 100 for an exact (normalised) match, the rapidfuzz ratio for a fuzzy one.
        text: The mention as the person typed it.
    """

    item_id: str
    start: int
    end: int
    score: float
    text: str


class CatalogMatcher:
    """Titles typed by a person -> catalog item ids. Built once per dataset, reused every turn.

    Every title is indexed under each of its display forms (MovieLens "Godfather, The" is also
    "The Godfather"; parenthesised alternatives such as "Seven (Se7en)" give "Se7en"), with and
    without a leading English article, and with the part before a colon as a weaker alias
    ("Mystery Science Theater 3000: The Movie"). Keys are accent-folded, lower-case words joined
    without spaces, so punctuation and spacing never matter.

    Args:
        dataset: The catalog.
        popularity: One score per item index used to break ties between remakes and homonyms
            (default: number of interactions per item).

    Raises:
        DataError: ``popularity`` does not have one value per item.
    """

    def __init__(self, dataset: Dataset, popularity: Sequence[float] | None = None) -> None:
        items = dataset.items
        self._ids: list[str] = [str(v) for v in items["item_id"].tolist()]
        self._index: dict[str, int] = {item: idx for idx, item in enumerate(self._ids)}
        n = len(self._ids)
        self._pop = self._popularity(dataset, popularity, n)
        years = items["year"] if "year" in items else [None] * n
        self._years: list[int | None] = [_year_or_none(y) for y in years]
        self._titles: list[str] = [str(t) for t in items["title"].tolist()]
        self._exact: dict[str, list[tuple[int, bool]]] = defaultdict(list)
        self._first_tokens: set[str] = set()
        fuzzy: dict[tuple[str, int], None] = {}
        self._max_tokens = 1
        for idx, title in enumerate(self._titles):
            if fold(title).strip() in IGNORED_GENRES:  # ML-100K has an item titled "unknown"
                continue
            for variant in title_variants(title):
                tokens = tuple(norm_tokens(variant))
                if not tokens:
                    continue
                self._add(tokens, idx, alias=False)
                body = tokens[1:] if tokens[0] in EN_ARTICLES and len(tokens) > 1 else tokens
                fuzzy[(" ".join(body), idx)] = None
                if ":" in variant:
                    head = tuple(norm_tokens(variant.split(":", 1)[0]))
                    if len([t for t in head if t not in EN_ARTICLES]) >= 2:
                        self._add(head, idx, alias=True)
        ordered = sorted(fuzzy, key=lambda pair: len(pair[0]))
        self._fz_keys: list[str] = [key for key, _ in ordered]
        self._fz_index: list[int] = [idx for _, idx in ordered]
        self._fz_lens: list[int] = [len(key) for key in self._fz_keys]
        self._exact = dict(self._exact)
        self._blocked = genre_phrases(dataset)
        self._plain_tokens = COMMON_WORDS | {t for phrase in self._blocked for t in phrase.split()}
        logger.debug("catalog matcher: %d items, %d keys", n, len(self._exact))

    @staticmethod
    def _popularity(dataset: Dataset, popularity: Sequence[float] | None, n: int) -> np.ndarray:
        if popularity is not None:
            values = np.asarray(popularity, dtype=np.float64)
            if values.shape != (n,):
                raise DataError(
                    f"popularity has {values.size} values but the catalog has {n} items: pass "
                    "one value per item index, or None to count interactions"
                )
            return values
        inter = dataset.interactions
        if len(inter) == 0 or "item" not in inter:
            return np.zeros(n)
        return np.bincount(inter["item"].to_numpy(dtype=np.int64), minlength=n)[:n].astype(float)

    def _add(self, tokens: tuple[str, ...], idx: int, *, alias: bool) -> None:
        keys = {"".join(tokens)}
        if tokens[0] in EN_ARTICLES and len(tokens) > 1:
            keys.add("".join(tokens[1:]))
            self._first_tokens.add(tokens[1])
        self._first_tokens.add(tokens[0])
        for key in keys:
            entries = self._exact[key]
            if (idx, alias) not in entries and (idx, False) not in entries:
                entries.append((idx, alias))
        self._max_tokens = min(MAX_NGRAM, max(self._max_tokens, len(tokens)))

    # ---------------------------------------------------------------- public API

    def __len__(self) -> int:
        return len(self._ids)

    def display(self, item_id: str) -> str:
        """``Title (Year)`` with the article in front, for replies ("The Godfather (1972)").

        Raises:
            KeyError: Unknown item id.
        """
        return self._display(self._index[str(item_id)])

    def find(self, text: str, *, prefer: Collection[str] = ()) -> str | None:
        """The item a person means by a typed title, or None.

        Tolerates case, punctuation, accents, a missing or extra leading article ("Godfather",
        "The Godfather", "Godfather, The"), typos ("Godfater") and a year that picks between
        remakes ("Sabrina (1954)", "sabrina 1954"). Without a year, an item in ``prefer`` (the
        items just shown) wins, then the most popular.

        Args:
            text: What the person typed as a title.
            prefer: Item ids to favour among equally good matches.
        """
        found = self._find(text, prefer)
        return self._ids[found[0]] if found else None

    def mentions(self, message: str, *, prefer: Collection[str] = ()) -> list[Mention]:
        """Catalog titles mentioned inside free text, in order, without overlaps.

        Exact normalised n-grams are taken anywhere, except that a title made only of everyday
        words ("Heat", "Big", "Now and Then") needs a hint that it is a title: a capital letter
        that is not the sentence's first, quotes, or a cue word right before it ("like", "loved",
        "seen", "watched", "about"...). Multi-word spans also match fuzzily (ratio >= 88) when
        they hold a word that is not everyday English; a single unusual word right after a cue
        ("I loved godfater") too. Only the first :data:`MAX_SCAN_CHARS` characters are read.

        Args:
            message: The chat message.
            prefer: Item ids to favour between homonyms (the items just shown).
        """
        text = clean(message[:MAX_SCAN_CHARS])
        words = tokenize(text)
        spans = resolve_overlaps(s for s in self._spans(text, words, prefer) if s.kind == "title")
        return [
            Mention(s.value, s.start, s.end, round(s.score, 1), text[s.start : s.end])
            for s in spans
        ]

    def closest(self, text: str, n: int = 3) -> list[tuple[str, str, float]]:
        """The ``n`` catalog titles closest to ``text``, for "did you mean ...?" replies.

        Returns:
            ``(item_id, "Title (Year)", score)`` tuples, best first (rapidfuzz QRatio, 0-100);
            ties go to the more popular item.
        """
        tokens = norm_tokens(clean(text[:300]))
        if tokens and tokens[0] in EN_ARTICLES and len(tokens) > 1:
            tokens = tokens[1:]
        query = " ".join(tokens)
        if not query or n <= 0:
            return []
        hits = process.extract(query, self._fz_keys, scorer=fuzz.QRatio, limit=max(10, n * 5))
        best: dict[int, float] = {}
        for _, score, k in hits:
            idx = self._fz_index[k]
            best[idx] = max(best.get(idx, 0.0), float(score))
        ranked = sorted(best.items(), key=lambda kv: (-round(kv[1], 1), -self._pop[kv[0]]))
        return [(self._ids[i], self._display(i), round(s, 1)) for i, s in ranked[:n]]

    # ---------------------------------------------------------------- internals

    def _display(self, idx: int) -> str:
        title = move_article(re.sub(r"\s*\([^()]*\)\s*$", "", self._titles[idx]) or "")
        title = title or self._titles[idx]
        year = self._years[idx]
        return f"{title} ({year})" if year is not None else title

    def _choose(
        self, entries: Sequence[tuple[int, bool]], year: int | None, prefer: Collection[str]
    ) -> tuple[int, bool]:
        """Pick one item among homonyms; returns it and whether ``year`` decided."""
        candidates = [idx for idx, alias in entries if not alias] or [idx for idx, _ in entries]
        used_year = False
        if year is not None:
            dated = [idx for idx in candidates if self._years[idx] == year]
            if dated:
                candidates, used_year = dated, True
        preferred = [idx for idx in candidates if self._ids[idx] in prefer]
        if preferred:
            candidates = preferred
        return max(candidates, key=lambda idx: (self._pop[idx], -idx)), used_year

    def _fuzzy_hits(self, query: str, cutoff: float, limit: int) -> list[tuple[int, float]]:
        """Fuzzy look-up restricted to titles whose length allows the cutoff ratio at all."""
        size = len(query)
        ratio = cutoff / (200.0 - cutoff)  # the shortest/longest length ratio that can pass
        lo = bisect_left(self._fz_lens, math.floor(size * ratio))
        hi = bisect_right(self._fz_lens, math.ceil(size / ratio))
        if lo >= hi:
            return []
        hits = process.extract(
            query, self._fz_keys[lo:hi], scorer=fuzz.ratio, score_cutoff=cutoff, limit=limit
        )
        numbers = sequel_numbers(query)
        return [
            (self._fz_index[lo + k], float(score))
            for key, score, k in hits
            if sequel_numbers(key) == numbers  # "Toy Story 3" is not "Toy Story"
        ]

    def _find(
        self, text: str, prefer: Collection[str] = (), cutoff: float = FIND_SCORE
    ) -> tuple[int, float] | None:
        text = clean(text[:300]).strip()
        year: int | None = None
        body = text
        match = _TRAILING_YEAR.search(text)
        if match and text[: match.start()].strip(" ,([-"):
            year, body = int(match.group(1)), text[: match.start()]
        for candidate in (body, text) if year is not None else (text,):
            tokens = norm_tokens(move_article(candidate))
            if not tokens:
                continue
            keys = ["".join(tokens)]
            if tokens[0] in EN_ARTICLES and len(tokens) > 1:
                keys.append("".join(tokens[1:]))
            for key in keys:
                entries = self._exact.get(key)
                if entries:
                    idx, _ = self._choose(entries, year if candidate is body else None, prefer)
                    return idx, 100.0
        tokens = norm_tokens(move_article(body))
        if tokens and tokens[0] in EN_ARTICLES and len(tokens) > 1:
            tokens = tokens[1:]
        query = " ".join(tokens)
        if len(query) < 4:
            return None
        hits = self._fuzzy_hits(query, cutoff, limit=10)
        if not hits:
            return None
        top = max(score for _, score in hits)
        close = [(idx, score) for idx, score in hits if score >= top - 2.0]
        idx, _ = self._choose(
            [(i, False) for i, _ in sorted(close, key=lambda h: -h[1])], year, prefer
        )
        return idx, dict(close)[idx]

    def _is_cue(self, words: Sequence[Word], i: int) -> bool:
        """Whether the word(s) right before ``words[i]`` make a title plausible."""
        if i == 0 or is_break(words[i]):
            return False
        if words[i - 1].norm in TITLE_CUES:
            return True
        return i >= 2 and (words[i - 2].norm, words[i - 1].norm) in TITLE_CUE_BIGRAMS

    def _is_cued(self, words: Sequence[Word], i: int) -> bool:
        """A cue right before ``words[i]``, or before an article right before it.

        People type "I liked the fugitve" as often as "I liked fugitve": the article must not
        hide the cue, or a typo resolves bare but not inside a sentence.
        """
        if self._is_cue(words, i):
            return True
        return (
            i >= 2
            and words[i - 1].norm in EN_ARTICLES
            and not is_break(words[i])
            and self._is_cue(words, i - 1)
        )

    @staticmethod
    def _inside_name(words: Sequence[Word], i: int, j: int) -> bool:
        """Whether a capitalised word is glued to another capitalised word (a longer name)."""
        after = j < len(words) and words[j].cap and not is_break(words[j])
        before = (
            i > 0
            and words[i - 1].cap
            and not words[i - 1].sent_start
            and words[i - 1].norm not in TITLE_CUES
            and not is_break(words[i])
        )
        return after or before

    def _gate(self, words: Sequence[Word], i: int, j: int) -> bool:
        """Whether an exact n-gram match at ``words[i:j]`` is plausibly meant as a title."""
        body = words[i:j]
        if len(body) > 1 and body[0].norm in EN_ARTICLES:
            body = body[1:]
        tokens = tuple(w.norm for w in body)
        if " ".join(tokens) in self._blocked:  # "horror", "love story", "westerns" are genres
            return False
        if len(body) == 1 and body[0].cap and self._inside_name(words, i, j):
            return False  # "Michael Keaton", "Jack Nicholson": a name, not "Michael" or "Jack"
        caps = any(w.cap and not w.sent_start for w in body)
        cue = self._is_cue(words, i)
        if any(distinctive(t) for t in tokens) and (len(tokens) > 1 or len(tokens[0]) >= 5):
            return True
        if j < len(words) and words[j].norm in MEDIA_NOUNS and not caps:
            return False  # "action movies", "big fans"
        verdict = j < len(words) and words[j].norm in {"was", "is", "s"} and not is_break(words[j])
        caps = caps or (verdict and all(w.cap for w in body))  # "Heat was great."
        if len(tokens) == 1:
            token = tokens[0]
            if len(token) <= 1 or token in STOPWORDS or token.isdigit():
                # "it", "up", "her", "m" (from I'm) are words first; a capital can make them titles.
                if token.isdigit():
                    return cue and len(token) >= 3  # "I loved 1941"
                return caps and len(token) >= 2
            return caps or cue
        if all(t in STOPWORDS for t in tokens):
            return caps  # "Now and Then", "To Live"
        return caps or cue or sum(w.cap for w in body) >= 2

    def _spans(self, text: str, words: Sequence[Word], prefer: Collection[str]) -> list[Span]:
        """Candidate title spans, overlapping; the caller resolves them.

        Four passes, from the surest to the most tentative: quoted spans, exact n-grams, fuzzy
        multi-word spans, and one unusual word after a cue. The last two share the per-message
        budget of :data:`MAX_FUZZY_QUERIES` look-ups. Quoted spans that match nothing come back
        as ``kind="quoted"`` so the parser can report them as unknown titles.
        """
        spans = self._quoted_spans(text, words, prefer)
        exact, exact_at = self._exact_spans(text, words, prefer)
        fuzzy, queries = self._fuzzy_spans(text, words, prefer, exact_at)
        cued = self._cued_word_spans(text, words, prefer, queries)
        return spans + exact + fuzzy + cued

    def _quoted_spans(
        self, text: str, words: Sequence[Word], prefer: Collection[str]
    ) -> list[Span]:
        """Quoted spans are titles by intent: each is looked up whole, typos allowed."""
        spans: list[Span] = []
        for match in _QUOTED.finditer(text):
            group = next(g for g in range(1, 5) if match.group(g) is not None)
            qs, qe = match.start(group), match.end(group)
            inside = [k for k, w in enumerate(words) if w.start >= qs and w.end <= qe]
            if not inside:
                continue
            i, j = inside[0], inside[-1] + 1
            found = self._find(text[qs:qe], prefer)
            if found:
                idx, score = found
                spans.append(
                    Span(i, j, "title", self._ids[idx], score, match.start(), match.end(), True)
                )
            elif not all(w.norm in self._plain_tokens for w in words[i:j]):
                # 'I said "no horror"' quotes plain words, not a title: leave them to the rules.
                spans.append(Span(i, j, "quoted", text[qs:qe].strip(), 100.0, qs, qe, quoted=True))
        return spans

    def _exact_spans(
        self, text: str, words: Sequence[Word], prefer: Collection[str]
    ) -> tuple[list[Span], set[tuple[int, int]]]:
        """Exact n-grams, longest first at each start, and the ``(i, j)`` ranges they cover."""
        spans: list[Span] = []
        exact_at: set[tuple[int, int]] = set()
        n_words = len(words)
        for i in range(n_words):
            if words[i].norm not in self._first_tokens:
                continue
            for n in range(min(self._max_tokens, n_words - i), 0, -1):
                key = "".join(w.norm for w in words[i : i + n])
                entries = self._exact.get(key)
                if not entries or not self._gate(words, i, i + n):
                    continue
                spans.append(self._dated_span(text, words, i, i + n, entries, 100.0, prefer))
                exact_at.add((i, i + n))
                break
        return spans, exact_at

    def _fuzzy_spans(
        self,
        text: str,
        words: Sequence[Word],
        prefer: Collection[str],
        exact_at: Collection[tuple[int, int]],
    ) -> tuple[list[Span], int]:
        """Fuzzy multi-word spans that hold at least one unusual word; also the look-ups spent."""
        spans: list[Span] = []
        n_words = len(words)
        queries = 0
        for i in range(n_words):
            first = words[i].norm
            if queries >= MAX_FUZZY_QUERIES:
                break
            if (first in STOPWORDS and first not in EN_ARTICLES) or first in TITLE_CUES:
                continue
            for n in range(2, min(6, n_words - i) + 1):
                if is_break(words[i + n - 1]):
                    break
                last = words[i + n - 1].norm
                if last in STOPWORDS or (i, i + n) in exact_at:
                    continue
                tokens = [w.norm for w in words[i : i + n]]
                if tokens[0] in EN_ARTICLES:
                    tokens = tokens[1:]
                if len(tokens) < 2:
                    continue
                if not any(distinctive(t) for t in tokens) and not (
                    self._is_cued(words, i) and any(_unusual(t) for t in tokens)
                ):
                    continue  # "lion kng" after "loved (the)": a typo'd title, cued
                query = " ".join(tokens)
                if len(query) < 6 or query in self._blocked:
                    continue
                queries += 1
                hits = self._fuzzy_hits(query, FUZZY_SPAN_SCORE, limit=5)
                if hits:
                    top = hits[0][1]
                    entries = [(idx, False) for idx, score in hits if score >= top - 1.0]
                    spans.append(self._dated_span(text, words, i, i + n, entries, top, prefer))
        return spans, queries

    def _cued_word_spans(
        self, text: str, words: Sequence[Word], prefer: Collection[str], queries: int
    ) -> list[Span]:
        """One unusual word right after a cue ("I loved godfater"), within the look-up budget."""
        spans: list[Span] = []
        for i in range(1, len(words)):
            token = words[i].norm
            if (
                queries < MAX_FUZZY_QUERIES
                and len(token) >= 5
                and token.isalpha()
                and distinctive(token)
                and self._is_cued(words, i)
                and token not in self._exact
            ):
                queries += 1
                hits = self._fuzzy_hits(token, FUZZY_SPAN_SCORE, limit=5)
                if hits:
                    top = hits[0][1]
                    entries = [(idx, False) for idx, score in hits if score >= top - 1.0]
                    spans.append(self._dated_span(text, words, i, i + 1, entries, top, prefer))
        return spans

    def _dated_span(
        self,
        text: str,
        words: Sequence[Word],
        i: int,
        j: int,
        entries: Sequence[tuple[int, bool]],
        score: float,
        prefer: Collection[str],
    ) -> Span:
        """A title span; a year right after it ("Sabrina (1954)") picks the remake and joins."""
        end = words[j - 1].end
        match = _YEAR_AFTER.match(text, end)
        year = int(match.group(1)) if match else None
        idx, used_year = self._choose(entries, year, prefer)
        if match and (used_year or "(" in match.group(0)):
            end = match.end()
            if j < len(words) and words[j].norm == match.group(1):
                j += 1
        return Span(i, j, "title", self._ids[idx], score, words[i].start, end)


def _unusual(token: str) -> bool:
    """A word that is not English (a typo or a name): "kng" in "lion kng"."""
    return (
        len(token) >= 3
        and token.isalpha()
        and token not in COMMON_WORDS
        and (token not in STOPWORDS)
    )


def _year_or_none(value: Any) -> int | None:
    """A release year as int; missing values (None, NaN, pd.NA) and junk as None."""
    try:
        return int(value)
    except (TypeError, ValueError):  # pd.NA, None and NaN all land here
        return None
