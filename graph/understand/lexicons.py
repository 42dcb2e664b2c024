"""Genres and people, both built from the catalog's own columns so any dataset works."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from recagents.graph.understand.tokens import MAX_NGRAM, Span, Word, is_break, norm_key, norm_tokens
from recagents.graph.understand.vocabulary import (
    COMMON_WORDS,
    COMPARATIVES,
    GENRE_SYNONYMS,
    IGNORED_GENRES,
    MEDIA_NOUNS,
    NAME_SUFFIXES,
    PERSON_CUES,
)

if TYPE_CHECKING:
    from recagents.data import Dataset

# --------------------------------------------------------------------------------------------
# Genres


def genre_phrases(dataset: Dataset) -> frozenset[str]:
    """Every phrase that names a genre, so the title matcher does not take "Horror" for a film."""
    names = {" ".join(norm_tokens(g)) for g in _catalog_genres(dataset)}
    plurals = {f"{n}s" for n in names if n}
    return frozenset(names | plurals | set(GENRE_SYNONYMS))


def _catalog_genres(dataset: Dataset) -> list[str]:
    if "genres" not in dataset.items:
        return []
    found: Counter[str] = Counter()
    for cell in dataset.items["genres"].tolist():
        for name in str(cell).split("|"):
            name = name.strip()
            if name and " ".join(norm_tokens(name)) not in IGNORED_GENRES:
                found[name] += 1
    return sorted(found)


class GenreLexicon:
    """Genre words -> catalog genre names, built from the catalog's own genre column.

    The catalog's names are always recognised (case- and punctuation-insensitive, singular or
    plural); English synonyms ("funny", "scary", "sci-fi", "rom-com", "kids", listed in
    ``words/genres.toml``) map onto whichever catalog name exists ("Children's" in ML-100K,
    "Children" in ml-latest-small) and vanish when the catalog has no such genre. IMAX and
    "unknown" are never offered.

    Args:
        dataset: The catalog.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.genres: list[str] = _catalog_genres(dataset)
        by_norm = {" ".join(norm_tokens(g)): g for g in self.genres}
        self._phrases: dict[tuple[str, ...], tuple[str, ...]] = {}
        for norm, name in by_norm.items():
            self._phrases[tuple(norm.split())] = (name,)
            self._phrases[tuple(f"{norm}s".split())] = (name,)
        for phrase, concepts in GENRE_SYNONYMS.items():
            targets: list[str] = []
            for candidates in concepts:
                hit = next((by_norm[n] for n in map(norm_key, candidates) if n in by_norm), None)
                if hit:
                    targets.append(hit)
            if targets:
                self._phrases.setdefault(tuple(phrase.split()), tuple(targets))
        self._max = max((len(p) for p in self._phrases), default=1)

    def lookup(self, text: str) -> list[str]:
        """Catalog genres a word or phrase names ("rom-com" -> Romance, Comedy); [] if none."""
        tokens = tuple(norm_tokens(text))
        if tokens and tokens[-1] in {"movie", "movies", "film", "films"} and len(tokens) > 1:
            tokens = tokens[:-1]
        return list(self._phrases.get(tokens, ()))

    def spans(self, words: Sequence[Word], covered: Collection[int]) -> list[Span]:
        """Genre phrases among the words not already covered (longest first)."""
        spans: list[Span] = []
        i = 0
        while i < len(words):
            for n in range(min(self._max, len(words) - i), 0, -1):
                if any(k in covered for k in range(i, i + n)):
                    continue
                phrase = tuple(w.norm for w in words[i : i + n])
                names = self._phrases.get(phrase)
                if names:
                    kind = "comparative" if phrase[-1] in COMPARATIVES else "plain"
                    spans.append(
                        Span(
                            i,
                            i + n,
                            "genre",
                            kind,
                            100.0,
                            words[i].start,
                            words[i + n - 1].end,
                            extra=names,
                        )
                    )
                    i += n
                    break
            else:
                i += 1
        return spans


# --------------------------------------------------------------------------------------------
# People


