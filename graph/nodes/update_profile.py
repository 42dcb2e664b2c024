"""Node ``update_profile``: fold the turn into the conversation profile.

The profile (liked, disliked, seen, rejected, anchors, constraints) is the user-profile agent's
input for a conversation: a cold user is exactly the items and constraints gathered here.
"""

from __future__ import annotations

from typing import Any

from recagents.data import Dataset
from recagents.graph.deps import GraphDeps, unique
from recagents.graph.explain import display_title
from recagents.graph.intent import TurnIntent
from recagents.graph.state import THREAD_CAPS, ConversationState, recent


def update_profile(deps: GraphDeps, state: ConversationState) -> dict[str, Any]:
    """Fold the turn's likes, dislikes and constraints into what the thread remembers."""
    intent = TurnIntent.from_dict(state.get("intent") or {})
    lists = corrected_lists(state, intent)
    liked = unique([*lists["liked"], *intent.liked])
    disliked = unique([*lists["disliked"], *intent.disliked])
    liked = [i for i in liked if i not in set(intent.disliked)]
    disliked = [i for i in disliked if i not in set(intent.liked)]
    anchors = unique(intent.anchors) if intent.anchors else lists["anchors"]
    cap = THREAD_CAPS.profile
    return {
        "liked": recent(liked, cap),
        "disliked": recent(disliked, cap),
        "seen": recent(unique([*lists["seen"], *intent.seen]), cap),
        "rejected": recent(unique([*(state.get("rejected") or []), *intent.rejected]), cap),
        "anchors": anchors,
        "constraints": merge_constraints(state.get("constraints") or {}, intent),
        "notes": unknown_title_notes(deps.dataset, intent),
    }


def corrected_lists(state: ConversationState, intent: TurnIntent) -> dict[str, list[str]]:
    """The liked, disliked, seen and anchors lists after this turn's corrections.

    "Actually, not Toy Story, I meant Babe": Toy Story leaves every list it was in, and Babe
    joins the list Toy Story was in (liked if it was liked...); with nothing to replace, a
    replacement is liked when the message has no other cue, as "I meant Babe" follows a like.
    """
    lists = {key: list(state.get(key) or []) for key in ("liked", "disliked", "seen", "anchors")}
    gone = set(intent.retracted)
    homes = [key for key, values in lists.items() if gone & set(values)]
    for key in lists:
        lists[key] = [i for i in lists[key] if i not in gone]
    if intent.replacements:
        for key in homes or ["liked"]:
            lists[key] = unique([*lists[key], *intent.replacements])
    return lists


def merge_constraints(current: dict[str, Any], intent: TurnIntent) -> dict[str, Any]:
    """This turn's constraints over the thread's: exclusions add up, the rest is replaced."""
    constraints = dict(current)
    if intent.genres_exclude:
        constraints["genres_exclude"] = unique(
            [*constraints.get("genres_exclude", []), *intent.genres_exclude]
        )
    for key in ("genres_include", "genres_prefer", "people"):
        value = getattr(intent, key)
        if value:
            constraints[key] = list(value)
    if intent.people:
        constraints["people_any"] = bool(intent.people_any)
    for key in ("year_from", "year_to"):
        value = getattr(intent, key)
        if value is not None:
            constraints[key] = int(value)
    return constraints


def catalog_coverage(dataset: Dataset) -> str:
    """What the catalog covers, from the loaded catalog: "1,682 films from 1922 to 1998".

    Said whenever a title is missing, so a person learns why (a 1999 film cannot be in a catalog
    that ends in 1998) rather than guessing; computed, so another catalog says its own numbers.
    """
    years = dataset.items["year"].dropna() if "year" in dataset.items else []
    if len(years):
        return f"{dataset.n_items:,} films from {int(min(years))} to {int(max(years))}"
    return f"{dataset.n_items:,} films"


def unknown_title_notes(dataset: Dataset, intent: TurnIntent) -> list[str]:
    """One sentence per title we could not find: what the catalog covers, the closest titles."""
    notes = []
    for unknown in intent.unknown_titles:
        options = [
            display_title(dataset.item_title(dataset.item_map.index(i)))
            for i in intent.suggestions.get(unknown, [])
        ]
        hint = (
            f"{', '.join(options[:-1])} or {options[-1]}"
            if len(options) > 1
            else (options[0] if options else "")
        )
        ask = (
            f" Did you mean {hint}, or can you tell me what you liked about it?"
            if hint
            else " Can you tell me what you liked about it?"
        )
        notes.append(
            f"I don't have \u201c{unknown}\u201d: my catalog has {catalog_coverage(dataset)}.{ask}"
        )
    return notes
