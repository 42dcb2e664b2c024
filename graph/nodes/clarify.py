"""Node ``clarify``: one question when a request is too vague to act on."""

from __future__ import annotations

from typing import Any

from recagents.graph.state import ConversationState


def clarify(state: ConversationState) -> dict[str, Any]:
    """Ask one question when a request is too vague to act on (once per thread)."""
    return {
        "clarified": True,
        "reply": (
            "Happy to help! What's one movie you loved, or what are you in the mood for "
            "(a genre, a decade, an actor or director)?"
        ),
    }
