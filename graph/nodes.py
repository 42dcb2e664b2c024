"""The conversation's nodes: understand -> update profile -> retrieve -> rank -> explain -> respond.

Nodes are methods of :class:`ConversationNodes`, which holds the live objects (trained agents,
parser, chat model, store) bound when the graph is built; per-turn knobs come from the runtime
:class:`~recagents.graph.context.Context`. Candidates stay in state and never enter a prompt: the
chat model only ever sees the one item it phrases and that item's evidence.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.runtime import Runtime

from recagents.agents.base import ITEM, ConversingRole
from recagents.agents.trainer import ProfileScores
from recagents.data import Dataset
from recagents.graph.context import Context
from recagents.graph.engine import Engine
from recagents.graph.intent import TurnIntent
from recagents.graph.state import ConversationState, empty_profile
from recagents.graph.understand import IntentParser
from recagents.types import Contribution, Evidence, Recommendation
from recagents.vectorstore.base import EmbeddingStore

logger = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 20_000
Route = Literal["start_over", "why", "clarify", "update_profile", "respond"]


@dataclass
class GraphDeps:
    """Live objects the nodes use; bound once when the graph is built.

    Attributes:
        engine: The serving engine over a finished run.
        parser: Deterministic turn parser.
        chat_model: LangChain chat model for phrasing (and understanding when capable), or None.
        structured_understanding: Ask the chat model for structured intents (remote models);
            the small embedded model only phrases explanations.
        roles: Extra registered roles that take part in the conversation (they implement
            ``converse(recommendations, state) -> dict``).
    """

    engine: Engine
    parser: IntentParser
    chat_model: Any = None
    structured_understanding: bool = False
    roles: list[ConversingRole] = field(default_factory=list)

    @property
    def dataset(self) -> Dataset:
        """The catalog."""
        return self.engine.dataset

    @property
    def store(self) -> EmbeddingStore:
        """The vector store the agents published to."""
        return self.engine.store

    @property
    def item_collection(self) -> str:
        """The item agent's final (serving) collection."""
        return self.engine.item_collection


def message_text(message: AnyMessage | Any) -> str:
    """Plain text of a message whatever its content shape, capped in length."""
    content = getattr(message, "content", message)
    if isinstance(content, list):
        content = " ".join(
            part.get("text", "") if isinstance(part, dict) else str(part) for part in content
        )
    return str(content or "")[:MAX_MESSAGE_CHARS]


def _unique(values: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(values))


