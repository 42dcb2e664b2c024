"""Node ``respond``: the reply text, and what the thread remembers as shown."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage

from recagents.graph.deps import unique
from recagents.graph.explain import display_title
from recagents.graph.intent import TurnIntent
from recagents.graph.nodes.candidates import NOTHING_NEW
from recagents.graph.state import THREAD_CAPS, ConversationState, recent

EMPTY_REPLY = "I didn't catch a question there. Tell me a movie you loved or what you'd like."
SMALLTALK_REPLY = "Hi! Tell me a movie you loved, or what you're in the mood for."
#: One sentence for a message in another language: what is understood, and how to go on.
OTHER_LANGUAGE_REPLY = (
    "Sorry, I only understand English{seems}: tell me in English a movie you loved or what "
    "you'd like to watch."
)
NOTHING_FITS = (
    "I couldn't find a movie that fits all of that. Try "
    "loosening a filter (genre, years or people)."
)


def respond(state: ConversationState) -> dict[str, Any]:
    """Compose the reply from the ranked items and notes; remember what was shown."""
    intent = TurnIntent.from_dict(state.get("intent") or {})
    notes = list(state.get("notes") or [])
    if intent.action == "empty":
        return {"reply": EMPTY_REPLY, "messages": [AIMessage(EMPTY_REPLY)]}
    if intent.action == "other_language":
        seems = f" (your message looks like {intent.language})" if intent.language else ""
        reply = OTHER_LANGUAGE_REPLY.format(seems=seems)
        return {"reply": reply, "messages": [AIMessage(reply)]}
    if intent.action == "smalltalk":
        return {"reply": SMALLTALK_REPLY, "messages": [AIMessage(SMALLTALK_REPLY)]}
    if state.get("reply"):  # start over / clarifying question, set this turn
        return {"messages": [AIMessage(state["reply"])]}
    ranked = state.get("ranked") or []
    if not ranked:
        said = any(note.startswith(NOTHING_NEW) for note in notes)  # already offers a widening
        reply = " ".join(notes if said else [*notes, NOTHING_FITS])
        return {"reply": reply, "messages": [AIMessage(reply)], "ranked": []}
    reply = compose_reply(state, ranked)
    ids = [r["item_id"] for r in ranked]
    return {
        "reply": reply,
        "messages": [AIMessage(reply)],
        "last_shown": ids,
        "shown": recent(unique([*(state.get("shown") or []), *ids]), THREAD_CAPS.shown),
    }


def compose_reply(state: ConversationState, ranked: list[dict[str, Any]]) -> str:
    """The reply for ranked items: this turn's notes, the intro, one line per pick."""
    lines = [*(state.get("notes") or []), _intro(state)]
    for n, rec in enumerate(ranked, 1):
        title = display_title(rec["title"])  # "The English Patient", not "English Patient, The"
        lines.append(f"{n}. {title}: {rec.get('reason', '')}".rstrip(": "))
    return "\n".join(lines)


def _intro(state: ConversationState) -> str:
    constraints = state.get("constraints") or {}
    parts = []
    if constraints.get("genres_include"):
        parts.append(" or ".join(constraints["genres_include"]))
    if constraints.get("year_from") is not None or constraints.get("year_to") is not None:
        low, high = constraints.get("year_from"), constraints.get("year_to")
        parts.append(
            f"from {low}"
            if high is None
            else f"up to {high}"
            if low is None
            else f"from {low} to {high}"
        )
    if constraints.get("people"):
        joiner = " or " if constraints.get("people_any") else " and "
        parts.append("with " + joiner.join(constraints["people"]))
    if constraints.get("genres_exclude"):
        parts.append("no " + ", ".join(constraints["genres_exclude"]))
    if constraints.get("genres_prefer"):
        parts.append("leaning " + ", ".join(constraints["genres_prefer"]))
    suffix = f" ({'; '.join(parts)})" if parts else ""
    return f"Here are my picks{suffix}:"
