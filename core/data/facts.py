"""Per-film fact sheets: everything the conversation may say about a film, and nothing more.

An explanation may only state what we hold. The fact sheet gathers it in one place, from the
catalog row (title, year, MovieLens genres, people) and, for MovieLens films matched in
bokeh-sampledata's CC0 ``movies.db`` (:func:`recagents.data.enrich.omdb_record`), OMDb's country,
language, MPAA rating, Oscar record and Metacritic score, and Rotten Tomatoes' critics' meter,
rating and consensus sentence. The chat model is shown the sheet, and the claim checker in
:mod:`recagents.graph.explain` accepts a sentence only when each of its claims is on it.

Genres are MovieLens's only: OMDb's genre lists in the installed ``movies.db`` are padded (Heat
(1995) is listed as History and Adventure), and a false genre is the error users notice first.
The critics' consensus column is empty for every film in the installed ``movies.db``; the field
stays so a newer file fills it.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

_OSCARS_WON = re.compile(r"\bWon (\d+) Oscars?\b")
_OSCARS_NOMINATED = re.compile(r"\bNominated for (\d+) Oscars?\b")
_CREDIT_NOTE = re.compile(r"\s*\([^)]*\)")


@dataclass(frozen=True)
class FactSheet:
    """What we hold about one film.

    Attributes:
        item_id: Catalog item id.
        title: Display title with year, as the catalog shows it (``Godfather, The (1972)``).
        year: Release year, when known.
        genres: MovieLens genres.
        directors: Directors.
        writers: Writers (credit notes such as "(novel)" dropped).
        cast: Actors, most prominent first (a billing proxy: see
            :func:`recagents.data.enrich.omdb_record`); catalog order when unmatched.
        countries: Production countries (OMDb).
        languages: Spoken languages (OMDb).
        oscars_won: Oscars won (0 when none or unknown).
        oscar_nominations: Oscar nominations (0 when none or unknown).
        rated: MPAA rating (``R``, ``PG-13``...), or ``""``.
        runtime: Minutes, when known.
        metacritic: Metacritic score out of 100, when known.
        critics_meter: Rotten Tomatoes' share of positive reviews (percent), when known.
        critics_reviews: Number of reviews behind ``critics_meter``.
        consensus: Rotten Tomatoes' critics' consensus sentence, or ``""``.
    """

    item_id: str
    title: str
    year: int | None = None
    genres: tuple[str, ...] = ()
    directors: tuple[str, ...] = ()
    writers: tuple[str, ...] = ()
    cast: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    oscars_won: int = 0
    oscar_nominations: int = 0
    rated: str = ""
    runtime: int | None = None
    metacritic: int | None = None
    critics_meter: int | None = None
    critics_reviews: int = 0
    consensus: str = ""

    @property
    def people(self) -> tuple[str, ...]:
        """Everyone credited: directors, writers, cast."""
        return tuple(dict.fromkeys((*self.directors, *self.writers, *self.cast)))

    def lines(self, *, max_cast: int = 5) -> list[str]:
        """The sheet as ``label: value`` lines for a prompt; empty fields are left out.

        The cast is cut to the ``max_cast`` most prominent: a small model given 40 names picks
        one at random.
        """
        fields: list[tuple[str, str]] = [
            ("year", str(self.year) if self.year else ""),
            ("genres", ", ".join(self.genres)),
            ("directed by", ", ".join(self.directors)),
            ("written by", ", ".join(self.writers[:3])),
            ("starring", ", ".join(self.cast[:max_cast])),
            ("country", ", ".join(self.countries)),
            ("language", ", ".join(self.languages)),
            ("Oscars", self.oscar_line()),
            ("rated", self.rated),
            ("runtime", f"{self.runtime} minutes" if self.runtime else ""),
            ("Metacritic", f"{self.metacritic}/100" if self.metacritic is not None else ""),
            (
                "critics",
                f"{self.critics_meter}% positive of {self.critics_reviews} reviews"
                if self.critics_meter is not None and self.critics_reviews
                else "",
            ),
            ("critics' consensus", self.consensus),
        ]
        return [f"{label}: {value}" for label, value in fields if value]

    def oscar_line(self) -> str:
        """``won 2 of 7 nominations``, ``nominated for 1``, or ``""`` when none."""
        if self.oscars_won:
            nominations = max(self.oscars_won, self.oscar_nominations)
            return f"won {self.oscars_won} of {nominations} nominations"
        if self.oscar_nominations:
            return f"nominated for {self.oscar_nominations}, won none"
        return ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (benchmarks dump it next to each checked reply)."""
        return asdict(self)


def _split(value: object) -> tuple[str, ...]:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ()
    names = (_CREDIT_NOTE.sub("", part).strip() for part in str(value).split(","))
    return tuple(dict.fromkeys(n for n in names if n))


def _int(value: object) -> int | None:
    if value is None:
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if number != number else int(number)


def build_fact_sheet(
    item_id: str, title: str, row: pd.Series, record: dict[str, object] | None
) -> FactSheet:
    """A film's sheet from its catalog row and its movies.db record (``None`` when unmatched).

    Args:
        item_id: Catalog item id.
        title: Display title with year.
        row: The film's row of :attr:`Dataset.items`.
        record: :func:`recagents.data.enrich.omdb_record`'s answer for the film.
    """
    genres = tuple(g for g in str(row.get("genres") or "").split("|") if g and g != "unknown")
    cast = _split(row.get("cast"))
    sheet: dict[str, Any] = {
        "item_id": item_id,
        "title": title,
        "year": _int(row.get("year")),
        "genres": genres,
        "directors": _split(row.get("director")),
        "writers": _split(row.get("writer")),
        "cast": cast,
        "runtime": _int(row.get("runtime")) or None,
    }
    if record is not None:
        billing = [n for n in record.get("cast_billing") or () if n in set(cast)]  # type: ignore[attr-defined]
        awards = str(record.get("awards") or "")
        won = _OSCARS_WON.search(awards)
        nominated = _OSCARS_NOMINATED.search(awards)
        sheet.update(
            cast=tuple(dict.fromkeys([*billing, *cast])),
            countries=_split(record.get("country")),
            languages=_split(record.get("language")),
            oscars_won=int(won.group(1)) if won else 0,
            oscar_nominations=int(nominated.group(1)) if nominated else 0,
            rated=str(record.get("rated") or "").strip(),
            metacritic=_int(record.get("metacritic")),
            critics_meter=_int(record.get("critics_meter")),
            critics_reviews=_int(record.get("critics_reviews")) or 0,
            consensus=str(record.get("consensus") or "").strip(),
        )
    return FactSheet(**sheet)
