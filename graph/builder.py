"""Build the conversation graph (uncompiled), so callers choose the checkpointer."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

from langgraph.graph import END, START, StateGraph

from recagents.agents.base import ConversingRole
from recagents.config import Settings
from recagents.encoder import TextEncoder, encoder_from_settings
from recagents.graph import nodes
from recagents.graph.context import Context
from recagents.graph.deps import GraphDeps
from recagents.graph.engine import Engine
from recagents.graph.llm import LLMSpec, load_chat_model
from recagents.graph.state import ConversationState, InputState
from recagents.graph.understand import IntentParser, shared_router


def make_deps(
    engine: Engine,
    *,
    chat_model: Any = None,
    structured_understanding: bool = False,
    roles: Sequence[ConversingRole] | None = None,
    encoder: TextEncoder | None = None,
) -> GraphDeps:
    """The live objects a graph binds: engine, parser, chat model and conversing roles.

    ``roles`` defaults to every trained role with a ``converse`` hook. With an ``encoder`` (the
    catalog's sentence encoder), turns are routed semantically, the rules as fallback.
    """
    router = None
    if encoder is not None:  # chat turns are embedded uncached: never written to disk
        router = shared_router(
            encoder.model_id, encoder.encode, encode_query=partial(encoder.encode, cache=False)
        )
    parser = IntentParser(engine.dataset, popularity=engine.popularity, router=router)
    chosen = engine.conversing_roles() if roles is None else list(roles)
    return GraphDeps(engine, parser, chat_model, structured_understanding, chosen)


def load_deps(
    settings: Settings, *, llm: str | None = None, progress: bool = False, **train_options: Any
) -> GraphDeps:
    """Load the default run (training it on first use) and the chat model ``llm`` names.

    ``llm`` is read once (:class:`~recagents.graph.llm.LLMSpec`): ``None`` reads
    ``RECAGENTS_LLM``; a provider model also reads turns into structured intents.
    """
    spec = LLMSpec.parse(llm)
    engine = Engine.load(settings, progress=progress, **train_options)
    chat_model = load_chat_model(spec, settings)
    return make_deps(
        engine,
        chat_model=chat_model,
        structured_understanding=spec.structured_understanding and chat_model is not None,
        encoder=encoder_from_settings(settings),
    )


def build_graph(deps: GraphDeps) -> StateGraph:
    """The conversation graph, uncompiled.

    Flow: understand -> start_over | why | about | clarify | (update_profile -> score_candidates
    -> pick -> explain) -> respond.

    Returns:
        The uncompiled builder: ``build_graph(deps).compile(checkpointer=...)``.
    """
    builder = StateGraph(ConversationState, context_schema=Context, input_schema=InputState)
    builder.add_node("understand", partial(nodes.understand, deps))
    builder.add_node("start_over", nodes.start_over)
    builder.add_node("clarify", nodes.clarify)
    builder.add_node("why", partial(nodes.why, deps))
    builder.add_node("about", partial(nodes.about, deps))
    builder.add_node("update_profile", partial(nodes.update_profile, deps))
    builder.add_node("score_candidates", partial(nodes.score_candidates, deps))
    builder.add_node("pick", partial(nodes.pick, deps))
    builder.add_node("explain", partial(nodes.explain, deps))
    builder.add_node("respond", nodes.respond)
    builder.add_edge(START, "understand")
    builder.add_conditional_edges(
        "understand",
        partial(nodes.route, deps),
        ["start_over", "why", "about", "clarify", "update_profile", "respond"],
    )
    builder.add_edge("start_over", "respond")
    builder.add_edge("clarify", "respond")
    builder.add_edge("update_profile", "score_candidates")
    builder.add_edge("score_candidates", "pick")
    builder.add_edge("pick", "explain")
    builder.add_edge("explain", "respond")
    builder.add_edge("why", END)
    builder.add_edge("about", END)
    builder.add_edge("respond", END)
    return builder
