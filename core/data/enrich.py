"""Enrich movie items with director, writer, cast and runtime from bokeh-sampledata's movies.db.

``movies.db`` is OMDb data released CC0 with bokeh-sampledata; it lies inside the installed wheel,
so enrichment works offline. Films are matched on a normalised title key and the release year
(falling back to +-1 year, since MovieLens and OMDb disagree for festival releases).
"""

from __future__ import annotations

import importlib.util
import logging
import sqlite3
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


@lru_cache(maxsize=1)
def _omdb_index() -> dict[tuple[str, int], dict[str, object]]:
    path = movies_db_path()
    if path is None:
        return {}
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = connection.execute(
            'SELECT Title, Year, Runtime, Director, Writer, "Cast", imdbVotes FROM omdb'
        ).fetchall()
    finally:
        connection.close()
    index: dict[tuple[str, int], dict[str, object]] = {}
    for title, year, runtime, director, writer, cast, votes in rows:
        if not title or year is None:
            continue
        key = (title_key(str(title)), int(year))
        record = {
            "director": director or "",
            "writer": writer or "",
            "cast": ", ".join(c.strip() for c in (cast or "").split(",") if c.strip()),
            "runtime": runtime,
            "votes": votes or 0,
        }
        # Several OMDb rows can share a title and year (shorts, TV): keep the most voted.
        if key not in index or int(record["votes"]) > int(index[key]["votes"]):  # type: ignore[call-overload]
            index[key] = record
    return index


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
        if pd.isna(row.year):
            continue
        record = None
        for variant in title_variants(str(row.title)):
            key = title_key(variant)
            for year in (int(row.year), int(row.year) - 1, int(row.year) + 1):
                record = index.get((key, year))
                if record:
                    break
            if record:
                break
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
