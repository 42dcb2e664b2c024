"""One contract for every EmbeddingStore: in-memory, embedded ChromaDB and a ChromaDB server.

The data have known answers (hand-built cosines, brute-force neighbours, filters whose matches are
listed by hand), so each test can fail for a real reason.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from recagents.config import Settings
from recagents.errors import ConfigError, UnknownEntityError, VectorStoreError
from recagents.vectorstore.base import EmbeddingStore, QueryResult, normalize_where
from recagents.vectorstore.chroma import ChromaStore, open_store
from recagents.vectorstore.memory import InMemoryStore
from recagents.vectorstore.schema import (
    collection_name,
    latest_version,
    parse_collection_name,
    versions,
)

KINDS = ["memory", "chroma-embedded", "chroma-server"]
CHROMA_KINDS = ["chroma-embedded", "chroma-server"]
CHROMA_NAME_RULE = r"^[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]$"


def make_store(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> EmbeddingStore:
    if kind == "memory":
        return InMemoryStore()
    if kind == "chroma-embedded":
        return ChromaStore(path=tmp_path / "chroma")
    return ChromaStore(url=request.getfixturevalue("chroma_server"))


@pytest.fixture(params=KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EmbeddingStore]:
    made = make_store(request.param, request, tmp_path)
    yield made
    made.close()  # type: ignore[attr-defined]


@pytest.fixture(params=CHROMA_KINDS)
def chroma_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ChromaStore]:
    made = make_store(request.param, request, tmp_path)
    assert isinstance(made, ChromaStore)
    yield made
    made.close()


@pytest.fixture
def name() -> str:
    """A collection name no other test uses (the server is shared by the whole session)."""
    return f"t-{uuid.uuid4().hex[:16]}"


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# --------------------------------------------------------------------------- protocol and writes


def test_every_store_satisfies_the_protocol(store: EmbeddingStore) -> None:
    assert isinstance(store, EmbeddingStore)


def test_upsert_get_round_trip(store: EmbeddingStore, name: str) -> None:
    rng = np.random.default_rng(7)
    ids = [f"item-{i}" for i in range(20)]
    vectors = rng.normal(scale=0.5, size=(20, 8))
    metas = [
        {"title": f"Movie {i}", "year": 1980 + i, "rating": i / 4, "is_even": i % 2 == 0}
        for i in range(20)
    ]
    store.upsert(name, ids, vectors, metas)

    wanted = ["item-13", "item-2", "item-19", "item-0"]
    got_ids, got, got_meta = store.get(name, ids=wanted)
    assert got_ids == wanted
    assert got.dtype == np.float32 and got.shape == (4, 8)
    rows = [ids.index(i) for i in wanted]
    np.testing.assert_allclose(got, vectors[rows], rtol=1e-6, atol=1e-6)
    assert got_meta == [metas[r] for r in rows]
    for meta in got_meta:  # types survive: int stays int, bool stays bool
        assert type(meta["year"]) is int and type(meta["is_even"]) is bool
        assert type(meta["rating"]) is float and type(meta["title"]) is str

    all_ids, all_vectors, all_meta = store.get(name)
    assert sorted(all_ids) == sorted(ids) and all_vectors.shape == (20, 8)
    by_id = dict(zip(all_ids, all_vectors, strict=True))
    np.testing.assert_allclose(np.stack([by_id[i] for i in ids]), vectors, atol=1e-6)
    assert store.count(name) == 20


def test_upsert_replaces_vectors_and_merges_metadata(store: EmbeddingStore, name: str) -> None:
    store.upsert(name, ["a", "b"], np.eye(2, 3), [{"year": 1990, "lang": "en"}, {"year": 2000}])
    store.upsert(name, ["a"], np.array([[0.0, 0.0, 2.0]]), [{"year": 1991}])
    store.upsert(name, ["b"], np.array([[0.0, 3.0, 0.0]]))  # no metadata: the stored one stays
    ids, vectors, metas = store.get(name, ids=["a", "b"])
    np.testing.assert_allclose(vectors, [[0, 0, 2], [0, 3, 0]], atol=1e-6)
    assert metas == [{"year": 1991, "lang": "en"}, {"year": 2000}]
    assert store.count(name) == 2


def test_numpy_scalars_in_metadata_become_python_values(store: EmbeddingStore, name: str) -> None:
    meta = {"year": np.int64(1994), "score": np.float32(0.5), "flag": np.bool_(True)}
    store.upsert(name, ["a"], np.ones((1, 2)), [meta])
    _, _, metas = store.get(name, ids=["a"])
    assert metas == [{"year": 1994, "score": 0.5, "flag": True}]
    assert type(metas[0]["year"]) is int and type(metas[0]["flag"]) is bool


def test_empty_ids_is_a_no_op(store: EmbeddingStore, name: str) -> None:
    store.upsert(name, [], np.zeros((0, 4)))
    assert name not in store.collections(name)
    store.upsert(name, ["a"], np.ones((1, 4)))
    store.delete(name, ids=[])
    assert store.count(name) == 1


# --------------------------------------------------------------------------- queries


KNOWN = {
    "a": [3.0, 0.0, 0.0, 0.0],  # cos 1.0 with q; far from q in L2, so an L2 index fails
    "b": [1.0, 1.0, 0.0, 0.0],  # cos 0.7071; the L2 nearest neighbour of q
    "c": [1.0, 0.0, 2.0, 0.0],  # cos 0.4472
    "e": [0.0, 0.0, 0.0, 5.0],  # cos 0
    "d": [-2.0, 1.0, 0.0, 0.0],  # cos -0.8944
}


def test_query_returns_known_cosine_neighbours(store: EmbeddingStore, name: str) -> None:
    store.upsert(name, list(KNOWN), np.array(list(KNOWN.values())), [{"k": k} for k in KNOWN])
    [result] = store.query(name, np.array([1.0, 0.0, 0.0, 0.0]), k=3)
    assert isinstance(result, QueryResult)
    assert result.ids == ["a", "b", "c"]
    np.testing.assert_allclose(result.scores, [1.0, 2**-0.5, 5**-0.5], atol=1e-5)
    assert result.metadatas == [{"k": "a"}, {"k": "b"}, {"k": "c"}]

    [everything] = store.query(name, np.array([1.0, 0.0, 0.0, 0.0]), k=50)  # k > count
    assert everything.ids == ["a", "b", "c", "e", "d"]
    np.testing.assert_allclose(
        everything.scores, [1.0, 2**-0.5, 5**-0.5, 0.0, -(0.8**0.5)], atol=1e-5
    )


def test_batch_query_gives_one_result_per_row(store: EmbeddingStore, name: str) -> None:
    vectors = np.array(list(KNOWN.values()))
    store.upsert(name, list(KNOWN), vectors)
    queries = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 1.0], [0.0, 0.0, 1.0, 0.0]])
    results = store.query(name, queries, k=2)
    assert len(results) == 3 and all(len(r) == 2 for r in results)
    assert results[0].ids == ["a", "b"]
    assert results[1].ids == ["e", "b"]
    np.testing.assert_allclose(results[1].scores, [2**-0.5, 0.5], atol=1e-5)
    assert results[2].ids[0] == "c"
    np.testing.assert_allclose(results[2].scores[0], cosine(vectors[2], queries[2]), atol=1e-5)


def test_query_matches_brute_force_on_random_data(store: EmbeddingStore, name: str) -> None:
    rng = np.random.default_rng(11)
    vectors = rng.normal(size=(200, 16))
    ids = [str(i) for i in range(200)]
    store.upsert(name, ids, vectors)
    queries = rng.normal(size=(5, 16))
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    truth = (queries / np.linalg.norm(queries, axis=1, keepdims=True)) @ unit.T
    for result, row in zip(store.query(name, queries, k=10), truth, strict=True):
        order = np.argsort(-row)[:10]
        assert result.ids == [ids[i] for i in order]
        np.testing.assert_allclose(result.scores, row[order], atol=1e-5)
        assert result.scores == sorted(result.scores, reverse=True)
        assert all(-1.0 <= s <= 1.0 for s in result.scores)


def test_zero_vectors_have_zero_similarity(store: EmbeddingStore, name: str) -> None:
    store.upsert(name, ["a", "zero"], np.array([[1.0, 0.0], [0.0, 0.0]]))
    [result] = store.query(name, np.array([1.0, 0.0]), k=2)
    assert result.ids == ["a", "zero"]
    np.testing.assert_allclose(result.scores, [1.0, 0.0], atol=1e-5)


# --------------------------------------------------------------------------- where filters

MOVIES: dict[str, dict[str, Any]] = {
    "m1": {"year": 1985, "rating": 3.5, "genre_drama": True, "lang": "en"},
    "m2": {"year": 1990, "rating": 4.0, "genre_drama": False, "lang": "fr"},
    "m3": {"year": 1995, "rating": 4.5, "genre_drama": True, "lang": "en"},
    "m4": {"year": 2001, "rating": 2.5, "genre_drama": True, "lang": "de"},
    "m5": {"year": 2010, "rating": 3.0, "genre_drama": False},  # no "lang"
    "m6": {"year": 1990, "rating": 5.0, "genre_drama": False, "lang": "en"},
}

FILTERS: list[tuple[dict[str, Any], set[str]]] = [
    ({"year": {"$gte": 1990}}, {"m2", "m3", "m4", "m5", "m6"}),
    ({"year": {"$gt": 1990}}, {"m3", "m4", "m5"}),
    ({"year": {"$lt": 1990}}, {"m1"}),
    ({"year": {"$lte": 1990}}, {"m1", "m2", "m6"}),
    ({"year": 1990}, {"m2", "m6"}),
    ({"year": {"$eq": 1990}}, {"m2", "m6"}),
    ({"year": {"$ne": 1990}}, {"m1", "m3", "m4", "m5"}),
    ({"rating": {"$gt": 3.0}}, {"m1", "m2", "m3", "m6"}),
    ({"genre_drama": True}, {"m1", "m3", "m4"}),
    ({"genre_drama": {"$ne": True}}, {"m2", "m5", "m6"}),
    ({"lang": {"$in": ["en", "de"]}}, {"m1", "m3", "m4", "m6"}),
    ({"year": {"$in": [1985, 2001]}}, {"m1", "m4"}),
    ({"lang": {"$nin": ["en"]}}, {"m2", "m4", "m5"}),  # a missing key passes $nin
    ({"lang": {"$ne": "en"}}, {"m2", "m4", "m5"}),  # ... and $ne
    ({"lang": "xx"}, set()),
    ({"$and": [{"year": {"$gte": 1990}}, {"genre_drama": True}]}, {"m3", "m4"}),
    ({"$or": [{"lang": "fr"}, {"rating": {"$gte": 4.5}}]}, {"m2", "m3", "m6"}),
    ({"$and": [{"year": {"$gte": 1990}}]}, {"m2", "m3", "m4", "m5", "m6"}),
    ({"year": {"$gte": 1990, "$lt": 2001}}, {"m2", "m3", "m6"}),  # several operators: $and
    ({"genre_drama": True, "lang": "en"}, {"m1", "m3"}),  # several fields: $and
    (
        {"$and": [{"$or": [{"lang": "en"}, {"lang": "de"}]}, {"year": {"$in": [1985, 2001]}}]},
        {"m1", "m4"},
    ),
    ({}, set(MOVIES)),
]


def put_movies(store: EmbeddingStore, name: str) -> np.ndarray:
    vectors = np.random.default_rng(3).normal(size=(len(MOVIES), 8))
    store.upsert(name, list(MOVIES), vectors, list(MOVIES.values()))
    return vectors


@pytest.mark.parametrize(("where", "expected"), FILTERS, ids=[str(f[0]) for f in FILTERS])
def test_where_filters_restrict_get_and_query(
    store: EmbeddingStore, name: str, where: dict[str, Any], expected: set[str]
) -> None:
    vectors = put_movies(store, name)
    ids, got, metas = store.get(name, where=where)
    assert set(ids) == expected and len(ids) == len(expected)
    assert got.shape == (len(expected), 8)
    assert all(MOVIES[i] == m for i, m in zip(ids, metas, strict=True))

    [result] = store.query(name, vectors[0], k=10, where=where)
    assert set(result.ids) == expected
    assert result.scores == sorted(result.scores, reverse=True)


def test_get_by_ids_and_where_leaves_out_non_matching(store: EmbeddingStore, name: str) -> None:
    put_movies(store, name)
    ids, vectors, _ = store.get(name, ids=["m4", "m2", "m1"], where={"genre_drama": True})
    assert ids == ["m4", "m1"] and vectors.shape == (2, 8)
    with pytest.raises(UnknownEntityError):
        store.get(name, ids=["m1", "nope"], where={"genre_drama": True})


def test_empty_result_keeps_the_dimension(store: EmbeddingStore, name: str) -> None:
    put_movies(store, name)
    ids, vectors, metas = store.get(name, where={"lang": "xx"})
    assert ids == [] and metas == [] and vectors.shape == (0, 8)
    [result] = store.query(name, np.ones(8), k=3, where={"lang": "xx"})
    assert result.ids == [] and result.scores == []


@pytest.mark.parametrize(
    "where",
    [
        {"year": {"$like": 1990}},
        {"year": {"$gt": "1990"}},
        {"genre_drama": {"$gte": True}},
        {"lang": {"$in": []}},
        {"lang": {"$in": "en"}},
        {"year": {"$in": [1990, "1990"]}},
        {"$and": []},
        {"$not": {"year": 1990}},
        {"year": None},
        {"year": {}},
    ],
    ids=str,
)
def test_malformed_filters_are_refused(
    store: EmbeddingStore, name: str, where: dict[str, Any]
) -> None:
    put_movies(store, name)
    with pytest.raises(VectorStoreError):
        store.get(name, where=where)
    with pytest.raises(VectorStoreError):
        store.query(name, np.ones(8), k=1, where=where)


def test_normalize_where_rewrites_to_chroma_strict_form() -> None:
    assert normalize_where(None) is None and normalize_where({}) is None
    assert normalize_where({"a": 1}) == {"a": {"$eq": 1}}
    assert normalize_where({"a": 1, "b": {"$gt": 2, "$lt": 5}}) == {
        "$and": [{"a": {"$eq": 1}}, {"b": {"$gt": 2}}, {"b": {"$lt": 5}}]
    }
    assert normalize_where({"$or": [{"a": True}]}) == {"a": {"$eq": True}}


# --------------------------------------------------------------------------- deletes


def test_delete_by_ids(store: EmbeddingStore, name: str) -> None:
    put_movies(store, name)
    store.delete(name, ids=["m1", "m3", "not-there"])  # unknown ids are ignored
    assert store.count(name) == 4
    assert sorted(store.get(name)[0]) == ["m2", "m4", "m5", "m6"]
    with pytest.raises(UnknownEntityError):
        store.get(name, ids=["m1"])
    [result] = store.query(name, np.ones(8), k=10)
    assert "m1" not in result.ids and len(result) == 4


def test_delete_by_where_and_by_both(store: EmbeddingStore, name: str) -> None:
    put_movies(store, name)
    store.delete(name, where={"year": {"$lt": 1991}})
    assert sorted(store.get(name)[0]) == ["m3", "m4", "m5"]
    store.delete(name, ids=["m3", "m5"], where={"genre_drama": True})  # only m3 matches
    assert sorted(store.get(name)[0]) == ["m4", "m5"]
    with pytest.raises(VectorStoreError, match="drop"):
        store.delete(name)
    assert store.count(name) == 2


# --------------------------------------------------------------------------- collections


def test_count_collections_and_drop(store: EmbeddingStore, name: str) -> None:
    names = [f"{name}.b", f"{name}.a", f"{name}.c"]
    for i, coll in enumerate(names):
        store.upsert(coll, [str(j) for j in range(i + 1)], np.ones((i + 1, 3)))
    store.upsert(f"x{name}", ["z"], np.ones((1, 3)))
    assert store.collections(name) == sorted(names)
    assert f"x{name}" in store.collections()
    assert [store.count(c) for c in names] == [1, 2, 3]

    store.drop(f"{name}.a")
    store.drop(f"{name}.a")  # dropping twice is fine
    assert store.collections(name) == [f"{name}.b", f"{name}.c"]
    with pytest.raises(VectorStoreError, match="does not exist"):
        store.count(f"{name}.a")
    store.upsert(f"{name}.a", ["new"], np.ones((1, 5)))  # a fresh collection, any dimension
    assert store.count(f"{name}.a") == 1


def test_versioned_collections_and_latest_version(store: EmbeddingStore, name: str) -> None:
    namespace = f"{name}-ml"
    for version in (0, 2, 10):
        store.upsert(collection_name(namespace, "item", version), ["i"], np.ones((1, 2)))
    store.upsert(collection_name(namespace, "item2", 99), ["i"], np.ones((1, 2)))
    store.upsert(collection_name(namespace, "user", 5), ["u"], np.ones((1, 2)))
    store.upsert(collection_name(f"{namespace}-other", "item", 50), ["i"], np.ones((1, 2)))

    assert versions(store, namespace, "item") == [0, 2, 10]
    assert latest_version(store, namespace, "item") == 10
    assert latest_version(store, namespace, "user") == 5
    assert latest_version(store, namespace, "ranking") is None
    latest = collection_name(namespace, "item", latest_version(store, namespace, "item") or 0)
    assert latest.endswith(".item.v0010") and store.count(latest) == 1


def test_collection_name_scheme() -> None:
    import re

    assert collection_name("movielens-100k", "item", 3) == "ra.movielens-100k.item.v0003"
    assert collection_name("movielens-100k", "item", 12345) == "ra.movielens-100k.item.v12345"
    odd = collection_name(" my data/set.v2 ", "user profile", 1)
    assert odd == "ra.my-data-set-v2.user-profile.v0001"
    for made in ("ra.movielens-100k.item.v0003", odd):
        assert re.match(CHROMA_NAME_RULE, made)
    assert parse_collection_name(odd) == ("my-data-set-v2", "user-profile", 1)
    assert parse_collection_name("ra.movielens-100k.item.v0003") == ("movielens-100k", "item", 3)
    for other in ("movies", "ra.a.b", "ra.a.b.c.v1", "ra.a.b.vx", "xra.a.b.v1"):
        assert parse_collection_name(other) is None
    for bad in [("", "item", 1), ("ml", "///", 1), ("ml", "item", -1), ("ml", "item", True)]:
        with pytest.raises(VectorStoreError):
            collection_name(*bad)  # type: ignore[arg-type]
    with pytest.raises(VectorStoreError, match="512"):
        collection_name("n" * 600, "item", 1)


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "bad",
    [None, [1, 2], {"nested": 1}, float("nan"), float("inf"), object(), b"bytes", 2**70],
    ids=["none", "list", "dict", "nan", "inf", "object", "bytes", "huge-int"],
)
def test_bad_metadata_values_are_refused(store: EmbeddingStore, name: str, bad: object) -> None:
    with pytest.raises(VectorStoreError, match="metadata"):
        store.upsert(name, ["a", "b"], np.ones((2, 3)), [{"ok": 1}, {"year": bad}])
    assert name not in store.collections(name)  # nothing was written, not even the good row


@pytest.mark.parametrize("key", ["", "$year", "#year", 7])
def test_bad_metadata_keys_are_refused(store: EmbeddingStore, name: str, key: object) -> None:
    with pytest.raises(VectorStoreError):
        store.upsert(name, ["a"], np.ones((1, 3)), [{key: 1}])  # type: ignore[dict-item]


def test_dimension_is_fixed_for_the_collections_life(store: EmbeddingStore, name: str) -> None:
    store.upsert(name, ["a", "b"], np.ones((2, 4)))
    with pytest.raises(VectorStoreError, match="dimension|4"):
        store.upsert(name, ["c"], np.ones((1, 3)))
    with pytest.raises(VectorStoreError):
        store.query(name, np.ones(3), k=1)
    store.delete(name, ids=["a", "b"])
    assert store.count(name) == 0
    with pytest.raises(VectorStoreError):
        store.upsert(name, ["c"], np.ones((1, 3)))
    assert store.get(name)[1].shape == (0, 4)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf, 1e39])
def test_non_finite_vectors_are_refused(store: EmbeddingStore, name: str, value: float) -> None:
    vectors = np.ones((2, 3))
    vectors[1, 2] = value  # 1e39 overflows float32
    with pytest.raises(VectorStoreError, match="NaN or infinite"):
        store.upsert(name, ["a", "b"], vectors)
    store.upsert(name, ["a"], np.ones((1, 3)))
    with pytest.raises(VectorStoreError, match="NaN or infinite"):
        store.query(name, vectors, k=1)


@pytest.mark.parametrize(
    ("ids", "vectors"),
    [
        (["a", "b"], np.ones((3, 3))),
        (["a"], np.ones(3)),
        (["a", "a"], np.ones((2, 3))),
        ([1, 2], np.ones((2, 3))),
        (["a", ""], np.ones((2, 3))),
        ("ab", np.ones((2, 3))),
        (["a"], np.ones((1, 0))),
        (["a"], [["x", "y"]]),
    ],
    ids=["count", "1-d", "duplicate", "int-ids", "empty-id", "str-ids", "dim-0", "text"],
)
def test_malformed_writes_are_refused(
    store: EmbeddingStore, name: str, ids: Any, vectors: Any
) -> None:
    with pytest.raises(VectorStoreError):
        store.upsert(name, ids, vectors)
    assert name not in store.collections(name)


def test_metadatas_must_match_ids(store: EmbeddingStore, name: str) -> None:
    with pytest.raises(VectorStoreError, match="metadatas"):
        store.upsert(name, ["a", "b"], np.ones((2, 3)), [{"x": 1}])


def test_invalid_collection_names_are_refused(store: EmbeddingStore) -> None:
    for bad in ("ab", "-abc", "abc-", "a b c", "ä-bc"):
        with pytest.raises(VectorStoreError, match="collection name"):
            store.upsert(bad, ["a"], np.ones((1, 2)))


def test_missing_collection_says_which_exist(store: EmbeddingStore, name: str) -> None:
    store.upsert(f"{name}-real", ["a"], np.ones((1, 2)))
    calls = [
        lambda: store.query(f"{name}-typo", np.ones(2), k=1),
        lambda: store.get(f"{name}-typo"),
        lambda: store.count(f"{name}-typo"),
        lambda: store.delete(f"{name}-typo", ids=["a"]),
    ]
    for call in calls:
        with pytest.raises(VectorStoreError, match="does not exist") as info:
            call()
        assert f"{name}-real" in str(info.value)


def test_unknown_id_raises_unknown_entity(store: EmbeddingStore, name: str) -> None:
    store.upsert(name, ["a", "b"], np.ones((2, 2)))
    with pytest.raises(UnknownEntityError) as info:
        store.get(name, ids=["a", "ghost"])
    assert info.value.kind == "vector" and info.value.entity_id == "ghost"
    assert isinstance(info.value, KeyError)


@pytest.mark.parametrize("k", [0, -1, 1.5, True])
def test_k_must_be_a_positive_integer(store: EmbeddingStore, name: str, k: Any) -> None:
    store.upsert(name, ["a"], np.ones((1, 2)))
    with pytest.raises(VectorStoreError, match="k must"):
        store.query(name, np.ones(2), k=k)


# --------------------------------------------------------------------------- ChromaDB specifics


def test_no_embedding_function_is_ever_used(
    chroma_store: ChromaStore, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ChromaDB's default embedding function downloads an ONNX model: it must never run."""
    from chromadb.api.types import DefaultEmbeddingFunction
    from chromadb.utils.embedding_functions.onnx_mini_lm_l6_v2 import ONNXMiniLM_L6_V2

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("an embedding function was called")

    monkeypatch.setattr(DefaultEmbeddingFunction, "__call__", refuse)
    monkeypatch.setattr(ONNXMiniLM_L6_V2, "__call__", refuse)
    monkeypatch.setattr(ONNXMiniLM_L6_V2, "_download_model_if_not_exists", refuse)

    chroma_store.upsert(name, ["a", "b"], np.eye(2, 3), [{"x": 1}, {"x": 2}])
    assert chroma_store.query(name, np.array([1.0, 0.0, 0.0]), k=1)[0].ids == ["a"]
    assert chroma_store.get(name, ids=["b"])[0] == ["b"]

    handle = chroma_store.client.get_collection(name, embedding_function=None)
    persisted = handle.configuration_json
    assert persisted["embedding_function"] == {"type": "legacy"}  # no known function stored
    assert persisted["hnsw"]["space"] == "cosine"
    with pytest.warns(DeprecationWarning):  # ChromaDB's note that no function is configured
        assert handle.configuration.get("embedding_function") is None
    # and our API has no way to write without vectors
    assert inspect.signature(ChromaStore.upsert).parameters["embeddings"].default is (
        inspect.Parameter.empty
    )


