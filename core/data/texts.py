"""The sentences the language model reads for items and users.

These texts seed every agent's vectors, so they carry everything a person would use to describe a
film or a viewer: title, year, genres and people for items; attributes and a summary of what they
liked for users. Only training interactions may go into a user's text (no leakage of test items).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from recagents.data import ITEM_COLUMNS, Dataset

_GENDER = {"M": "man", "F": "woman"}
MAX_PEOPLE = 4


def _people(value: object, limit: int = MAX_PEOPLE) -> str:
    names = [n.strip() for n in str(value or "").split(",") if n.strip()]
    return ", ".join(names[:limit])


def item_text(row: pd.Series) -> str:
    """One descriptive sentence group for an item row of :attr:`Dataset.items`."""
    title = str(row.get("title", "")).strip()
    year = row.get("year")
    parts = [f"{title} ({int(year)})" if pd.notna(year) else title]
    genres = [g for g in str(row.get("genres", "")).split("|") if g]
    if genres:
        parts.append("Genres: " + ", ".join(genres))
    director = _people(row.get("director"), 2)
    if director:
        parts.append(f"Directed by {director}")
    writer = _people(row.get("writer"), 2)
    if writer:
        parts.append(f"Written by {writer}")
    cast = _people(row.get("cast"), 6)
    if cast:
        parts.append(f"Cast: {cast}")
    runtime = row.get("runtime")
    if runtime is not None and pd.notna(runtime) and float(runtime) > 0:
        parts.append(f"{int(float(runtime))} minutes")
    for column, value in row.items():  # extra text columns from ingested catalogs
        if column in ITEM_COLUMNS or column in {"item_id", "votes"}:
            continue
        text = str(value).strip() if value is not None and not pd.isna(value) else ""
        if text:
            parts.append(f"{str(column).replace('_', ' ').capitalize()}: {text}")
    return ". ".join(parts) + "."


def item_texts(dataset: Dataset) -> list[str]:
    """Texts of all items, in index order."""
    return [item_text(row) for _, row in dataset.items.iterrows()]


def user_text(
    attributes: pd.Series | dict[str, object] | None,
    liked_titles: Sequence[str],
    top_genres: Sequence[str] = (),
) -> str:
    """Describe a user by attributes and a summary of their history."""
    parts: list[str] = []
    attrs = dict(attributes) if attributes is not None else {}
    age, gender, occupation = attrs.get("age"), attrs.get("gender"), attrs.get("occupation")
    who = []
    if age is not None and not pd.isna(age):
        who.append(f"{int(age)}-year-old")
    if gender:
        who.append(_GENDER.get(str(gender), str(gender)))
    else:
        who.append("viewer")
    if occupation and str(occupation) not in {"none", "other"}:
        who.append(f"working as {occupation}")
    parts.append("A " + " ".join(who))
    if top_genres:
        parts.append("Favourite genres: " + ", ".join(top_genres))
    if liked_titles:
        parts.append("Liked: " + "; ".join(liked_titles))
    said = attrs.get("said")
    if said and not pd.isna(said):  # a dialogue user (recagents.data.union): the seeker's words
        parts.append("Said: " + " ".join(str(said).split()))
    return ". ".join(parts) + "."


def user_texts(
    dataset: Dataset,
    interactions: pd.DataFrame,
    *,
    max_titles: int = 20,
    users: Iterable[int] | None = None,
) -> list[str]:
    """Texts of users (default: all, in index order) from the given (training) interactions.

    Liked items are the user's highest rated, most recent first; without ratings, the most recent.
    """
    frame = interactions.sort_values(
        ["user", "rating", "timestamp"], ascending=[True, False, False]
    )
    by_user = {int(u): g["item"].to_numpy() for u, g in frame.groupby("user", sort=False)}
    genres = dataset.items["genres"].to_numpy()
    texts = []
    for user in range(dataset.n_users) if users is None else users:
        history = by_user.get(int(user), np.empty(0, dtype=np.int64))
        counts: Counter[str] = Counter()
        for item in history:
            counts.update(g for g in str(genres[item]).split("|") if g)
        titles = [dataset.item_title(i) for i in history[:max_titles]]
        attrs = dataset.users.iloc[int(user)] if int(user) < len(dataset.users) else None
        texts.append(user_text(attrs, titles, [g for g, _ in counts.most_common(3)]))
    return texts
