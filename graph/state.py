"""Conversation state: what a thread remembers between turns (checkpointed per ``thread_id``).

Everything here is plain JSON-able data so any LangGraph checkpointer (SQLite by default) can
store it. Per-role outputs merge into one field with a reducer, so a new role needs no state change.
"""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

from langchain_core.messages import AnyMessage
from langgraph.channels import UntrackedValue
from langgraph.graph.message import add_messages


def merge_dicts(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    """Reducer for per-role outputs: later roles add keys, a role overwrites only its own."""
    return {**(left or {}), **(right or {})}


class InputState(TypedDict, total=False):
    """What a caller sends: the new message (and, optionally, who is talking)."""

    messages: Annotated[list[AnyMessage], add_messages]
    user_id: str | None


class ConversationState(InputState, total=False):
    """The full per-thread state.

    Attributes:
        liked / disliked / seen / rejected: Item ids the person told us about.
        anchors: Items to find more like (the last "like X" wins priority).
        shown: Every item id shown in this conversation (never shown again unless asked).
        last_shown: The ids shown in the latest reply, in order (for "the second one").
        constraints: Hard filters and soft preferences accumulated over the conversation.
        intent: The current turn's :class:`~recagents.graph.intent.TurnIntent` as a dict.
        candidates: Item ids retrieved for this turn (kept out of any prompt).
        ranked: The current recommendations (``Recommendation`` dicts with ``reason``).
        clarified: Whether we already asked a clarifying question in this thread.
        reply: The text answered this turn.
        role_outputs: Per-role extras (plug-in roles write here).
        notes: Extra sentences for the reply (unknown titles, empty results...).
        profile: This turn's scored profile (numpy arrays over the whole catalog), handed from
            candidate selection to ranking. An untracked channel: never checkpointed, gone after
            the turn.
    """

    liked: list[str]
    disliked: list[str]
    seen: list[str]
    rejected: list[str]
    anchors: list[str]
    shown: list[str]
    last_shown: list[str]
    constraints: dict[str, Any]
    intent: dict[str, Any]
    candidates: list[str]
    ranked: list[dict[str, Any]]
    clarified: bool
    reply: str
    notes: list[str]
    role_outputs: Annotated[dict[str, Any], merge_dicts]
    profile: Annotated[Any, UntrackedValue(object)]


PROFILE_KEYS = ("liked", "disliked", "seen", "rejected", "anchors", "shown", "last_shown")


def empty_profile() -> dict[str, Any]:
    """The values "start over" resets a thread to."""
    return {
        **{key: [] for key in PROFILE_KEYS},
        "constraints": {},
        "candidates": [],
        "ranked": [],
        "clarified": False,
        "notes": [],
    }
