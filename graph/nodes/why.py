"""Node ``why``: answer "why X?" from the stored evidence, without re-ranking."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage

from recagents.graph.deps import GraphDeps, profile_for
from recagents.graph.explain import FACT_KEYS, display_title, facts_reason
from recagents.graph.intent import TurnIntent
from recagents.graph.shares import shares_sentence
from recagents.graph.state import ConversationState


def why(deps: GraphDeps, state: ConversationState) -> dict[str, Any]:
    """Answer "why X?" from the stored evidence, without re-ranking."""
    intent = TurnIntent.from_dict(state.get("intent") or {})
    ranked = state.get("ranked") or []
    target = intent.why_target or (state.get("last_shown") or [None])[0]
    if target is None:
        reply = "I haven't recommended anything yet. What are you in the mood for?"
        return {"reply": reply, "messages": [AIMessage(reply)]}
    rec = next((r for r in ranked if r["item_id"] == target), None)
    if rec is None:  # asked about another title: compute its evidence, still no re-ranking
        profile = profile_for(deps, state)
        item = deps.dataset.item_map.index(target)
        rec = {**deps.engine.evidence(profile, item).to_dict(), "reason": ""}
    reply = why_text(rec)
    return {"reply": reply, "messages": [AIMessage(reply)]}


def why_text(rec: dict[str, Any]) -> str:
    """A full answer to "why this one?" from the evidence."""
    evidence = rec.get("evidence") or {}
    parts = [f"I picked {display_title(rec['title'])}"]
    because = [display_title(c["title"]) for c in evidence.get("because_of", [])]
    if because:
        parts.append(
            "because people who liked " + ", ".join(because) + " also liked it, and you liked those"
        )
    shared = evidence.get("shared_attributes", [])
    text = " ".join(parts) + "."
    if shared:
        text += " It shares " + "; ".join(shared[:5]) + " with them."
    all_scores = evidence.get("agent_scores", {})
    facts = facts_reason(all_scores)
    if facts:  # catalog facts (rating count, mean), said as facts rather than as scores
        text += " " + facts
    # The agents' part as shares, never their raw scores (incomparable scales).
    shares = shares_sentence({k: v for k, v in all_scores.items() if k not in FACT_KEYS})
    return f"{text} {shares}" if shares else text
