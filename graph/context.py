"""Per-run knobs (serialisable), passed as LangGraph runtime context."""

from __future__ import annotations

from dataclasses import dataclass

#: Longest message a turn reads (longer ones are cut, never refused). Every way in (the facade, the
#: HTTP API, the UI) checks against this one value; it lives here because this module is cheap to
#: import (no torch), unlike the nodes.
MAX_MESSAGE_CHARS = 20_000


@dataclass
class Context:
    """Settings a caller may change per turn without rebuilding the graph.

    Attributes:
        k: Recommendations per reply.
        llm_items: How many of them the chat model phrases (the rest use templates): the
            latency budget.
        candidates: Items retrieved from the vector store before ranking (the ranking agent's
            collaborative candidates add three times as many).
        llm_wait_s: Longest wait for a chat model busy with another reply; past it the turn
            answers with the template reasons at once (``reason_source`` ``template-busy``)
            instead of queueing: 20 clients on the embedded model queued to the 60 s timeout.
    """

    k: int = 5
    llm_items: int = 1
    candidates: int = 100
    llm_wait_s: float = 1.0
