"""Conversation state: what a thread remembers between turns (checkpointed per ``thread_id``).

Everything here is plain JSON-able data so any LangGraph checkpointer (SQLite by default) can
store it. Per-role outputs merge into one field with a reducer, so a new role needs no state change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AnyMessage
from langgraph.channels import UntrackedValue
from langgraph.graph.message import Messages, add_messages


@dataclass(frozen=True)
class ThreadCaps:
    """How much one thread keeps: the one place its growth is bounded.

    A thread's state is checkpointed whole after every turn, so whatever grows in it without
    bound makes every later turn slower and every checkpoint bigger (a 200-turn thread was
    112 MB before these caps). Each cap keeps the most recent entries, which is what the next
    turn reads: ``understand`` needs only the last message, "the second one" needs
    ``last_shown``, and an item shown 100 turns ago may fairly be shown again.

    Attributes:
        messages: Messages kept in the state (both sides: 200 = the last 100 turns); what a
            thread's history shows (``GET /threads/{id}``).
        shown: Item ids remembered as shown (never shown again while remembered).
        profile: Ids kept in each of ``liked``, ``disliked``, ``seen`` and ``rejected``
            (the most recent; the user-profile agent weighs far fewer).
        checkpoints: Checkpoints kept per thread after a turn commits (older ones are pruned).
    """

    messages: int = 200
    shown: int = 500
    profile: int = 200
    checkpoints: int = 2


#: The caps every thread runs under.
THREAD_CAPS = ThreadCaps()


def recent(ids: list[str], cap: int) -> list[str]:
    """The last ``cap`` entries of ``ids`` (the most recently added)."""
    return list(ids[-cap:]) if len(ids) > cap else list(ids)


def add_recent_messages(left: Messages, right: Messages) -> list[AnyMessage]:
    """``add_messages``, then only the last :attr:`ThreadCaps.messages` kept.

    Trimming here, in the reducer, bounds every checkpoint without any node having to remember
    to; an even cap keeps whole turns (each turn adds the person's message and one reply).
    """
    merged = add_messages(left, right)
    return recent(merged, THREAD_CAPS.messages)  # type: ignore[arg-type]


def merge_dicts(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    """Reducer for per-role outputs: later roles add keys, a role overwrites only its own."""
    return {**(left or {}), **(right or {})}


class InputState(TypedDict, total=False):
    """What a caller sends: the new message (and, optionally, who is talking)."""

    messages: Annotated[list[AnyMessage], add_recent_messages]
    user_id: str | None


class ConversationState(InputState, total=False):
    """The full per-thread state.

    Attributes:
        liked / disliked / seen / rejected: Item ids the person told us about (the latest
            :attr:`ThreadCaps.profile` of each).
        anchors: Items to find more like (the last "like X" wins priority).
        shown: Every item id shown in this conversation (never shown again unless asked), up
            to :attr:`ThreadCaps.shown` of the latest.
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
