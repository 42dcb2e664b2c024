"""Plain data types shared by the agents, the conversation and the API."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any


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
    """A ranked item with its score and evidence."""

    item_id: str
    title: str
    score: float
    evidence: Evidence = field(default_factory=Evidence)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what the conversation state checkpoints)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Recommendation:
        """Rebuild from :meth:`to_dict`'s form (extra keys such as ``reason`` are ignored)."""
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
        )
