"""Issue 10, sections 2-3 on real MovieLens-100K: constraints kept, shortfall said, cold lists.

Real trained agents, real embedded ChromaDB, real LangGraph: every list below is checked against
the catalog's own genres, years, people and train ratings, never against remembered titles.
"""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _row(rec, item_id):  # type: ignore[no-untyped-def]
    return rec.dataset.items.iloc[rec.dataset.item_map.index(item_id)]


def _bounded(items) -> None:  # type: ignore[no-untyped-def]
    """No sentinel leaves the engine: finite scores of learned size, a match in [0, 1]."""
    for item in items:
        assert np.isfinite(item.score) and abs(item.score) < 1e6, item
        assert 0.0 <= item.match <= 1.0, item


def test_a_person_constraint_is_kept_and_the_shortfall_said(rec):
    reply = rec.chat("Hitchcock films please", thread_id="h", k=5)
    assert reply.items and all(
        "Alfred Hitchcock" in _row(rec, i.id)["director"] for i in reply.items
    )
    _bounded(reply.items)
    sixties = rec.chat("from the 60s", thread_id="h", k=5)
    hitchcock_60s = [
        i
        for i in range(rec.dataset.n_items)
        if "Alfred Hitchcock" in str(rec.dataset.items.iloc[i]["director"])
        and 1960 <= rec.dataset.items.iloc[i]["year"] <= 1969
    ]
    assert 0 < len(hitchcock_60s) < 5  # the catalog's truth the reply must state
    for item in sixties.items:  # never padded with films outside the constraints
        row = _row(rec, item.id)
        assert "Alfred Hitchcock" in row["director"] and 1960 <= row["year"] <= 1969
    _bounded(sixties.items)
    assert "in my catalog" in sixties.text and "want me to widen to the 1950s?" in sixties.text
    assert "-99999" not in sixties.text and "couldn't find" not in sixties.text


def test_a_constrained_list_reaching_past_the_candidates_has_no_sentinel(rec):
    """Few films match: the catalog scan brings items the ranker never scored as candidates."""
    reply = rec.chat("something with Tom Hanks", thread_id="th", k=10)
    assert reply.items and all("Tom Hanks" in _row(rec, i.id)["cast"] for i in reply.items)
    _bounded(reply.items)
    assert len(reply.items) < 10 and reply.text.startswith(f"Only {len(reply.items)} films")
    assert all(f"{i.match * 100:.0f}" for i in reply.items)
    recs = rec.recommend(None, k=20, filters={"people": ["Tom Hanks"]})
    assert recs and len(recs) < 20
    _bounded(recs)


def test_a_new_person_gets_popular_well_liked_varied_films(rec, engine):
    cold = rec.engine.coldstart
    picks = rec.recommend("someone-new", k=10)
    idx = [rec.dataset.item_map.index(r.id) for r in picks]
    assert all(cold.popular[i] for i in idx)  # among the 10% most rated
    assert min(cold.mean_rating[i] for i in idx) >= 3.9  # and well liked (catalog mean ~3.5)
    genres = [set(_row(rec, r.id)["genres"].split("|")) for r in picks]
    assert len(set().union(*genres)) >= 6 and sum("Drama" in g for g in genres) <= 6
    _bounded(picks)
    reply = rec.chat("just recommend me something", thread_id="c", k=5)
    if not reply.items:  # one clarifying question first, then the list
        reply = rec.chat("anything is fine", thread_id="c", k=5)
    assert [i.id for i in reply.items] == [r.id for r in picks[:5]] or all(
        cold.popular[rec.dataset.item_map.index(i.id)] for i in reply.items
    )
    for item in reply.items:
        index = rec.dataset.item_map.index(item.id)
        assert ("most-rated" in item.reason) == bool(cold.popular[index]), item.reason
        assert f"from {int(cold.counts[index])} ratings" in item.reason
    horror = rec.recommend("someone-new", k=5, filters={"genres_include": ["Horror"]})
    assert len(horror) == 5 and all("Horror" in _row(rec, r.id)["genres"] for r in horror)


def test_popular_is_only_written_when_true(rec):
    cold = rec.engine.coldstart
    reply = rec.chat("horror from the 1930s", thread_id="rare", k=5)
    for item in reply.items:
        index = rec.dataset.item_map.index(item.id)
        if not cold.popular[index]:
            assert "popular" not in item.reason.lower() and "most-rated" not in item.reason


def _fargo_pulp_80s(rec):  # type: ignore[no-untyped-def]
    reply = rec.chat("I liked Fargo and Pulp Fiction, but from the 80s", thread_id="fp", k=5)
    assert len(reply.items) == 5
    genres = [set(_row(rec, i.id)["genres"].split("|")) for i in reply.items]
    return reply, genres


def test_two_liked_films_keep_the_decade_and_mostly_share_their_genres(rec):
    reply, genres = _fargo_pulp_80s(rec)
    assert all(1980 <= _row(rec, i.id)["year"] <= 1989 for i in reply.items)
    seeds = {"Crime", "Thriller", "Drama"}  # Fargo: Crime|Drama|Thriller; Pulp Fiction: Crime|Drama
    assert sum(bool(g & seeds) for g in genres) >= 3, reply.text
    _bounded(reply.items)


def test_two_crime_films_from_another_decade_bring_crime_films(rec):
    """Issue 10: this brought Raiders, Blade Runner, Back to the Future (xfail until 2026-12-04)."""
    reply, genres = _fargo_pulp_80s(rec)
    assert sum(bool({"Crime", "Thriller"} & g) for g in genres) >= 4, reply.text
    assert sum("Crime" in g for g in genres) >= 2, reply.text  # the catalog has 3 from the 80s
    why = rec.chat("why the first one?", thread_id="fp", k=5)
    assert reply.items[0].title in why.text


def test_a_family_film_from_another_era_brings_family_films(rec):
    reply = rec.chat("I loved Toy Story. Anything from the 60s or 70s?", thread_id="ts", k=5)
    assert len(reply.items) == 5, reply.text
    rows = [_row(rec, i.id) for i in reply.items]
    assert all(1960 <= r["year"] <= 1979 for r in rows), reply.text
    family = [r for r in rows if {"Animation", "Children's"} & set(r["genres"].split("|"))]
    assert len(family) >= 4, reply.text
    _bounded(reply.items)


def test_one_liked_film_brings_films_like_it_not_blockbusters(rec):
    """Issue 10: "The Godfather" once brought Godfather II, then Star Wars, Return of the Jedi."""
    reply = rec.chat("I liked The Godfather", thread_id="g", k=5)
    assert len(reply.items) == 5
    crime = [i for i in reply.items if "Crime" in _row(rec, i.id)["genres"]]
    assert len(crime) >= 4, reply.text
    _bounded(reply.items)
