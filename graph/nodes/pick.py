"""Node ``pick``: the top k of the candidates, with evidence, then the conversing roles.

The ranking agent's scores order the candidates; soft preferences ("leaning comedy") nudge them
by 1.5 standard deviations. Each role with a ``converse`` hook (e.g. the diversity re-ranker) may
then reorder the picks and add its own outputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from langgraph.runtime import Runtime

from recagents.data import Dataset
from recagents.graph.context import Context
from recagents.graph.deps import GraphDeps, profile_for, unique
from recagents.graph.explain import display_title
from recagents.graph.intent import TurnIntent
from recagents.graph.state import ConversationState
from recagents.graph.understand.sequels import is_sequel


def pick(deps: GraphDeps, state: ConversationState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Ranking agent: learned scores over the candidates, soft preferences as a nudge."""
    context = runtime.context or Context()
    dataset = deps.dataset
    profile = state.get("profile") or profile_for(deps, state)
    items = np.array(
        [dataset.item_map.index(i) for i in state.get("candidates") or []], dtype=np.int64
    )
    if len(items) == 0:
        return {"ranked": []}
    scores = profile.scores[items].astype(np.float64)
    prefer = set((state.get("constraints") or {}).get("genres_prefer", []))
    if prefer:
        spread = float(np.std(scores[np.isfinite(scores)])) or 1.0
        genres = deps.engine.genres
        bonus = np.array([1.5 * spread if prefer & genres(int(i)) else 0.0 for i in items])
        scores = scores + bonus
    ordered = items[np.argsort(-scores, kind="stable")]
    # "Recommend three movies": the person's count wins over the caller's default k.
    count = TurnIntent.from_dict(state.get("intent") or {}).count
    top = deps.engine.choose(profile, [int(i) for i in ordered], count or context.k)
    recs = [deps.engine.evidence(profile, int(i)) for i in top]
    out: dict[str, Any] = {"ranked": [r.to_dict() for r in recs]}
    role_outputs: dict[str, Any] = {}
    for role in deps.roles:
        result = role.converse(out["ranked"], state) or {}
        if "ranked" in result:
            out["ranked"] = result.pop("ranked")
        role_outputs[role.name] = result
    if role_outputs:
        out["role_outputs"] = role_outputs
    flags = sequel_notes(dataset, [r["item_id"] for r in out["ranked"]], state)
    if flags:
        out["notes"] = [*(state.get("notes") or []), *flags]
    return out


def sequel_notes(dataset: Dataset, picks: list[str], state: ConversationState) -> list[str]:
    """One sentence per pick that is a numbered sequel of a film the person named.

    "The Godfather was great" rightly brings Part II, but it is a sequel they likely know of:
    saying so keeps the list honest about how much it discovers (see
    :mod:`recagents.graph.understand.sequels` for what counts).
    """
    liked = list(state.get("liked") or [])
    named = unique([*liked, *(state.get("anchors") or [])])
    notes = []
    for pick_id in picks:
        later = dataset.items.iloc[dataset.item_map.index(pick_id)]
        for source in named:
            earlier = dataset.items.iloc[dataset.item_map.index(source)]
            if is_sequel(str(later["title"]), str(earlier["title"])):
                how = "which you liked" if source in liked else "which you named"
                notes.append(
                    f"{display_title(dataset.item_title(dataset.item_map.index(pick_id)))} is a "
                    f"sequel to {display_title(dataset.item_title(dataset.item_map.index(source)))}"
                    f", {how}."
                )
                break
    return notes
