"""Node ``understand`` and the route a turn takes from it.

The newest human message becomes a :class:`~recagents.graph.intent.TurnIntent`: from the
deterministic parser, or from a capable chat model's structured output mapped through the same
parser (falling back to the parser on invalid output).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

from langchain_core.messages import HumanMessage

from recagents.graph.deps import GraphDeps, message_text
from recagents.graph.intent import TurnIntent
from recagents.graph.nodes.update_profile import unknown_title_notes
from recagents.graph.state import ConversationState
from recagents.graph.understand import LLMTurn

logger = logging.getLogger(__name__)

Route = Literal["start_over", "why", "about", "clarify", "update_profile", "respond"]


def understand(deps: GraphDeps, state: ConversationState) -> dict[str, Any]:
    """Turn the newest human message into a :class:`TurnIntent`."""
    messages = state.get("messages") or []
    last = next((m for m in reversed(messages) if isinstance(m, HumanMessage)), None)
    text = message_text(last) if last is not None else ""
    shown = state.get("last_shown") or []
    intent = deps.parser.parse(text, shown)
    if deps.structured_understanding and deps.chat_model is not None and text.strip():
        intent = _llm_intent(deps, text, shown, fallback=intent)
    notes = unknown_title_notes(deps.dataset, intent) if intent.action == "recommend" else []
    return {"intent": intent.to_dict(), "notes": notes, "reply": ""}


def _llm_intent(
    deps: GraphDeps, text: str, shown: Sequence[str], fallback: TurnIntent
) -> TurnIntent:
    if fallback.action in ("about", "other_language", "empty"):
        # Read exactly by the parser (a question about the list needs its targets and facts
        # asked; another language needs its name): a chat model adds nothing here.
        return fallback
    try:
        structured = deps.chat_model.with_structured_output(LLMTurn)
        payload = structured.invoke(text[:4000])
        intent = deps.parser.from_llm(payload, shown, text=text)
    except Exception as exc:  # any invalid output falls back to the parser
        logger.info("structured understanding failed (%s): using the parser", exc)
        return fallback
    if intent.action == "about":  # the schema has no question fields: the parser reads them
        return deps.parser.parse(text, shown, force="about")
    # The schema has no count or correction fields either: keep the parser's.
    intent.count = intent.count or fallback.count
    intent.retracted = intent.retracted or fallback.retracted
    intent.replacements = intent.replacements or fallback.replacements
    return intent


def route(deps: GraphDeps, state: ConversationState) -> Route:
    """Where the turn goes after understanding."""
    intent = TurnIntent.from_dict(state.get("intent") or {})
    if intent.action == "start_over":
        return "start_over"
    if intent.action == "why":
        return "why"
    if intent.action == "about":
        return "about"
    if intent.action in ("empty", "smalltalk", "other_language"):
        return "respond"
    knows_user = bool(state.get("user_id")) and state.get("user_id") in deps.dataset.user_map
    has_profile = bool(
        state.get("liked") or state.get("anchors") or state.get("constraints") or state.get("shown")
    )
    if intent.unknown_titles and not intent.has_signal and not knows_user and not has_profile:
        # "I liked The Matrix" and nothing else to go on: say what we lack and ask, no guess.
        return "clarify"
    if not intent.has_signal and not knows_user and not has_profile:
        # One clarifying question per thread; after that, recommend what we can.
        return "update_profile" if state.get("clarified") else "clarify"
    return "update_profile"
