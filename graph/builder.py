"""Build the conversation graph (uncompiled), so callers choose the checkpointer."""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph

from recagents.graph.context import Context
from recagents.graph.nodes import ConversationNodes, GraphDeps
from recagents.graph.state import ConversationState, InputState


def build_graph(deps: GraphDeps) -> StateGraph:
    """The conversation graph, uncompiled.

    Flow: understand -> start_over | why | clarify | (update_profile -> retrieve -> rank ->
    explain) -> respond.

    Returns:
        The uncompiled builder: ``build_graph(deps).compile(checkpointer=...)``.
    """
    nodes = ConversationNodes(deps)
    builder = StateGraph(ConversationState, context_schema=Context, input_schema=InputState)
    builder.add_node("understand", nodes.understand)
    builder.add_node("start_over", nodes.start_over)
    builder.add_node("clarify", nodes.clarify)
    builder.add_node("why", nodes.why)
    builder.add_node("update_profile", nodes.update_profile)
    builder.add_node("retrieve", nodes.retrieve)
    builder.add_node("rank", nodes.rank)
    builder.add_node("explain", nodes.explain)
    builder.add_node("respond", nodes.respond)
    builder.add_edge(START, "understand")
    builder.add_conditional_edges(
        "understand",
        nodes.route,
        ["start_over", "why", "clarify", "update_profile", "respond"],
    )
    builder.add_edge("start_over", "respond")
    builder.add_edge("clarify", "respond")
    builder.add_edge("update_profile", "retrieve")
    builder.add_edge("retrieve", "rank")
    builder.add_edge("rank", "explain")
    builder.add_edge("explain", "respond")
    builder.add_edge("why", END)
    builder.add_edge("respond", END)
    return builder
