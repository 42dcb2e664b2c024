"""Each agent's part in a pick, as shares a person can read (the "why?" bar and answer).

The agents' raw scores live on incomparable scales, so none is ever shown as such; this module
turns them into shares of the agents' summed support. Kept in the graph layer because both the
``why`` node's answer and the UI's "why?" panel say it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from recagents.graph.explain import FACT_KEYS

#: How each agent's view is named for people in the "why?" bar.
AGENT_LABELS: dict[str, str] = {
    "history": "films like the ones you liked",
    "tower": "your taste profile",
    "text": "story and themes (text)",
    "popularity": "popularity",
}


def _strength(name: str, value: float) -> float:
    """One agent's support for an item on 0..1, on that agent's own scale.

    The raw scores are not comparable (a similarity sum, a dot product, a cosine, a log count), so
    each is read on what its scale means: the history score is EASE's reconstruction of the 0/1
    "watched" matrix and the text score a cosine, so both are clipped to 0..1 like the popularity
    share; the profile score is a dot product trained as a logit, so it goes through the
    logistic. The bar then shows each agent's share of the summed support: how much each
    pointed at this film, not a decomposition of the ranking agent's final score (a network,
    which has none).
    """
    if not math.isfinite(value):
        return 0.0
    if name in ("history", "text", "popularity"):
        return min(1.0, max(0.0, value))
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, value))))


def agent_shares(scores: Mapping[str, Any]) -> list[tuple[str, float]]:
    """``[(label, share)]`` of the agents that scored an item, largest first, summing to 1."""
    strengths = []
    for name, value in scores.items():
        if name == "final" or name in FACT_KEYS:  # the ranker's output; catalog facts, not agents
            continue
        try:
            strengths.append((AGENT_LABELS.get(name, name), _strength(name, float(value))))
        except (TypeError, ValueError):
            continue
    total = sum(v for _, v in strengths)
    if total <= 0:
        return []
    return sorted(((label, v / total) for label, v in strengths), key=lambda pair: -pair[1])


def shares_sentence(scores: Mapping[str, Any]) -> str:
    """``"What pointed here: films like the ones you liked 60%, popularity 40%."`` or ``""``."""
    shares = agent_shares(scores)
    if not shares:
        return ""
    ordered = sorted(shares, key=lambda pair: -pair[1])
    words = ", ".join(f"{label} {share * 100:.0f}%" for label, share in ordered)
    return f"What pointed here: {words}."