class PeopleLexicon:
    """People's names from the director, writer and cast columns -> canonical catalog spelling.

    Full names match case- and accent-insensitively ("tom hanks", "Tchéky Karyo" = "Tcheky
    Karyo"). A director's surname alone ("Tarantino", "Spielberg") matches when exactly one
    director has it and it is not an everyday word ("Stone", "Wood", "Lee" never do); when it
    is also somebody's first name ("Nolan") it needs a cue ("by Nolan", "a Nolan film").
    Single-word names ("Madonna") must be neither everyday words nor first names. The most
    frequent spelling of a name is the canonical one.

    Args:
        dataset: The catalog.
    """

    def __init__(self, dataset: Dataset) -> None:
        raw, director_raw = self._raw_names(dataset)
        spellings: dict[str, Counter[str]] = defaultdict(Counter)
        directors: set[str] = set()
        for name, count in raw.items():
            key = norm_key(name)
            if key:
                spellings[key][name] += count
                if name in director_raw:
                    directors.add(key)
        self._names: dict[str, str] = {k: c.most_common(1)[0][0] for k, c in spellings.items()}
        multi = [k.split() for k in self._names if " " in k]
        first_names = {parts[0] for parts in multi}
        self._max = min(MAX_NGRAM, max((len(p) for p in multi), default=1))
        surnames: dict[str, set[str]] = defaultdict(set)
        for key in directors:
            parts = [p for p in key.split() if p not in NAME_SUFFIXES]
            if len(parts) > 1:
                surnames[parts[-1]].add(key)
        self._single: dict[str, str] = {}
        # A surname that is also someone's first name ("Nolan") needs a cue: "by Nolan".
        self._cued: dict[str, str] = {}
        for surname, keys in surnames.items():
            if len(keys) == 1 and len(surname) >= 4 and surname not in COMMON_WORDS:
                target = self._single if surname not in first_names else self._cued
                target[surname] = self._names[next(iter(keys))]
        for key, name in self._names.items():
            if (
                " " not in key
                and len(key) >= 3
                and not key.isdigit()
                and key not in COMMON_WORDS
                and key not in first_names
            ):
                self._single.setdefault(key, name)
        self._first_names = frozenset(first_names)

    @staticmethod
    def _raw_names(dataset: Dataset) -> tuple[Counter[str], set[str]]:
        """Every name as spelled in the catalog with its count, and those that direct."""
        items = dataset.items
        raw: Counter[str] = Counter()
        director_raw: set[str] = set()
        for column in ("director", "writer", "cast"):
            if column not in items:
                continue
            for cell in items[column].tolist():
                if not isinstance(cell, str) or not cell:
                    continue
                for name in cell.split(","):
                    name = name.strip()
                    if name:
                        raw[name] += 1
                        if column == "director":
                            director_raw.add(name)
        return raw, director_raw

    def __len__(self) -> int:
        return len(self._names)

    def is_first_name(self, token: str) -> bool:
        """Whether a lower-case word is somebody's first name (so alone it names nobody)."""
        return token in self._first_names

    def lookup(self, text: str) -> str | None:
        """Canonical spelling of a full name or unique director surname; None if unknown."""
        key = norm_key(text)
        if key in self._names and " " in key:
            return self._names[key]
        return self._single.get(key) or self._cued.get(key)

    def spans(self, words: Sequence[Word]) -> list[Span]:
        """Candidate person spans (overlapping; the caller resolves them against titles)."""
        spans: list[Span] = []
        n_words = len(words)
        for i in range(n_words):
            cue = i > 0 and words[i - 1].norm in PERSON_CUES and not is_break(words[i])
            score = 101.0 if cue else 99.0  # a cue wins a tie with a title ("by Ed Wood")
            for n in range(min(self._max, n_words - i), 1, -1):
                if any(is_break(w) for w in words[i + 1 : i + n]):
                    continue
                body = words[i : i + n]
                key = " ".join(w.norm for w in body)
                name = self._names.get(key)
                if name is None:
                    continue
                everyday = all(w.norm in COMMON_WORDS for w in body)
                if everyday and not any(w.cap for w in body) and not cue:
                    continue
                spans.append(Span(i, i + n, "person", name, score, body[0].start, body[-1].end))
                break
            else:
                word = words[i]
                follows_media = i + 1 < n_words and words[i + 1].norm in MEDIA_NOUNS
                name = self._single.get(word.norm)
                if name is None and (cue or follows_media):
                    name = self._cued.get(word.norm)
                if name is None:
                    continue
                if word.cap or cue or follows_media:
                    spans.append(Span(i, i + 1, "person", name, score, word.start, word.end))
        return spans
