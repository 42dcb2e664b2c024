"""Node ``clarify``: one question when a request is too vague to act on."""

from __future__ import annotations

from typing import Any

from recagents.graph.state import ConversationState


def clarify(state: ConversationState) -> dict[str, Any]:
    """Ask one question when a request is too vague to act on (once per thread).

    A turn that named only titles the catalog lacks gets those notes as its question: they say
    what the catalog covers, the closest titles, and ask what the person liked about it.
    """
    notes = list(state.get("notes") or [])
    if notes:
        return {"reply": " ".join(notes), "notes": []}
    return {
        "clarified": True,
        "reply": (
            "Happy to help! What's one movie you loved, or what are you in the mood for "
            "(a genre, a decade, an actor or director)?"
        ),
    }
