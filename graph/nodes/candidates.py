"""Node ``score_candidates``: score every item for the profile, keep those the user may see.

The user-profile and ranking agents score the whole catalog for this thread's profile (a known
user's history plus what they said, or a cold profile from the items they named). Candidates are
the item agent's nearest items in the vector store under the hard constraints as a ``where``
filter, plus the best-scored items; anything seen, rejected, already shown or outside the hard
constraints is dropped. The scored profile travels to ``pick`` in the untracked ``profile``
channel (never checkpointed).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from langgraph.runtime import Runtime

from recagents.agents.base import ITEM
from recagents.agents.trainer import ProfileScores
from recagents.graph.context import Context
from recagents.graph.deps import GraphDeps, profile_for, unique
from recagents.graph.intent import TurnIntent
from recagents.graph.state import ConversationState

#: What a thread says it has seen or does not want, besides the user's own history.
BLOCKING_KEYS = ("seen", "rejected", "shown", "disliked", "liked", "anchors")


def score_candidates(
    deps: GraphDeps, state: ConversationState, runtime: Runtime[Context]
) -> dict[str, Any]:
    """Vector search with hard filters plus the agents' best-scored items, minus blocked ones."""
    context = runtime.context or Context()
    dataset = deps.dataset
    constraints = state.get("constraints") or {}
    profile = profile_for(deps, state)
    anchors = [dataset.item_map.index(i) for i in state.get("anchors") or []]
    item_vectors = profile.peers[ITEM]
    query = item_vectors[anchors].mean(axis=0) if anchors else profile.vector
    blocked = blocked_items(deps, state, profile)
    found: list[int] = []
    if np.linalg.norm(query) > 0:
        result = deps.store.query(
            deps.item_collection,
            query,
            k=context.candidates,
            where=deps.engine.where(constraints),
        )[0]
        found = [dataset.item_map.index(i) for i in result.ids]
    order = np.argsort(-profile.scores)
    collaborative = [int(i) for i in order[: context.candidates * 3]]
    candidates = [
        i
        for i in unique([*found, *collaborative])  # type: ignore[list-item]
        if i not in blocked and deps.engine.allowed(int(i), constraints)
    ]
    out: dict[str, Any] = {"profile": profile}
    # "Recommend three movies": the person's count is the list length ``pick`` will show.
    wanted = TurnIntent.from_dict(state.get("intent") or {}).count or context.k
    if len(candidates) < wanted and has_hard_constraints(constraints):
        # Retrieval is approximate: before saying "only N match", look at the whole catalog
        # (1,682 films: a few milliseconds), so N is the true count of what may be shown.
        candidates = matching(deps, constraints, blocked)
        if len(candidates) < wanted:
            note = shortfall_note(deps, constraints, blocked, len(candidates))
            out["notes"] = [*(state.get("notes") or []), note]
    out["candidates"] = [dataset.item_map.external(int(i)) for i in candidates]
    return out


#: The constraints that can leave fewer than k films (soft preferences never do).
HARD_KEYS = ("genres_include", "genres_exclude", "year_from", "year_to", "people")


def has_hard_constraints(constraints: dict[str, Any]) -> bool:
    """Whether any hard filter is set."""
    return any(constraints.get(key) not in (None, [], "") for key in HARD_KEYS)


def matching(deps: GraphDeps, constraints: dict[str, Any], blocked: set[int]) -> list[int]:
    """Every catalog item that passes the hard constraints and is not blocked."""
    allowed = deps.engine.allowed
    return [i for i in range(deps.dataset.n_items) if i not in blocked and allowed(i, constraints)]


