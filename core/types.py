"""Plain data types shared by the agents, the conversation and the API."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class Contribution:
    """One of the user's items and how much it pushed a recommendation up."""

    item_id: str
    title: str
    weight: float


@dataclass(frozen=True)
class Evidence:
    """Why an item was recommended, as facts the explanation may cite and code can check.

    Attributes:
        because_of: The user's items that contributed most (history similarity weights).
        shared_attributes: Attributes the item shares with the user's liked items, e.g.
            ``genre: Crime`` or ``director: Bryan Singer``.
        agent_scores: Each agent's view: ``tower`` (user x item vectors), ``history`` (similarity
            to the history), ``text`` (language-model match), ``popularity`` and ``final``.
    """

    because_of: tuple[Contribution, ...] = ()
    shared_attributes: tuple[str, ...] = ()
    agent_scores: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass(frozen=True)
class Recommendation:
    """A ranked item with its score, evidence and reason: the one shape of a recommended item.

    The engine produces it, the conversation state checkpoints :meth:`to_dict` (and rebuilds with
    :meth:`from_dict`), the Python facade returns it in ``Reply.items``, and the HTTP API and the
    UI send :meth:`to_public` (the documented JSON item, whose ``id`` is ``item_id``).

    Attributes:
        item_id: Catalog item id.
        title: Catalog title with year.
        score: The ranking agent's final score (higher is better).
        evidence: The facts behind the pick.
        reason: The one-line reason shown (empty until the explain step writes it).
        reason_source: ``llm`` when the chat model's phrasing passed the checks, else
            ``template`` (written by code from the evidence); ``template-busy`` when the template
            answered because the chat model was busy with other replies beyond a short wait.
        match: How well the item fits this profile, in ``[0, 1]``: the share of the catalog
            items the person has not seen that score below it (ties count half). A percentile
            rather than a fitted probability because the ranking agent's raw scores live on a
            per-user scale that changes with every retraining; the percentile is bounded,
            needs no calibration data, cannot disagree with the order shown, and means the
            same thing for a known user, a cold one and a constrained list ("a 60% match" is a
            film only just in the better half for you). It is what people are shown ("97%
            match"); ``score`` stays for debugging and sorting.
    """

    item_id: str
    title: str
    score: float
    evidence: Evidence = field(default_factory=Evidence)
    reason: str = ""
    reason_source: Literal["llm", "template", "template-busy"] = "template"
    match: float = 0.0

    @property
    def id(self) -> str:
        """The item id under its public name (the HTTP API's and the facade's ``id``)."""
        return self.item_id

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what the conversation state checkpoints)."""
        return asdict(self)

    def to_public(self) -> dict[str, Any]:
        """The item as the HTTP API and the UI send it (``id`` instead of ``item_id``)."""
        return {
            "id": self.item_id,
            "title": self.title,
            "score": self.score,
            "match": self.match,
            "reason": self.reason,
            "evidence": self.evidence.to_dict(),
            "reason_source": self.reason_source,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Recommendation:
        """Rebuild from :meth:`to_dict`'s form."""
        evidence = data.get("evidence") or {}
        return cls(
            item_id=data["item_id"],
            title=data["title"],
            score=float(data.get("score", 0.0)),
            evidence=Evidence(
                because_of=tuple(Contribution(**c) for c in evidence.get("because_of", [])),
                shared_attributes=tuple(evidence.get("shared_attributes", [])),
                agent_scores=dict(evidence.get("agent_scores", {})),
            ),
            reason=str(data.get("reason") or ""),
            reason_source=_reason_source(data.get("reason_source")),
            match=float(data.get("match", 0.0)),
        )


def _reason_source(value: Any) -> Literal["llm", "template", "template-busy"]:
    """A stored ``reason_source``; anything unknown reads as the plain template."""
    if value == "llm":
        return "llm"
    if value == "template-busy":
        return "template-busy"
    return "template"
