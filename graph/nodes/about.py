"""Node ``about``: answer a question about the shown list from the facts held, without re-ranking.

"Which is the best one?", "tell me more about the second", "is it scary?" are questions about
what was just shown, not new requests: re-ranking would replace the list the person is asking
about. Every sentence here is built from catalog fields (genres, year, director, cast, runtime),
the train ratings (the counts and means the picks' evidence states too) and the stored evidence
of the pick, so nothing is said that the catalog does not hold. A quality such as "scary" is
answered as the genre it maps to ("listed as Horror"), which is what we actually know.
"""

from __future__ import annotations

import math
from typing import Any

from langchain_core.messages import AIMessage

from recagents.data import Dataset
from recagents.graph.coldstart import ColdStart
from recagents.graph.deps import GraphDeps
from recagents.graph.explain import display_title
from recagents.graph.intent import TurnIntent
from recagents.graph.state import ConversationState

#: Ratings an item needs before "rated highest" may rest on it when others have more.
MIN_RATINGS = 20
#: Cast names said in "more about" (the most prolific in the catalog first).
CAST_NAMED = 3

NOTHING_SHOWN = "I haven't shown you anything yet. What are you in the mood for?"


def about(deps: GraphDeps, state: ConversationState) -> dict[str, Any]:
    """Answer a question about the shown list (best, details, genre) from the facts held."""
    intent = TurnIntent.from_dict(state.get("intent") or {})
    shown = list(state.get("last_shown") or [])
    if not shown and not intent.about:
        return {"reply": NOTHING_SHOWN, "messages": [AIMessage(NOTHING_SHOWN)]}
    ranked = {r["item_id"]: r for r in state.get("ranked") or []}
    preferred = _preferred_people(deps.dataset, state)
    reply = about_text(deps.dataset, deps.engine.coldstart, intent, shown, ranked, preferred)
    return {"reply": reply, "messages": [AIMessage(reply)]}


def _preferred_people(dataset: Dataset, state: ConversationState) -> frozenset[str]:
    """People the thread asked for, and the cast of films it liked."""
    people = set((state.get("constraints") or {}).get("people") or [])
    for item_id in state.get("liked") or []:
        if _known(dataset, item_id):
            people.update(_names(_row(dataset, item_id).get("cast")))
    return frozenset(people)


def about_text(
    dataset: Dataset,
    ratings: ColdStart,
    intent: TurnIntent,
    shown: list[str],
    ranked: dict[str, dict[str, Any]] | None = None,
    preferred: frozenset[str] = frozenset(),
) -> str:
    """The answer to an ``about`` question over ``shown`` (or the items the question names).

    ``ratings``: the train ratings per item (counts, means), the same figures the picks'
    evidence states, so "which is best?" and "why?" never quote two different counts for a film.
    ``preferred``: people to name first in details (asked for, or in liked films).
    """
    ranked = ranked or {}
    targets = [i for i in intent.about if _known(dataset, i)] or shown
    if intent.question == "best":
        return _best(dataset, ratings, targets, shown)
    if intent.question == "genre" and intent.genres_include:
        return _genre(dataset, intent.about, shown, intent.genres_include)
    target = targets[0]
    return _details(dataset, ratings, target, ranked.get(target), frozenset(preferred))


def _known(dataset: Dataset, item_id: str) -> bool:
    try:
        dataset.item_map.index(item_id)
    except Exception:  # a stale id from an old thread
        return False
    return True


def _row(dataset: Dataset, item_id: str) -> Any:
    return dataset.items.iloc[dataset.item_map.index(item_id)]


def _title(dataset: Dataset, item_id: str) -> str:
    return display_title(dataset.item_title(dataset.item_map.index(item_id)))


def _genres(dataset: Dataset, item_id: str) -> list[str]:
    value = _row(dataset, item_id).get("genres")
    return [g for g in str(value or "").split("|") if g and g not in {"nan", "None"}]


def _names(value: Any) -> list[str]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    return [n.strip() for n in str(value).split(",") if n.strip() and n.strip() != "nan"]


def _count(ratings: ColdStart, index: int) -> int:
    """Ratings of an item, or interactions where the data holds no rating values."""
    return int(ratings.rated[index] if ratings.scale else ratings.counts[index])


