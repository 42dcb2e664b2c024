"""Node ``explain``: evidence first, words second.

The chat model (if any) phrases the top pick from its evidence and its fact sheet; code checks
every sentence and every claim in it against them (:mod:`recagents.graph.explain`,
:mod:`recagents.graph.claims`) and falls back to the template reason, which names the people the
user asked for first. With a chat model the
picks with template reasons are streamed first as a ``draft`` (custom stream event), so callers
show them in tens of milliseconds while the model writes. A model busy with another turn beyond
``Context.llm_wait_s`` is not queued for: the template reasons answer at once, marked
``template-busy``.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from recagents.data.facts import FactSheet
from recagents.graph.context import Context
from recagents.graph.deps import GraphDeps, message_text
from recagents.graph.explain import explain as explain_items
from recagents.graph.explain import template_reason
from recagents.graph.nodes.respond import compose_reply
from recagents.graph.state import ConversationState
from recagents.types import Recommendation


def explain(deps: GraphDeps, state: ConversationState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Give every pick a reason: the model's verified phrasing, or the template."""
    context = runtime.context or Context()
    recs = [Recommendation.from_dict(r) for r in state.get("ranked") or []]
    if not recs:
        return {}
    people = list((state.get("constraints") or {}).get("people") or [])
    if deps.chat_model is not None and context.llm_items > 0:
        # The model takes seconds on a CPU; stream callers get the picks with template
        # reasons now, and the verified phrasing when it is ready (a no-op otherwise).
        draft = [
            {**raw, "reason": template_reason(rec, people), "reason_source": "template"}
            for raw, rec in zip(state.get("ranked") or [], recs, strict=True)
        ]
        runtime.stream_writer({"draft": {"ranked": draft, "reply": compose_reply(state, draft)}})
    messages = state.get("messages") or []
    request = message_text(messages[-1]) if messages else ""
    explanations = explain_items(
        recs,
        deps.chat_model,
        request=request[:500],
        max_llm_items=context.llm_items,
        catalog_titles=lambda text: catalog_titles(deps, text),
        facts=lambda rec: fact_sheet(deps, rec),
        people=people,
        busy_wait_s=context.llm_wait_s,
    )
    ranked = []
    for rec, explanation in zip(state.get("ranked") or [], explanations, strict=True):
        ranked.append({**rec, "reason": explanation.text, "reason_source": explanation.source})
    return {"ranked": ranked}


def fact_sheet(deps: GraphDeps, rec: Recommendation) -> FactSheet:
    """The recommended film's fact sheet, kept by the dataset (movies.db is not read per turn)."""
    dataset = deps.dataset
    return dataset.fact_sheet(dataset.item_map.index(rec.item_id))


def catalog_titles(deps: GraphDeps, text: str) -> list[str]:
    """Catalog titles mentioned in a text (used to verify generated explanations)."""
    matcher = deps.parser.matcher
    dataset = deps.dataset
    # Exact matches only: fuzzy matching serves people's typos, and over generated text it
    # reads "Jack Black and Sarah Jessica Parker" as the film "Jack and Sarah".
    mentions = [m for m in matcher.mentions(text) if m.score >= 100.0]
    return [dataset.item_title(dataset.item_map.index(m.item_id)) for m in mentions]
