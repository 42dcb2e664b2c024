"""``Recommender``: the Python API over the trained agents and the conversation graph.

from recagents import Recommender
rec = Recommender.load()                       # trains on first use, then reuses checkpoints
reply = rec.chat("something like Heat but funnier", thread_id="t1")
reply.items[0].title, reply.items[0].reason
rec.feedback("t1", reply.items[0].id, liked=True)
rec.recommend("42", k=10, filters={"genres_exclude": ["Horror"]})
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from recagents.agents.base import ConversingRole
from recagents.agents.trainer import TrainedAgents
from recagents.config import Settings
from recagents.data.feedback import FeedbackLog, LogEntry, now
from recagents.errors import ConfigError, DataError, RecagentsError
from recagents.graph.context import MAX_MESSAGE_CHARS
from recagents.graph.engine import Engine
from recagents.graph.state import THREAD_CAPS, recent
from recagents.types import Recommendation
from recagents.ui.threads import CheckpointJanitor, LocalThreadLocks, ThreadLocks

logger = logging.getLogger(__name__)

FILTER_KEYS = (
    "genres_include",
    "genres_exclude",
    "genres_prefer",
    "year_from",
    "year_to",
    "people",
    "people_any",
)


#: A recommended item in a reply: the same type the engine produces (``.id``, ``.reason``...).
ReplyItem = Recommendation


@dataclass
class Reply:
    """What one chat turn answers."""

    text: str
    items: list[Recommendation]
    thread_id: str
    intent: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the HTTP API's body)."""
        return {
            "reply": self.text,
            "items": [i.to_public() for i in self.items],
            "thread_id": self.thread_id,
            "intent": self.intent,
        }


def _reply_item(rec: Mapping[str, Any]) -> Recommendation:
    """A ranked item of the graph state (its checkpointed dict) as the facade returns it."""
    return Recommendation.from_dict(rec)


