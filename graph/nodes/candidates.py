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
    if not candidates and constraints.get("people"):  # people are rare: scan the catalog
        candidates = [
            i
            for i in range(dataset.n_items)
            if i not in blocked and deps.engine.allowed(i, constraints)
        ]
    return {
        "candidates": [dataset.item_map.external(int(i)) for i in candidates],
        "profile": profile,
    }


def blocked_items(deps: GraphDeps, state: ConversationState, profile: ProfileScores) -> set[int]:
    """Items never to recommend in this thread: its history and what it said it has seen."""
    index = deps.dataset.item_map.index
    flat = {index(i) for key in BLOCKING_KEYS for i in state.get(key) or []}
    return flat | {int(i) for i in profile.history}
