"""Node ``update_profile``: fold the turn into the conversation profile.

The profile (liked, disliked, seen, rejected, anchors, constraints) is the user-profile agent's
input for a conversation: a cold user is exactly the items and constraints gathered here.
"""

from __future__ import annotations

from typing import Any

from recagents.data import Dataset
from recagents.graph.deps import GraphDeps, unique
from recagents.graph.intent import TurnIntent
from recagents.graph.state import ConversationState


def update_profile(deps: GraphDeps, state: ConversationState) -> dict[str, Any]:
    """Fold the turn's likes, dislikes and constraints into what the thread remembers."""
    intent = TurnIntent.from_dict(state.get("intent") or {})
    liked = unique([*(state.get("liked") or []), *intent.liked])
    disliked = unique([*(state.get("disliked") or []), *intent.disliked])
    liked = [i for i in liked if i not in set(intent.disliked)]
    disliked = [i for i in disliked if i not in set(intent.liked)]
    anchors = unique(intent.anchors) if intent.anchors else list(state.get("anchors") or [])
    return {
        "liked": liked,
        "disliked": disliked,
        "seen": unique([*(state.get("seen") or []), *intent.seen]),
        "rejected": unique([*(state.get("rejected") or []), *intent.rejected]),
        "anchors": anchors,
        "constraints": merge_constraints(state.get("constraints") or {}, intent),
        "notes": unknown_title_notes(deps.dataset, intent),
    }


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


def unknown_title_notes(dataset: Dataset, intent: TurnIntent) -> list[str]:
    """One sentence per title we could not find, with the closest catalog titles."""
    notes = []
    for unknown in intent.unknown_titles:
        options = [
            dataset.item_title(dataset.item_map.index(i))
            for i in intent.suggestions.get(unknown, [])
        ]
        hint = (
            f" Did you mean {', '.join(options[:-1])} or {options[-1]}?"
            if len(options) > 1
            else (f" Did you mean {options[0]}?" if options else "")
        )
        notes.append(f"I don't know \u201c{unknown}\u201d.{hint}")
    return notes
