"""The conversation's nodes, one module each.

Flow: ``understand`` -> ``start_over`` | ``why`` | ``about`` | ``clarify`` | (``update_profile`` ->
``score_candidates`` -> ``pick`` -> ``explain``) -> ``respond``. Nodes that need the live objects
take :class:`~recagents.graph.deps.GraphDeps` first; the builder binds it. Candidates stay in
state and never enter a prompt: the chat model only sees the one item it phrases and its evidence.
"""

from recagents.graph.context import MAX_MESSAGE_CHARS
from recagents.graph.deps import GraphDeps
from recagents.graph.nodes.about import about, about_text
from recagents.graph.nodes.candidates import score_candidates
from recagents.graph.nodes.clarify import clarify
from recagents.graph.nodes.explain import catalog_titles, explain
from recagents.graph.nodes.pick import pick
from recagents.graph.nodes.respond import compose_reply, respond
from recagents.graph.nodes.start_over import start_over
from recagents.graph.nodes.understand import Route, route, understand
from recagents.graph.nodes.update_profile import update_profile
from recagents.graph.nodes.why import why, why_text

__all__ = [
    "MAX_MESSAGE_CHARS",
    "about",
    "about_text",
    "GraphDeps",
    "Route",
    "catalog_titles",
    "clarify",
    "compose_reply",
    "explain",
    "pick",
    "respond",
    "route",
    "score_candidates",
    "start_over",
    "understand",
    "update_profile",
    "why",
    "why_text",
]