class ConversationNodes:
    """Node functions bound to :class:`GraphDeps`."""

    def __init__(self, deps: GraphDeps) -> None:
        self.deps = deps

    # -- understand --------------------------------------------------------------------------

    def understand(self, state: ConversationState) -> dict[str, Any]:
        """Turn the newest human message into a :class:`TurnIntent`."""
        messages = state.get("messages") or []
        last = next((m for m in reversed(messages) if isinstance(m, HumanMessage)), None)
        text = message_text(last) if last is not None else ""
        shown = state.get("last_shown") or []
        intent = self.deps.parser.parse(text, shown)
        if self.deps.structured_understanding and self.deps.chat_model is not None and text.strip():
            intent = self._llm_intent(text, shown, fallback=intent)
        return {"intent": intent.to_dict(), "notes": [], "reply": ""}

    def _llm_intent(self, text: str, shown: Sequence[str], fallback: TurnIntent) -> TurnIntent:
        from recagents.graph.understand import LLMTurn

        try:
            structured = self.deps.chat_model.with_structured_output(LLMTurn)
            payload = structured.invoke(text[:4000])
            return self.deps.parser.from_llm(payload, shown, text=text)
        except Exception as exc:  # any invalid output falls back to the parser
            logger.info("structured understanding failed (%s): using the parser", exc)
            return fallback

    def route(self, state: ConversationState) -> Route:
        """Where the turn goes after understanding."""
        intent = TurnIntent.from_dict(state.get("intent") or {})
        if intent.action == "start_over":
            return "start_over"
        if intent.action == "why":
            return "why"
        if intent.action in ("empty", "smalltalk"):
            return "respond"
        knows_user = (
            bool(state.get("user_id")) and state.get("user_id") in self.deps.dataset.user_map
        )
        has_profile = bool(
            state.get("liked")
            or state.get("anchors")
            or state.get("constraints")
            or state.get("shown")
        )
        if not intent.has_signal and not knows_user and not has_profile:
            # One clarifying question per thread; after that, recommend what we can.
            return "update_profile" if state.get("clarified") else "clarify"
        return "update_profile"

    # -- simple turns ------------------------------------------------------------------------

    def start_over(self, state: ConversationState) -> dict[str, Any]:
        """Forget this conversation's profile (a known user keeps their learned history)."""
        return {**empty_profile(), "reply": "Starting fresh. What are you in the mood for?"}

    def clarify(self, state: ConversationState) -> dict[str, Any]:
        """Ask one question when a request is too vague to act on."""
        return {
            "clarified": True,
            "reply": (
                "Happy to help! What's one movie you loved, or what are you in the mood for "
                "(a genre, a decade, an actor or director)?"
            ),
        }

    # -- profile -----------------------------------------------------------------------------

    def update_profile(self, state: ConversationState) -> dict[str, Any]:
        """Fold the turn into the conversation profile (the user-profile agent's input)."""
        intent = TurnIntent.from_dict(state.get("intent") or {})
        liked = _unique([*(state.get("liked") or []), *intent.liked])
        disliked = _unique([*(state.get("disliked") or []), *intent.disliked])
        liked = [i for i in liked if i not in set(intent.disliked)]
        disliked = [i for i in disliked if i not in set(intent.liked)]
        anchors = _unique(intent.anchors) if intent.anchors else list(state.get("anchors") or [])
        constraints = dict(state.get("constraints") or {})
        if intent.genres_exclude:
            constraints["genres_exclude"] = _unique(
                [*constraints.get("genres_exclude", []), *intent.genres_exclude]
            )
        for key in ("genres_include", "genres_prefer", "people"):
            value = getattr(intent, key)
            if value:
                constraints[key] = list(value)
        if intent.people:
            constraints["people_any"] = bool(intent.people_any)
        for key in ("year_from", "year_to"):
            value = getattr(intent, key)
            if value is not None:
                constraints[key] = int(value)
        notes = []
        titles = self.deps.dataset
        for unknown in intent.unknown_titles:
            options = [
                titles.item_title(titles.item_map.index(i))
                for i in intent.suggestions.get(unknown, [])
            ]
            hint = (
                f" Did you mean {', '.join(options[:-1])} or {options[-1]}?"
                if len(options) > 1
                else (f" Did you mean {options[0]}?" if options else "")
            )
            notes.append(f"I don't know \u201c{unknown}\u201d.{hint}")
        return {
            "liked": liked,
            "disliked": disliked,
            "seen": _unique([*(state.get("seen") or []), *intent.seen]),
            "rejected": _unique([*(state.get("rejected") or []), *intent.rejected]),
            "anchors": anchors,
            "constraints": constraints,
            "notes": notes,
        }

    # -- retrieve and rank -------------------------------------------------------------------

    def _profile(self, state: ConversationState) -> ProfileScores:
        liked = _unique([*(state.get("liked") or []), *(state.get("anchors") or [])])
        return self.deps.engine.profile_scores(state.get("user_id"), liked)

    def retrieve(self, state: ConversationState, runtime: Runtime[Context]) -> dict[str, Any]:
        """Item agent: vector search in ChromaDB with hard filters, plus collaborative picks."""
        context = runtime.context or Context()
        dataset = self.deps.dataset
        constraints = state.get("constraints") or {}
        profile = self._profile(state)
        anchors = [dataset.item_map.index(i) for i in state.get("anchors") or []]
        item_vectors = profile.peers[ITEM]
        query = item_vectors[anchors].mean(axis=0) if anchors else profile.vector
        blocked = self._blocked(state, profile)
        found: list[int] = []
        if np.linalg.norm(query) > 0:
            result = self.deps.store.query(
                self.deps.item_collection,
                query,
                k=context.candidates,
                where=self.deps.engine.where(constraints),
            )[0]
            found = [dataset.item_map.index(i) for i in result.ids]
        order = np.argsort(-profile.scores)
        collaborative = [int(i) for i in order[: context.candidates * 3]]
        candidates = [
            i
            for i in _unique([*found, *collaborative])  # type: ignore[list-item]
            if i not in blocked and self.deps.engine.allowed(int(i), constraints)
        ]
        if not candidates and constraints.get("people"):  # people are rare: scan the catalog
            candidates = [
                i
                for i in range(dataset.n_items)
                if i not in blocked and self.deps.engine.allowed(i, constraints)
            ]
        return {
            "candidates": [dataset.item_map.external(int(i)) for i in candidates],
            "profile": profile,
        }

    def _blocked(self, state: ConversationState, profile: ProfileScores) -> set[int]:
        index = self.deps.dataset.item_map.index
        keys = ("seen", "rejected", "shown", "disliked", "liked", "anchors")
        flat = {index(i) for key in keys for i in state.get(key) or []}
        return flat | {int(i) for i in profile.history}

    def rank(self, state: ConversationState, runtime: Runtime[Context]) -> dict[str, Any]:
        """Ranking agent: learned scores over the candidates, soft preferences as a nudge."""
        context = runtime.context or Context()
        dataset = self.deps.dataset
        profile = state.get("profile") or self._profile(state)
        items = np.array(
            [dataset.item_map.index(i) for i in state.get("candidates") or []], dtype=np.int64
        )
        if len(items) == 0:
            return {"ranked": []}
        scores = profile.scores[items].astype(np.float64)
        prefer = set((state.get("constraints") or {}).get("genres_prefer", []))
        if prefer:
            spread = float(np.std(scores[np.isfinite(scores)])) or 1.0
            genres = self.deps.engine.genres
            bonus = np.array([1.5 * spread if prefer & genres(int(i)) else 0.0 for i in items])
            scores = scores + bonus
        top = items[np.argsort(-scores, kind="stable")[: context.k]]
        recs = [self.deps.engine.evidence(profile, int(i)) for i in top]
        out: dict[str, Any] = {"ranked": [r.to_dict() for r in recs]}
        role_outputs: dict[str, Any] = {}
        for role in self.deps.roles:
            result = role.converse(out["ranked"], state) or {}
            if "ranked" in result:
                out["ranked"] = result.pop("ranked")
            role_outputs[role.name] = result
        if role_outputs:
            out["role_outputs"] = role_outputs
        return out

    # -- explain and respond -----------------------------------------------------------------

    def explain(self, state: ConversationState, runtime: Runtime[Context]) -> dict[str, Any]:
        """Evidence first, words second: the chat model phrases, code checks, templates back up."""
        from recagents.graph.explain import explain, template_reason

        context = runtime.context or Context()
        recs = [recommendation_from_dict(r) for r in state.get("ranked") or []]
        if not recs:
            return {}
        if self.deps.chat_model is not None and context.llm_items > 0:
            # The model takes seconds on a CPU; stream callers get the picks with template
            # reasons now, and the verified phrasing when it is ready (a no-op otherwise).
            draft = [
                {**raw, "reason": template_reason(rec), "reason_source": "template"}
                for raw, rec in zip(state.get("ranked") or [], recs, strict=True)
            ]
            runtime.stream_writer({"draft": {"ranked": draft, "reply": self.compose(state, draft)}})
        messages = state.get("messages") or []
        request = message_text(messages[-1]) if messages else ""
        explanations = explain(
            recs,
            self.deps.chat_model,
            request=request[:500],
            max_llm_items=context.llm_items,
            catalog_titles=self.catalog_titles,
        )
        ranked = []
        for rec, explanation in zip(state.get("ranked") or [], explanations, strict=True):
            ranked.append({**rec, "reason": explanation.text, "reason_source": explanation.source})
        return {"ranked": ranked}

    def catalog_titles(self, text: str) -> list[str]:
        """Catalog titles mentioned in a text (used to verify generated explanations)."""
        matcher = self.deps.parser.matcher
        dataset = self.deps.dataset
        # Exact matches only: fuzzy matching serves people's typos, and over generated text it
        # reads "Jack Black and Sarah Jessica Parker" as the film "Jack and Sarah".
        mentions = [m for m in matcher.mentions(text) if m.score >= 100.0]
        return [dataset.item_title(dataset.item_map.index(m.item_id)) for m in mentions]

    def respond(self, state: ConversationState) -> dict[str, Any]:
        """Compose the reply from the ranked items and notes; remember what was shown."""
        intent = TurnIntent.from_dict(state.get("intent") or {})
        notes = list(state.get("notes") or [])
        if intent.action == "empty":
            reply = "I didn't catch a question there. Tell me a movie you loved or what you'd like."
            return {"reply": reply, "messages": [AIMessage(reply)]}
        if intent.action == "smalltalk":
            reply = "Hi! Tell me a movie you loved, or what you're in the mood for."
            return {"reply": reply, "messages": [AIMessage(reply)]}
        if state.get("reply"):  # start over / clarifying question, set this turn
            return {"messages": [AIMessage(state["reply"])]}
        ranked = state.get("ranked") or []
        if not ranked:
            reply = " ".join(
                [
                    *notes,
                    "I couldn't find a movie that fits all of that. Try "
                    "loosening a filter (genre, years or people).",
                ]
            )
            return {"reply": reply, "messages": [AIMessage(reply)], "ranked": []}
        reply = self.compose(state, ranked)
        ids = [r["item_id"] for r in ranked]
        return {
            "reply": reply,
            "messages": [AIMessage(reply)],
            "last_shown": ids,
            "shown": _unique([*(state.get("shown") or []), *ids]),
        }

    def compose(self, state: ConversationState, ranked: list[dict[str, Any]]) -> str:
        """The reply for ranked items: this turn's notes, the intro, one line per pick."""
        lines = [*(state.get("notes") or []), self._intro(state)]
        from recagents.graph.explain import display_title

        for n, rec in enumerate(ranked, 1):
            title = display_title(rec["title"])  # "The English Patient", not "English Patient, The"
            lines.append(f"{n}. {title}: {rec.get('reason', '')}".rstrip(": "))
        return "\n".join(lines)

    def _intro(self, state: ConversationState) -> str:
        constraints = state.get("constraints") or {}
        parts = []
        if constraints.get("genres_include"):
            parts.append(" or ".join(constraints["genres_include"]))
        if constraints.get("year_from") is not None or constraints.get("year_to") is not None:
            low, high = constraints.get("year_from"), constraints.get("year_to")
            parts.append(
                f"from {low}"
                if high is None
                else f"up to {high}"
                if low is None
                else f"from {low} to {high}"
            )
        if constraints.get("people"):
            joiner = " or " if constraints.get("people_any") else " and "
            parts.append("with " + joiner.join(constraints["people"]))
        if constraints.get("genres_exclude"):
            parts.append("no " + ", ".join(constraints["genres_exclude"]))
        if constraints.get("genres_prefer"):
            parts.append("leaning " + ", ".join(constraints["genres_prefer"]))
        suffix = f" ({'; '.join(parts)})" if parts else ""
        return f"Here are my picks{suffix}:"

    def why(self, state: ConversationState) -> dict[str, Any]:
        """Answer "why X?" from the stored evidence, without re-ranking."""
        intent = TurnIntent.from_dict(state.get("intent") or {})
        ranked = state.get("ranked") or []
        target = intent.why_target or (state.get("last_shown") or [None])[0]
        if target is None:
            reply = "I haven't recommended anything yet. What are you in the mood for?"
            return {"reply": reply, "messages": [AIMessage(reply)]}
        rec = next((r for r in ranked if r["item_id"] == target), None)
        if rec is None:  # asked about another title: compute its evidence, still no re-ranking
            profile = self._profile(state)
            item = self.deps.dataset.item_map.index(target)
            rec = {**self.deps.engine.evidence(profile, item).to_dict(), "reason": ""}
        reply = why_text(rec)
        return {"reply": reply, "messages": [AIMessage(reply)]}


def recommendation_from_dict(data: dict[str, Any]) -> Recommendation:
    """Rebuild a :class:`Recommendation` from its checkpointed dict."""
    evidence = data.get("evidence") or {}
    return Recommendation(
        item_id=data["item_id"],
        title=data["title"],
        score=float(data.get("score", 0.0)),
        evidence=Evidence(
            because_of=tuple(Contribution(**c) for c in evidence.get("because_of", [])),
            shared_attributes=tuple(evidence.get("shared_attributes", [])),
            agent_scores=dict(evidence.get("agent_scores", {})),
        ),
    )


def why_text(rec: dict[str, Any]) -> str:
    """A full answer to "why this one?" from the evidence."""
    evidence = rec.get("evidence") or {}
    from recagents.graph.explain import display_title

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
    scores = evidence.get("agent_scores", {})
    if scores:
        labels = {
            "history": "history match",
            "tower": "profile match",
            "text": "text match",
            "popularity": "popularity",
            "final": "final score",
        }
        text += (
            " Agent scores: "
            + ", ".join(f"{labels.get(k, k)} {v:.2f}" for k, v in scores.items())
            + "."
        )
    return text