def test_collections_in_another_space_are_refused(chroma_store: ChromaStore, name: str) -> None:
    chroma_store.client.create_collection(
        name, embedding_function=None, configuration={"hnsw": {"space": "l2"}}
    )
    with pytest.raises(VectorStoreError, match="cosine"):
        chroma_store.upsert(name, ["a"], np.ones((1, 2)))
    with pytest.raises(VectorStoreError, match="cosine"):
        chroma_store.count(name)


def test_small_batches_split_writes_reads_and_queries(tmp_path: Path, name: str) -> None:
    kind_store = ChromaStore(path=tmp_path / "chroma", batch_size=7)
    try:
        assert kind_store.max_batch_size == 7
        rng = np.random.default_rng(5)
        vectors = rng.normal(size=(40, 4))
        ids = [f"v{i:02d}" for i in range(40)]
        kind_store.upsert(name, ids, vectors, [{"i": i} for i in range(40)])
        assert kind_store.count(name) == 40
        all_ids, all_vectors, metas = kind_store.get(name)  # pages of 7
        assert sorted(all_ids) == ids and len(metas) == 40
        got_ids, got, _ = kind_store.get(name, ids=list(reversed(ids)))
        assert got_ids == list(reversed(ids))
        np.testing.assert_allclose(got, vectors[::-1], atol=1e-6)
        results = kind_store.query(name, vectors[:10], k=1)
        assert [r.ids[0] for r in results] == ids[:10]
        kind_store.delete(name, ids=ids[:20])
        assert kind_store.count(name) == 20
    finally:
        kind_store.close()