class Recommender:
    """Trained agents + conversation graph + memory per thread.

    Args:
        engine: Trained agents (:class:`~recagents.agents.trainer.TrainedAgents`).
        settings: Settings used to build it.
        chat_model: LangChain chat model for phrasing, or ``None`` for templates.
        checkpointer: LangGraph checkpointer; default an in-memory one.
        structured_understanding: Let the chat model produce structured intents.
        roles: Extra agents taking part in the conversation (``converse`` hook).
        locks: Who may write a thread (:class:`~recagents.ui.threads.ThreadLocks`); default
            an in-process lock per thread. Replicas sharing one database need a database lock.
        log: The interaction log each finished turn and 👍/👎 is appended to
            (:class:`~recagents.data.feedback.FeedbackLog`): ``"home"`` (default) for
            ``home/feedback/log.jsonl``, ``None`` to log nothing.

    Every write to a thread (a turn, a 👍) holds that thread's lock for its whole
    read-modify-write, so concurrent requests on one thread all land, in arrival order. A turn
    commits whole or not at all: it runs with ``durability="exit"`` (one checkpoint at the end,
    none mid-turn, so a kill -9 leaves the previous turn's state), and a turn that raises is
    rolled back to the checkpoint it started from. After each commit the thread's older
    checkpoints are pruned (:class:`~recagents.graph.state.ThreadCaps`).

    After the commit, still holding the thread, the turn's evidence is appended to the
    interaction log (:meth:`_log`); a failure to log is a warning and the turn still answers.
    Logging under the thread's lock keeps :meth:`forget` exact: no entry of a forgotten thread
    can land after it.
    """

    def __init__(
        self,
        engine: Engine | TrainedAgents,
        settings: Settings,
        *,
        chat_model: Any = None,
        checkpointer: Any = None,
        structured_understanding: bool = False,
        roles: Sequence[ConversingRole] | None = None,
        locks: ThreadLocks | None = None,
        log: FeedbackLog | Literal["home"] | None = "home",
    ) -> None:
        from langgraph.checkpoint.memory import InMemorySaver

        from recagents.encoder import encoder_from_settings
        from recagents.graph.builder import build_graph, make_deps

        self.engine = engine if isinstance(engine, Engine) else Engine(engine)
        self.settings = settings
        self.dataset = self.engine.dataset
        self.deps = make_deps(
            self.engine,
            chat_model=chat_model,
            structured_understanding=structured_understanding,
            roles=roles,
            encoder=encoder_from_settings(settings),
        )
        self.parser = self.deps.parser
        self.checkpointer = checkpointer if checkpointer is not None else InMemorySaver()
        self.graph = build_graph(self.deps).compile(checkpointer=self.checkpointer)
        self.locks: ThreadLocks = locks if locks is not None else LocalThreadLocks()
        self.janitor = CheckpointJanitor(self.checkpointer)
        self.log: FeedbackLog | None = (
            FeedbackLog.in_home(settings.home) if log == "home" else log  # type: ignore[assignment]
        )

    # -- construction --------------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        settings: Settings | None = None,
        *,
        llm: str | None = None,
        checkpointer: Any = "sqlite",
        progress: bool = False,
        **train_options: Any,
    ) -> Recommender:
        """Load the default run's trained agents (training them first if needed).

        Args:
            settings: Defaults to :meth:`Settings.load`.
            llm: ``local`` (default, from ``RECAGENTS_LLM``), ``none``, or an ``init_chat_model``
                spec such as ``openai:gpt-4o-mini``.
            checkpointer: ``sqlite`` (the memory ``settings.memory_url`` names, by default a
                file under home: threads survive a restart), a memory URL, ``memory``, or a
                LangGraph checkpointer object (:func:`open_memory`).
            progress: Show progress bars while training.
            **train_options: Passed to :func:`~recagents.agents.trainer.train_agents`.
        """
        from recagents.env import ensure_offline
        from recagents.graph.builder import load_deps

        ensure_offline()
        settings = settings or Settings.load()
        saver, locks = open_memory(checkpointer, settings)  # first: a bad URL fails at once
        deps = load_deps(settings, llm=llm, progress=progress, **train_options)
        return cls(
            deps.engine,
            settings,
            chat_model=deps.chat_model,
            checkpointer=saver,
            structured_understanding=deps.structured_understanding,
            roles=deps.roles,
            locks=locks,
        )

    # -- conversation --------------------------------------------------------------------------

    def _config(self, thread_id: str) -> dict[str, Any]:
        if not isinstance(thread_id, str) or not thread_id.strip() or len(thread_id) > 200:
            raise DataError("thread_id must be a non-empty string of at most 200 characters")
        return {"configurable": {"thread_id": thread_id}}

    def chat(
        self,
        message: str,
        thread_id: str = "default",
        user_id: str | None = None,
        *,
        k: int = 5,
        llm_items: int = 1,
    ) -> Reply:
        """Answer one message in a thread; the thread remembers what was said and shown.

        Raises:
            DataError: ``message`` is not text, or ``k`` is out of range.
        """
        state_in, config, context = self._turn(message, thread_id, user_id, k, llm_items)
        with self.locks.hold(thread_id):
            head = self.janitor.head(thread_id)
            try:
                result = self.graph.invoke(
                    state_in, config=config, context=context, durability="exit"
                )
            except BaseException:
                self.janitor.rollback(thread_id, head)
                raise
            self.janitor.prune(thread_id, THREAD_CAPS.checkpoints)
            self._log(turn_entry(result, thread_id, self.dataset.name, message))
        return self._reply(result, thread_id)

    def chat_stream(
        self,
        message: str,
        thread_id: str = "default",
        user_id: str | None = None,
        *,
        k: int = 5,
        llm_items: int = 1,
        tokens: bool = False,
    ) -> Iterator[tuple[Literal["draft", "token", "final"], Any]]:
        """The same turn as :meth:`chat`, yielding what is known as soon as it is known.

        With a chat model, ``("draft", reply)`` comes first, as soon as the picks are ranked: the
        items and text with template reasons (tens of milliseconds). With ``tokens=True``,
        ``("token", text)`` pieces follow as the chat model writes the top pick's phrasing: an
        unverified draft, for a front end to show *as* a draft. ``("final", reply)`` always comes
        last: the turn as :meth:`chat` returns it, with the model's phrasing only where it
        passed the checks (else the template), so only the final reply is ever the answer.

        The thread is held from the first ``next()`` until the turn is committed, just before
        ``final``; closing the iterator earlier (a client gone) rolls the turn back.

        Raises:
            DataError: As :meth:`chat`; raised before anything is yielded.
        """
        state_in, config, context = self._turn(message, thread_id, user_id, k, llm_items)
        return self._stream(state_in, config, context, thread_id, tokens, message)

    def _stream(
        self,
        state_in: dict[str, Any],
        config: Any,
        context: Any,
        thread_id: str,
        tokens: bool,
        message: str,
    ) -> Iterator[tuple[Literal["draft", "token", "final"], Any]]:
        values: Mapping[str, Any] = {}
        modes = ["custom", "values", "messages"] if tokens else ["custom", "values"]
        with self.locks.hold(thread_id):
            head = self.janitor.head(thread_id)
            stream = self.graph.stream(
                state_in, config=config, context=context, stream_mode=modes, durability="exit"
            )
            try:
                for mode, data in stream:
                    if mode == "values":
                        values = data
                    elif mode == "messages":
                        chunk, metadata = data
                        # Only the explain step's phrasing: a provider model that also reads
                        # the message (structured understanding) must not leak its JSON.
                        if (metadata or {}).get("langgraph_node") == "explain" and chunk.text:
                            yield "token", chunk.text
                    elif isinstance(data, dict) and "draft" in data:
                        draft = data["draft"]
                        items = [_reply_item(rec) for rec in draft.get("ranked") or []]
                        intent = values.get("intent") or {}
                        yield "draft", Reply(draft["reply"], items, thread_id, intent)
            except BaseException:  # a failed or abandoned turn (GeneratorExit) leaves no trace
                stream.close()  # LangGraph saves the partial state on exit: close, then undo
                self.janitor.rollback(thread_id, head)
                raise
            self.janitor.prune(thread_id, THREAD_CAPS.checkpoints)
            self._log(turn_entry(values, thread_id, self.dataset.name, message))
        yield "final", self._reply(values, thread_id)

    def _turn(
        self, message: str, thread_id: str, user_id: str | None, k: int, llm_items: int
    ) -> tuple[dict[str, Any], Any, Any]:
        """Check a turn's input; the graph input, config and context that run it."""
        from langchain_core.messages import HumanMessage

        from recagents.graph.context import Context

        if not isinstance(message, str):
            raise DataError(f"message must be text, got {type(message).__name__}")
        if not 1 <= int(k) <= 50:
            raise DataError("k must be between 1 and 50")
        message = message.replace("\x00", "")[:MAX_MESSAGE_CHARS]
        config = self._config(thread_id)
        state_in: dict[str, Any] = {"messages": [HumanMessage(message)]}
        if user_id is not None:
            state_in["user_id"] = str(user_id)
        context = Context(
            k=int(k), llm_items=int(llm_items), llm_wait_s=float(self.settings.llm_wait_s)
        )
        return state_in, config, context

    def _reply(self, state: Mapping[str, Any], thread_id: str) -> Reply:
        messages = state.get("messages") or []
        text = str(messages[-1].content) if messages else ""
        intent = state.get("intent") or {}
        items: list[Recommendation] = []
        if intent.get("action") == "recommend":
            items = [_reply_item(rec) for rec in state.get("ranked") or []]
        return Reply(text, items, thread_id, intent)

    def state(self, thread_id: str) -> dict[str, Any]:
        """The thread's checkpointed state (messages, profile, what was shown)."""
        snapshot = self.graph.get_state(self._config(thread_id))
        return dict(snapshot.values or {})

    def feedback(self, thread_id: str, item_id: str, liked: bool) -> dict[str, list[str]]:
        """A thumbs up/down on an item: the user-profile agent sees it on the next turn.

        Holds the thread while it reads and writes the lists, so a like sent during a turn
        lands after it instead of being overwritten by it.

        Returns:
            The thread's ``liked``, ``disliked`` and ``rejected`` ids after this feedback.

        Raises:
            UnknownEntityError: ``item_id`` is not in the catalog.
        """
        self.dataset.item_map.index(item_id)  # typed error for unknown items
        config = self._config(thread_id)
        cap = THREAD_CAPS.profile
        with self.locks.hold(thread_id):
            current = self.state(thread_id)
            liked_ids = [i for i in current.get("liked", []) if i != item_id]
            disliked_ids = [i for i in current.get("disliked", []) if i != item_id]
            rejected = list(current.get("rejected", []))
            if liked:
                liked_ids.append(item_id)
            else:
                disliked_ids.append(item_id)
                rejected.append(item_id)
            lists = {
                "liked": recent(liked_ids, cap),
                "disliked": recent(disliked_ids, cap),
                "rejected": recent(rejected, cap),
            }
            self.graph.update_state(config, lists, as_node="update_profile")
            self.janitor.prune(thread_id, THREAD_CAPS.checkpoints)
            shown = set(current.get("shown") or [])
            self._log(
                LogEntry(
                    thread_id=thread_id,
                    time=now(),
                    catalog=self.dataset.name,
                    source="feedback",
                    user_id=current.get("user_id"),
                    liked=(item_id,) if liked else (),
                    disliked=() if liked else (item_id,),
                    accepted=(item_id,) if liked and item_id in shown else (),
                )
            )
        return lists

    def _log(self, entry: LogEntry) -> None:
        """Append ``entry`` to the interaction log; a failure is a warning, never the turn's."""
        if self.log is None:
            return
        try:
            self.log.append([entry])
        except Exception as exc:  # noqa: BLE001 - the turn has committed; it must still answer
            logger.warning(
                "interaction log %s: thread %s's entry not written (%s: %s); the turn is kept",
                self.log.path,
                entry.thread_id,
                type(exc).__name__,
                exc,
            )

    def forget(self, thread_id: str) -> int | None:
        """Remove a thread's memory (every checkpoint) and its interaction-log entries.

        Holds the thread's lock, so a turn on it is either wholly before (and forgotten with
        it) or wholly after (a fresh thread).

        Returns:
            How many log entries were removed, or ``None`` when the thread was never used
            (no checkpoint and no log entry: nothing to forget).

        The log is rewritten first: if that fails, nothing is forgotten (the memory stays too)
        and the caller gets the error, so a retry can finish the job.

        Raises:
            DataError: ``thread_id`` is not a valid thread id.
            RecagentsError: The interaction log cannot be rewritten (disk full, permissions).
        """
        self._config(thread_id)
        with self.locks.hold(thread_id):
            known = self.janitor.head(thread_id) is not None
            try:
                removed = self.log.forget(thread_id) if self.log is not None else 0
            except OSError as exc:
                assert self.log is not None
                raise RecagentsError(
                    f"the interaction log {self.log.path} cannot be rewritten "
                    f"({exc.strerror or exc}); thread {thread_id} was not forgotten"
                ) from exc
            self.janitor.rollback(thread_id, None)  # None: every checkpoint of the thread
        if not known and not removed:
            return None
        logger.info("forgot thread %s (%d interaction-log entries)", thread_id, removed)
        return removed

    # -- direct recommendations ----------------------------------------------------------------

    def recommend(
        self,
        user_id: str | None,
        k: int = 10,
        filters: Mapping[str, Any] | None = None,
        *,
        liked: Sequence[str] = (),
    ) -> list[Recommendation]:
        """Top-k for a user (an unknown id takes the cold-start route), with hard filters.

        Args:
            user_id: A known id uses the learned vectors; unknown or None starts cold.
            k: How many (1..100).
            filters: ``genres_include``/``genres_exclude`` (lists), ``year_from``/``year_to``
                (ints), ``people`` (names; all of them must appear unless ``people_any`` is true).
            liked: Extra liked item ids (cold users: their only profile).

        Raises:
            ConfigError: Unknown filter keys or bad values.
            UnknownEntityError: An unknown item id in ``liked``.
        """
        import numpy as np

        if not 1 <= int(k) <= 100:
            raise ConfigError("k must be between 1 and 100")
        constraints = validate_filters(filters or {})
        profile = self.engine.profile_scores(user_id, list(liked))
        scores = profile.scores.copy()
        scores[profile.history] = -np.inf
        order = np.argsort(-scores, kind="stable")
        allowed = [
            int(i)
            for i in order
            if np.isfinite(scores[i]) and self.engine.allowed(int(i), constraints)
        ]
        picks = self.engine.choose(profile, allowed, int(k))
        return [self.engine.evidence(profile, i) for i in picks]


