"""The store's schema: one genre key for the writer and the readers, names and namespaces.

Before vectorstore/schema.py the item metadata writer and the where-filter built genre keys two
ways, so "Action & Adventure", "Rock/Pop" and "(no genres listed)" (ml-latest-small and ingested
catalogs) matched nothing: a genre filter silently returned no items.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recagents.vectorstore.chroma import ChromaStore
from recagents.vectorstore.memory import InMemoryStore
from recagents.vectorstore.schema import (
    collection_name,
    genre_key,
    item_metadata,
    parse_collection_name,
    run_namespace,
    where_filter,
)

GENRES = ["Action & Adventure", "Rock/Pop", "(no genres listed)", "Children's", "Sci-Fi|Horror"]


def catalog() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": [f"i{n}" for n in range(len(GENRES))],
            "title": [f"Film {n}" for n in range(len(GENRES))],
            "year": [1990.0, 1995.0, float("nan"), 2001.0, 1985.0],
            "genres": GENRES,
        }
    )


@pytest.fixture(params=["memory", "chroma"])
def store(request: pytest.FixtureRequest, tmp_path):  # type: ignore[no-untyped-def]
    made = InMemoryStore() if request.param == "memory" else ChromaStore(path=tmp_path / "c")
    yield made
    made.close()


def _published(store) -> str:  # type: ignore[no-untyped-def]
    items = catalog()
    name = collection_name(run_namespace("t", 1, "r"), "item", 0)
    vectors = np.eye(len(items), dtype=np.float32) + 0.01
    store.upsert(name, list(items["item_id"]), vectors, item_metadata(items))
    return name


@pytest.mark.parametrize(
    ("genre", "expected"),
    [
        ("Action & Adventure", ["i0"]),
        ("Rock/Pop", ["i1"]),
        ("(no genres listed)", ["i2"]),
        ("Children's", ["i3"]),
        ("Horror", ["i4"]),
    ],
)
def test_a_genre_filter_finds_exactly_the_items_written_with_that_genre(
    store, genre: str, expected: list[str]
) -> None:
    name = _published(store)
    query = np.ones(len(GENRES), dtype=np.float32)
    found = store.query(name, query, k=10, where=where_filter({"genres_include": [genre]}))[0]
    assert found.ids == expected
    others = store.query(name, query, k=10, where=where_filter({"genres_exclude": [genre]}))[0]
    assert sorted(others.ids) == sorted(set(catalog()["item_id"]) - set(expected))


def test_genre_keys_are_distinct_valid_metadata_keys() -> None:
    keys = [genre_key(g) for g in ["Action & Adventure", "Rock/Pop", "(no genres listed)"]]
    assert keys == ["genre_action_adventure", "genre_rock_pop", "genre_no_genres_listed"]
    assert genre_key("Children's") == "genre_childrens" and genre_key("Sci-Fi") == "genre_sci_fi"
    assert genre_key("Film-Noir") == genre_key("film noir")


def test_metadata_holds_title_year_and_one_flag_per_genre() -> None:
    metas = item_metadata(catalog())
    assert metas[4] == {"title": "Film 4", "year": 1985, "genre_sci_fi": True, "genre_horror": True}
    assert "year" not in metas[2]  # unknown year: no key rather than a NaN


def test_where_filter_combines_constraints_and_is_none_without_any() -> None:
    assert where_filter({}) is None
    assert where_filter({"year_from": 1990}) == {"year": {"$gte": 1990}}
    both = where_filter({"genres_include": ["Rock/Pop", "Horror"], "year_to": 1999})
    assert both == {
        "$and": [
            {"$or": [{"genre_rock_pop": True}, {"genre_horror": True}]},
            {"year": {"$lte": 1999}},
        ]
    }


def test_collection_names_round_trip_through_the_run_namespace() -> None:
    namespace = run_namespace("movielens-100k", 2020, "default")
    assert namespace == "movielens-100k-s2020-default"
    name = collection_name(namespace, "item", 3)
    assert name == "ra.movielens-100k-s2020-default.item.v0003"
    assert parse_collection_name(name) == (namespace, "item", 3)