def _rating_phrase(ratings: ColdStart, index: int) -> str:
    """The ratings held for one item ("rated 4.2 out of 5 by 508 users"), or ""."""
    count = _count(ratings, index)
    if not ratings.scale or count == 0:
        return f"watched by {count:,} users in the data" if count else ""
    users = "user" if count == 1 else "users"
    return f"rated {ratings.mean_rating[index]:.1f} out of {ratings.scale:g} by {count:,} {users}"


def _best(dataset: Dataset, ratings: ColdStart, targets: list[str], shown: list[str]) -> str:
    """The best-rated of the targets by the ratings held, with the numbers it rests on."""
    indices = [dataset.item_map.index(i) for i in targets]
    if not ratings.scale:
        best = max(indices, key=lambda i: _count(ratings, i))
        title = display_title(dataset.item_title(best))
        return f"Of these, {title} is the most watched: {_rating_phrase(ratings, best)}."
    rated = [i for i in indices if _count(ratings, i) > 0] or indices
    enough = [i for i in rated if _count(ratings, i) >= MIN_RATINGS] or rated
    best = max(enough, key=lambda i: (float(ratings.mean_rating[i]), _count(ratings, i)))
    title = display_title(dataset.item_title(best))
    text = (
        f"Of these, {title} has the highest average rating: "
        f"{ratings.mean_rating[best]:.1f} out of {ratings.scale:g} "
        f"from {_count(ratings, best):,} users."
    )
    top = shown[0] if shown else None
    if top is not None and dataset.item_map.index(top) != best and top in targets:
        text += f" My closest match to what you told me is still {_title(dataset, top)}."
    return text


def _genre(dataset: Dataset, about: list[str], shown: list[str], genres: list[str]) -> str:
    """Whether the named item(s), or any shown item, are listed under the asked genres."""
    asked = " or ".join(genres)
    if about:
        parts = []
        for item_id in about:
            listed = _genres(dataset, item_id)
            title = _title(dataset, item_id)
            label = ", ".join(listed) or "no genre"
            if set(listed) & set(genres):
                parts.append(f"Yes: {title} is listed as {label}.")
            else:
                parts.append(f"No: {title} is listed as {label}, not {asked}.")
        return " ".join(parts)
    hits = [i for i in shown if set(_genres(dataset, i)) & set(genres)]
    if not hits:
        return f"None of these is listed as {asked}."
    names = [_title(dataset, i) for i in hits]
    if len(hits) == len(shown):
        return f"All of them are listed as {asked}."
    joined = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    verb = "is" if len(names) == 1 else "are"
    return f"Of these, {joined} {verb} listed as {asked}; the others are not."


def _details(
    dataset: Dataset,
    ratings: ColdStart,
    item_id: str,
    rec: dict[str, Any] | None,
    preferred: frozenset[str],
) -> str:
    """More about one item: genres, director, some cast, runtime, ratings, why it was picked.

    People the person named, or who are in films they liked (``preferred``), are named first.
    """
    row = _row(dataset, item_id)
    index = dataset.item_map.index(item_id)
    sentences = []
    genres = _genres(dataset, item_id)
    head = _title(dataset, item_id)
    sentences.append(f"{head} is listed as {', '.join(genres)}." if genres else f"{head}.")
    directors = _names(row.get("director"))
    if directors:
        sentences.append(f"Directed by {_join(directors)}.")
    # The catalog's cast lists are alphabetical, not by billing: name people in the fact sheet's
    # prominence order (the one explanations use), the people the person cares about first.
    # Only whom to name depends on it; "the cast includes" stays true whatever the order.
    prominence = {name: rank for rank, name in enumerate(dataset.fact_sheet(index).cast)}
    cast = sorted(
        _names(row.get("cast")),
        key=lambda n: (n not in preferred, prominence.get(n, len(prominence)), n),
    )
    if cast:
        sentences.append(f"The cast includes {_join(cast[:CAST_NAMED])}.")
    runtime = row.get("runtime")
    if runtime is not None and not (isinstance(runtime, float) and math.isnan(runtime)):
        sentences.append(f"It runs {int(runtime)} minutes.")
    rating = _rating_phrase(ratings, index)
    if rating:
        sentences.append(f"It is {rating}.")
    because = [
        display_title(c["title"]) for c in ((rec or {}).get("evidence") or {}).get("because_of", [])
    ]
    if because:
        sentences.append(f"I suggested it because people who liked {_join(because)} also liked it.")
    return " ".join(sentences)


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
