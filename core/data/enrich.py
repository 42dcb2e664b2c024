"""Enrich movie items with director, writer, cast and runtime from bokeh-sampledata's movies.db.

``movies.db`` is OMDb data released CC0 with bokeh-sampledata; it lies inside the installed wheel,
so enrichment works offline. Films are matched on a normalised title key and the release year
(falling back to +-1 year, since MovieLens and OMDb disagree for festival releases).
"""

from __future__ import annotations

import importlib.util
import logging
import sqlite3
from collections import Counter
from functools import lru_cache
from pathlib import Path

import pandas as pd

from recagents.data.titles import title_key, title_variants

logger = logging.getLogger(__name__)

#: Cast lists in movies.db are alphabetical, not by billing, and run to 124 names: keep them
#: whole so a star ("with Tom Hanks") is always found; item texts show only the first few.


def movies_db_path() -> Path | None:
    """Path of movies.db inside the installed bokeh-sampledata, or None when it is missing."""
    spec = importlib.util.find_spec("bokeh_sampledata")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "_data" / "movies.db"
    return path if path.exists() else None


#: OMDb and Rotten Tomatoes columns kept per film for its fact sheet (:mod:`recagents.data.facts`).
_FACT_QUERY = (
    'SELECT o.Title, o.Year, o.Runtime, o.Director, o.Writer, o."Cast", o.imdbVotes, '
    "o.Language, o.Country, o.Awards, o.Oscars, o.Metacritic, o.Rating, o.Released, "
    "t.Meter, t.Rating, t.Reviews, t.Consensus "
    "FROM omdb o LEFT JOIN tomatoes t ON t.ID = o.ID"
)


@lru_cache(maxsize=1)
def _omdb_index() -> dict[tuple[str, int], dict[str, object]]:
    path = movies_db_path()
    if path is None:
        return {}
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = connection.execute(_FACT_QUERY).fetchall()
    finally:
        connection.close()
    # Prominence: the critics' reviews of every film crediting the person, summed (ties: films).
    attention: Counter[str] = Counter()
    credits: Counter[str] = Counter()
    for row in rows:
        for name in _names(row[5]):
            attention[name] += int(row[16] or 0)
            credits[name] += 1
    index: dict[tuple[str, int], dict[str, object]] = {}
    for (
        title,
        year,
        runtime,
        director,
        writer,
        cast,
        votes,
        language,
        country,
        awards,
        oscars,
        metacritic,
        rated,
        released,
        meter,
        critics_rating,
        reviews,
        consensus,
    ) in rows:
        if not title or year is None:
            continue
        key = (title_key(str(title)), int(year))
        names = _names(cast)
        record = {
            "director": director or "",
            "writer": writer or "",
            "cast": ", ".join(names),
            # Billing is not in movies.db: most prominent first is the proxy (see below); a
            # director in their own cast (Hitchcock's cameos) goes last.
            "cast_billing": sorted(
                names,
                key=lambda n: (n in _names(director), -attention[n], -credits[n], n),
            ),
            "runtime": runtime,
            "votes": votes or 0,
            "language": language or "",
            "country": country or "",
            "awards": awards or "",
            "oscars": int(oscars or 0),
            "metacritic": metacritic,
            "rated": rated or "",
            "released": released or "",
            "critics_meter": meter,
            "critics_rating": critics_rating,
            "critics_reviews": reviews or 0,
            "consensus": (consensus or "").strip(),
        }
        # Several OMDb rows can share a title and year (shorts, TV): keep the most voted.
        if key not in index or int(record["votes"]) > int(index[key]["votes"]):  # type: ignore[call-overload]
            index[key] = record
    return index


def _names(value: object) -> list[str]:
    return [c.strip() for c in str(value or "").split(",") if c.strip()]


def omdb_record(title: str, year: object) -> dict[str, object] | None:
    """The movies.db record for a MovieLens title and year, or None when none matches.

    Matching is the one :func:`enrich_items` uses: each title variant's key, at the year, then
    one year either side. The record holds, besides the people, ``language``, ``country``,
    ``awards`` (OMDb's Oscar sentence), ``oscars`` (won), ``metacritic``, ``rated`` (MPAA),
    ``critics_meter``/``critics_rating``/``critics_reviews`` (Rotten Tomatoes), ``consensus``
    (the critics' consensus sentence; empty for every film in the installed movies.db) and
    ``cast_billing``.

    ``cast_billing`` is the cast ordered by prominence: the number of Rotten Tomatoes reviews of
    all movies.db films crediting each actor, summed (then the number of such films), with a
    director who appears in their own film last. movies.db records no billing order (its
    ``Cast`` is alphabetical and it has no OMDb ``Actors`` field), so this is a proxy for it:
    it puts Robert Duvall and Al Pacino before Abe Vigoda in The Godfather and Leonardo
    DiCaprio first in Titanic, but it is not billing (a busy character actor can come first).
    """
    index = _omdb_index()
    if not index or year is None or pd.isna(year):  # type: ignore[arg-type]
        return None
    for variant in title_variants(str(title)):
        key = title_key(variant)
        for candidate in (int(year), int(year) - 1, int(year) + 1):  # type: ignore[call-overload]
            record = index.get((key, candidate))
            if record:
                return record
    return None


def enrich_items(items: pd.DataFrame) -> dict[str, object]:
    """Fill ``director``, ``writer``, ``cast`` and ``runtime`` in place where a match is found.

    Returns:
        Facts for :attr:`Dataset.info`: matched count and match rate.
    """
    index = _omdb_index()
    if not index:
        logger.warning("bokeh-sampledata's movies.db not found: items stay unenriched")
        return {"enriched": 0, "enrich_rate": 0.0}
    matched = 0
    for row in items.itertuples():
        record = omdb_record(str(row.title), row.year)
        if record is None:
            continue
        matched += 1
        for column in ("director", "writer", "cast"):
            if not items.at[row.Index, column]:
                items.at[row.Index, column] = record[column]
        if pd.isna(items.at[row.Index, "runtime"]) and record["runtime"] is not None:
            items.at[row.Index, "runtime"] = record["runtime"]
    rate = matched / max(1, len(items))
    logger.info("enriched %d/%d items from movies.db (%.1f%%)", matched, len(items), 100 * rate)
    return {"enriched": matched, "enrich_rate": round(rate, 4)}