def test_writes_above_the_client_batch_limit(chroma_store: ChromaStore, name: str) -> None:
    n = chroma_store.client.get_max_batch_size() + 100
    assert chroma_store.max_batch_size < n
    vectors = np.random.default_rng(1).normal(size=(n, 2))
    chroma_store.upsert(name, [str(i) for i in range(n)], vectors)
    assert chroma_store.count(name) == n
    assert len(chroma_store.get(name)[0]) == n


def test_stale_handle_after_another_writer_recreates(chroma_store: ChromaStore, name: str) -> None:
    chroma_store.upsert(name, ["old"], np.ones((1, 2)))
    assert chroma_store.count(name) == 1  # the collection handle is now cached
    if chroma_store.url:
        other = ChromaStore(url=chroma_store.url)
    else:
        other = ChromaStore(client=chroma_store.client)
    try:
        other.drop(name)
        other.upsert(name, ["new1", "new2"], np.ones((2, 3)))
    finally:
        other.close()
    assert chroma_store.count(name) == 2
    assert sorted(chroma_store.get(name)[0]) == ["new1", "new2"]
    chroma_store.upsert(name, ["new3"], np.ones((1, 3)))
    assert chroma_store.count(name) == 3


def test_data_persists_across_instances(tmp_path: Path, name: str) -> None:
    folder = tmp_path / "persist"
    vectors = np.random.default_rng(2).normal(size=(5, 6))
    first = ChromaStore(path=folder)
    first.upsert(name, list("abcde"), vectors, [{"n": i} for i in range(5)])
    first.close()

    second = ChromaStore(path=folder)
    try:
        assert second.client is not first.client
        ids, got, metas = second.get(name, ids=list("edcba"))
        np.testing.assert_allclose(got, vectors[::-1], atol=1e-6)
        assert metas == [{"n": i} for i in reversed(range(5))]
        assert second.query(name, vectors[2], k=1)[0].ids == ["c"]
    finally:
        second.close()

    # and a brand-new process reads the same folder
    script = (
        "import sys; from recagents.vectorstore.chroma import ChromaStore; "
        f"s = ChromaStore(path=sys.argv[1]); print(s.count({name!r})); s.close()"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(folder)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.strip().splitlines()[-1] == "5"


def test_closed_store_refuses_work(tmp_path: Path, name: str) -> None:
    closing = ChromaStore(path=tmp_path / "c")
    closing.close()
    closing.close()  # idempotent
    with pytest.raises(VectorStoreError, match="closed"):
        closing.count(name)


def test_unreachable_server_says_how_to_start_one(unused_port: int) -> None:
    port = unused_port
    with pytest.raises(VectorStoreError, match=f"chroma run --path .* --port {port}"):
        ChromaStore(url=f"http://127.0.0.1:{port}")


def test_location_arguments_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        ChromaStore(path=tmp_path, url="http://127.0.0.1:8000")
    for bad in ("127.0.0.1:8000", "ftp://host:1", "http://:8000", "http://host:notaport"):
        with pytest.raises(ConfigError):
            ChromaStore(url=bad)


def test_open_store_follows_settings(chroma_server: str, tmp_path: Path) -> None:
    embedded = open_store(Settings(home=tmp_path))
    try:
        assert embedded.path == tmp_path / "chroma" and embedded.url is None
        embedded.upsert("abc", ["a"], np.ones((1, 2)))
        assert (tmp_path / "chroma").is_dir()
    finally:
        embedded.close()
    served = open_store(Settings(home=tmp_path, chroma_url=chroma_server))
    try:
        assert served.url == chroma_server and served.path is None
        assert isinstance(served.collections(), list)
    finally:
        served.close()


def test_importing_the_package_does_not_import_chromadb() -> None:
    script = (
        "import sys, recagents.vectorstore.base, recagents.vectorstore.memory, "
        "recagents.vectorstore.chroma, recagents.vectorstore; "
        "print('chromadb' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "False"


def test_package_exports_the_public_api() -> None:
    import recagents.vectorstore as package

    if getattr(package, "__file__", None) is None:
        pytest.skip(
            "recagents.vectorstore resolves as a namespace package: the editable install "
            "predates vectorstore/__init__.py; rerun `.venv/bin/pip install -e . --no-deps`"
        )
    for symbol in (
        "EmbeddingStore",
        "QueryResult",
        "ChromaStore",
        "InMemoryStore",
        "open_store",
        "collection_name",
        "parse_collection_name",
        "latest_version",
        "versions",
    ):
        assert hasattr(package, symbol), symbol