def describe_constraints(constraints: dict[str, Any]) -> str:
    """The hard constraints in words: ``Horror films with Alfred Hitchcock from 1960 to 1969``."""
    genres = constraints.get("genres_include") or []
    text = (" or ".join(genres) + " films") if genres else "films"
    people = constraints.get("people") or []
    if people:
        joiner = " or " if constraints.get("people_any") else " and "
        text += " with " + joiner.join(people)
    low, high = constraints.get("year_from"), constraints.get("year_to")
    if low is not None and high is not None:
        text += f" from {low} to {high}" if low != high else f" from {low}"
    elif low is not None:
        text += f" from {low} on"
    elif high is not None:
        text += f" up to {high}"
    if constraints.get("genres_exclude"):
        text += " and no " + " or ".join(constraints["genres_exclude"])
    return text


def widenings(constraints: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Each single relaxation of the hard constraints: ``(what to offer, relaxed constraints)``.

    Years widen by a decade on one side at a time (said as that decade when it is one); a
    genre, person or exclusion is dropped.
    """
    out: list[tuple[str, dict[str, Any]]] = []
    low, high = constraints.get("year_from"), constraints.get("year_to")
    if low is not None:
        start = int(low) - 10
        label = f"the {start}s" if start % 10 == 0 else f"{start}\u2013{int(low) - 1}"
        out.append((f"widen to {label}", {**constraints, "year_from": start}))
    if high is not None:
        end = int(high) + 10
        label = (
            f"the {int(high) + 1}s" if (int(high) + 1) % 10 == 0 else f"{int(high) + 1}\u2013{end}"
        )
        out.append((f"widen to {label}", {**constraints, "year_to": end}))
    if constraints.get("genres_include"):
        genres = " or ".join(constraints["genres_include"])
        out.append((f"look beyond {genres}", {**constraints, "genres_include": []}))
    if constraints.get("people"):
        names = " and ".join(constraints["people"])
        out.append((f"include films without {names}", {**constraints, "people": []}))
    if constraints.get("genres_exclude"):
        genres = " or ".join(constraints["genres_exclude"])
        out.append((f"allow {genres}", {**constraints, "genres_exclude": []}))
    return out


#: How a shortfall note starts when nothing new matches (``respond`` then adds no generic line).
NOTHING_NEW = ("No film in my catalog", "The only ")


def shortfall_note(
    deps: GraphDeps, constraints: dict[str, Any], blocked: set[int], found: int
) -> str:
    """Say how many films match and offer the relaxation that binds.

    The offer is the first relaxation, smallest change first (:func:`widenings`: a decade
    before a genre before a person), that alone brings in new films: it keeps as much of what
    the person asked for as possible and always helps, so "want me to widen to the 1950s?"
    comes before "include films without Alfred Hitchcock?". None helps: no offer.
    """
    described = describe_constraints(constraints)
    blocked_matches = sorted(
        (int(i) for i in blocked if deps.engine.allowed(int(i), constraints)),
        key=lambda i: deps.dataset.item_title(i),
    )
    if found == 0 and blocked_matches:
        from recagents.graph.explain import display_title

        titles = [display_title(deps.dataset.item_title(i)) for i in blocked_matches[:4]]
        more = len(blocked_matches) - len(titles)
        listed = ", ".join(titles) + (f" and {more} more" if more > 0 else "")
        sentence = (
            f"The only {described} in my catalog are ones you have seen or I have shown ({listed})"
        )
    else:
        count = "No film" if found == 0 else f"Only {found} film" + ("s" if found != 1 else "")
        verb = "matches" if found <= 1 else "match"
        aside = " (besides those you have seen or I have shown)" if blocked_matches else ""
        sentence = f"{count} in my catalog {verb} {described}{aside}"
    best = next(
        (
            offer
            for offer, relaxed in widenings(constraints)
            if len(matching(deps, relaxed, blocked)) > found
        ),
        "",
    )
    if best:
        return f"{sentence}; want me to {best}?"
    return f"{sentence}."


def blocked_items(deps: GraphDeps, state: ConversationState, profile: ProfileScores) -> set[int]:
    """Items never to recommend in this thread: its history and what it said it has seen."""
    index = deps.dataset.item_map.index
    flat = {index(i) for key in BLOCKING_KEYS for i in state.get(key) or []}
    return flat | {int(i) for i in profile.history}