def turn_entry(state: Mapping[str, Any], thread_id: str, catalog: str, message: str) -> LogEntry:
    """A committed turn's evidence for the interaction log, from the state it left.

    The turn's own intent says what this message added; the state after it says what stuck
    (an id the profile update dropped, e.g. both liked and disliked, is not logged). A liked
    film the thread had been shown before is *accepted*: this turn's picks never include a film
    named in the same message, so "in ``shown``" means an earlier turn suggested it.
    """
    intent = state.get("intent") or {}

    def said(key: str, *sources: str) -> tuple[str, ...]:
        named = {i for source in sources for i in intent.get(source) or []}
        return tuple(i for i in state.get(key) or [] if i in named)

    liked = said("liked", "liked", "replacements")
    shown_now = tuple(state.get("last_shown") or []) if intent.get("action") == "recommend" else ()
    before = set(state.get("shown") or []) - set(shown_now)
    return LogEntry(
        thread_id=thread_id,
        time=now(),
        catalog=catalog,
        source="turn",
        message=message.replace("\x00", ""),
        user_id=state.get("user_id"),
        liked=liked,
        disliked=said("disliked", "disliked", "replacements"),
        seen=said("seen", "seen"),
        shown=shown_now,
        accepted=tuple(i for i in liked if i in before),
        retracted=tuple(str(i) for i in intent.get("retracted") or []),
    )


