"""Node ``start_over``: forget this conversation's profile."""

from __future__ import annotations

from typing import Any

from recagents.graph.state import ConversationState, empty_profile


def start_over(state: ConversationState) -> dict[str, Any]:
    """Forget this conversation's profile (a known user keeps their learned history)."""
    return {**empty_profile(), "reply": "Starting fresh. What are you in the mood for?"}
