"""What is stored where: collection names and the item metadata layout.

Every writer and reader of the vector store agrees through this module alone:

* Collections are versioned per round: ``ra.<namespace>.<agent>.v<version>``, the namespace being
  ``<dataset>-s<seed>-<run>`` (:func:`run_namespace`).
* The item agent's serving collection carries, per item, scalar metadata ChromaDB can filter on:
  ``title``, ``year`` (int, when known), ``bias`` (the item agent's learned bias) and one boolean
  flag per genre under :func:`genre_key` (``genre_<slug>``). :func:`where_filter` turns a
  conversation's hard constraints into a ``where`` filter over those keys.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from numbers import Integral
from typing import Any

import pandas as pd

from recagents.errors import VectorStoreError
from recagents.vectorstore.base import EmbeddingStore

COLLECTION_PREFIX = "ra"
"""First segment of every round-versioned collection name, so ``collections("ra.")`` lists ours."""

GENRE_PREFIX = "genre_"
"""Prefix of the per-genre boolean flags in item metadata."""

_NAME_MAX = 512
_COMPONENT = re.compile(r"[^A-Za-z0-9_-]+")
_VERSIONED = re.compile(
    rf"^{re.escape(COLLECTION_PREFIX)}\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.v(\d+)$"
)
_SLUG = re.compile(r"[^a-z0-9]+")


def run_namespace(dataset: str, seed: int, run: str) -> str:
    """The namespace of one training run's collections: ``<dataset>-s<seed>-<run>``."""
    return f"{dataset}-s{int(seed)}-{run}"


# --------------------------------------------------------------------------- collection names


def _component(value: str, what: str) -> str:
    if not isinstance(value, str):
        raise VectorStoreError(f"{what} must be text, got {type(value).__name__}")
    cleaned = _COMPONENT.sub("-", value.strip()).strip("-")
    if not cleaned:
        raise VectorStoreError(
            f"{what} {value!r} has no letters or digits; use a name such as 'movielens-100k'"
        )
    return cleaned


def collection_name(namespace: str, agent: str, version: int) -> str:
    """Name of one round's collection for one agent, e.g. ``ra.movielens-100k.item.v0003``.

    Each training round publishes into a new collection rather than overwriting, so a reader
    always sees a complete round and a bad round can be rolled back by dropping it. Characters
    outside ``[A-Za-z0-9_-]`` (dots included, since they separate the parts) become ``-``; two
    namespaces that differ only in such characters therefore share collections.

    Args:
        namespace: The run's namespace (:func:`run_namespace`: ``<dataset>-s<seed>-<run>``).
        agent: The kind of vectors published (``user``, ``item``; a plug-in role may add its
            own), one collection per kind and round.
        version: Round number, ``>= 0``; zero-padded to 4 digits so names sort by round.

    Returns:
        A valid ChromaDB collection name.

    Raises:
        VectorStoreError: Empty parts, a negative version or a name over 512 characters.
    """
    if isinstance(version, bool) or not isinstance(version, Integral) or version < 0:
        raise VectorStoreError(f"version must be an integer >= 0, got {version!r}")
    name = (
        f"{COLLECTION_PREFIX}.{_component(namespace, 'namespace')}."
        f"{_component(agent, 'agent')}.v{int(version):04d}"
    )
    if len(name) > _NAME_MAX:
        raise VectorStoreError(
            f"collection name is {len(name)} characters, ChromaDB allows {_NAME_MAX}: "
            "shorten the namespace or agent name"
        )
    return name


def parse_collection_name(name: str) -> tuple[str, str, int] | None:
    """Split a name made by :func:`collection_name` into ``(namespace, agent, version)``.

    Returns:
        The parts, or ``None`` when ``name`` does not follow the scheme (other collections may
        share the store).
    """
    match = _VERSIONED.match(name)
    if match is None:
        return None
    return match.group(1), match.group(2), int(match.group(3))


def versions(store: EmbeddingStore, namespace: str, agent: str) -> list[int]:
    """Round numbers published by ``agent`` under ``namespace``, ascending."""
    ns, ag = _component(namespace, "namespace"), _component(agent, "agent")
    prefix = f"{COLLECTION_PREFIX}.{ns}.{ag}.v"
    found = []
    for name in store.collections(prefix):
        parsed = parse_collection_name(name)
        if parsed is not None and parsed[0] == ns and parsed[1] == ag:
            found.append(parsed[2])
    return sorted(set(found))


def latest_version(store: EmbeddingStore, namespace: str, agent: str) -> int | None:
    """Newest round published by ``agent`` under ``namespace``, or ``None`` if there is none."""
    found = versions(store, namespace, agent)
    return found[-1] if found else None


# --------------------------------------------------------------------------- item metadata


def genre_key(genre: str) -> str:
    """Metadata key of a genre flag: ``Children's`` -> ``genre_childrens``.

    Every character run outside ``[a-z0-9]`` becomes one ``_``, so ``Action & Adventure``,
    ``Rock/Pop`` and ``(no genres listed)`` give valid, distinct keys. This is the only place the
    key is built: the writer (:func:`item_metadata`) and the readers (:func:`where_filter`) agree.
    """
    return GENRE_PREFIX + _SLUG.sub("_", genre.lower().replace("'", "")).strip("_")


def split_genres(value: Any) -> list[str]:
    """The genres of a catalog row (``Action|Comedy``), without empty parts."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    return [g for g in str(value).split("|") if g]


def item_genres(items: pd.DataFrame) -> list[set[str]]:
    """Each item's genre set, in catalog order."""
    return [set(split_genres(value)) for value in items["genres"].tolist()]


def item_people(items: pd.DataFrame) -> list[set[str]]:
    """Each item's director and cast, lower-cased, in catalog order."""
    out = []
    for director, cast in zip(items["director"].tolist(), items["cast"].tolist(), strict=True):
        names = f"{director or ''},{cast or ''}".split(",")
        out.append({p.strip().lower() for p in names if p.strip() and p.strip() != "nan"})
    return out


def item_metadata(items: pd.DataFrame) -> list[dict[str, Any]]:
    """Scalar metadata ChromaDB can filter on: title, year and one boolean per genre."""
    out = []
    for title, year, genres in zip(
        items["title"].tolist(), items["year"].tolist(), items["genres"].tolist(), strict=True
    ):
        meta: dict[str, Any] = {"title": str(title)}
        if year is not None and not (isinstance(year, float) and math.isnan(year)):
            try:
                meta["year"] = int(year)
            except (TypeError, ValueError):
                pass
        for genre in split_genres(genres):
            meta[genre_key(genre)] = True
        out.append(meta)
    return out


def where_filter(constraints: Mapping[str, Any]) -> dict[str, Any] | None:
    """Hard constraints (genres, years) as a ``where`` filter; ``None`` when there are none.

    People are not in the metadata (lists are not filterable): callers check them in code.
    """
    clauses: list[dict[str, Any]] = []
    for genre in constraints.get("genres_exclude", []):
        clauses.append({genre_key(genre): {"$ne": True}})
    include: Iterable[str] = constraints.get("genres_include") or []
    include = list(include)
    if len(include) == 1:
        clauses.append({genre_key(include[0]): True})
    elif include:
        clauses.append({"$or": [{genre_key(g): True} for g in include]})
    if constraints.get("year_from") is not None:
        clauses.append({"year": {"$gte": int(constraints["year_from"])}})
    if constraints.get("year_to") is not None:
        clauses.append({"year": {"$lte": int(constraints["year_to"])}})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}