def validate_filters(filters: Mapping[str, Any]) -> dict[str, Any]:
    """Check a filters mapping; return it normalised.

    Raises:
        ConfigError: Unknown keys or values of the wrong type.
    """
    unknown = sorted(set(filters) - set(FILTER_KEYS))
    if unknown:
        raise ConfigError(f"unknown filter(s) {unknown}; use {', '.join(FILTER_KEYS)}")
    out: dict[str, Any] = {}
    for key, value in filters.items():
        if value is None:
            continue
        if key == "people_any":
            if not isinstance(value, bool):
                raise ConfigError(f"filter people_any must be true or false, got {value!r}")
            out[key] = value
        elif key.startswith("year_"):
            try:
                out[key] = int(value)
            except (TypeError, ValueError):
                raise ConfigError(f"filter {key} must be a year, got {value!r}") from None
        else:
            values = [value] if isinstance(value, str) else list(value)
            if not all(isinstance(v, str) for v in values):
                raise ConfigError(f"filter {key} must be a list of names")
            out[key] = values
    return out


def open_checkpointer(kind: Any, settings: Settings) -> Any:
    """The checkpointer of :func:`open_memory` (``memory``: in-memory; objects pass through)."""
    return open_memory(kind, settings)[0]


def open_memory(kind: Any, settings: Settings) -> tuple[Any, ThreadLocks | None]:
    """A checkpointer and the thread lock its users share.

    ``sqlite`` (the name kept from when it was the only database): the memory
    ``settings.memory_url`` names, by default ``home/conversations.sqlite``; a URL
    (``sqlite:///...``, ``postgresql://...``): that memory (:mod:`recagents.ui.memory`);
    ``memory``: in-memory, this process only; a checkpointer object passes through (with
    ``None``: the recommender's in-process locks).

    Raises:
        ConfigError: An unknown kind or URL, or a database that cannot be reached.
    """
    from recagents.ui.memory import open_memory as open_shared

    if kind == "sqlite":
        memory = open_shared(None, settings)
        return memory.checkpointer, memory.locks
    if kind == "memory" or kind is None:
        from langgraph.checkpoint.memory import InMemorySaver

        return InMemorySaver(), None
    if isinstance(kind, str):
        if "://" in kind:
            memory = open_shared(kind, settings)
            return memory.checkpointer, memory.locks
        raise ConfigError(
            f"unknown checkpointer {kind!r}: use 'sqlite', 'memory' or a memory URL "
            "(sqlite:///abs/path, postgresql://...)"
        )
    return kind, None
