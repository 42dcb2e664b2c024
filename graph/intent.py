"""What one chat turn asks for, as one typed object.

Two paths fill a :class:`TurnIntent`: the deterministic parser in :mod:`recagents.graph.understand`
(works with no LLM) and, when a capable chat model is configured, structured output validated into
the same type. Everything downstream (profile update, retrieval, ranking, explanation) reads only
this object, so both paths behave the same from there on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Action = Literal["recommend", "why", "about", "start_over", "smalltalk", "other_language", "empty"]

#: What an ``about`` turn asks of the shown list: the best of it, more on one item, or whether
#: items have a quality that a genre stands for ("is it scary?" -> Horror).
Question = Literal["", "best", "details", "genre"]


@dataclass
class TurnIntent:
    """A parsed chat turn. Item references are catalog item ids (strings), never raw titles.

    Attributes:
        action: ``recommend`` (default: show items), ``why`` (explain an earlier pick without
            re-ranking), ``about`` (a question about the shown list: "which is the best one?",
            "tell me more about the second", "is it scary?"), ``start_over`` (forget this
            conversation), ``smalltalk`` (greeting / thanks with nothing to act on),
            ``other_language`` (a message in a language the parser does not read), ``empty``
            (blank or unusable input).
        liked: Items the person says they like/loved.
        disliked: Items they say they dislike.
        seen: Items they have already seen ("seen it" about a shown item).
        rejected: Items they turn down ("not that one").
        anchors: Items to find more like ("something like Heat", "more like the second one").
        genres_include: Catalog genres the results must have (any of them).
        genres_prefer: Catalog genres to favour without requiring them ("funnier").
        genres_exclude: Catalog genres the results must not have ("no horror").
        year_from: Earliest release year allowed (inclusive).
        year_to: Latest release year allowed (inclusive).
        people: Catalog people (directors, cast) the results must involve.
        people_any: Whether any one of ``people`` is enough ("Al Pacino or Robert De Niro")
            rather than all of them ("with Al Pacino and Robert De Niro").
        why_target: The item a ``why`` question is about (None: the first shown item).
        about: The shown items an ``about`` question is about (empty: the whole shown list).
        question: What an ``about`` turn asks (see :data:`Question`); its genres are in
            ``genres_include``.
        count: How many items the person asked for ("three movies"), or None.
        retracted: Items the person takes back ("not Toy Story, I meant Babe": Toy Story); they
            leave whatever list they were in.
        replacements: Items meant instead of the retracted ones (Babe); they take their place.
        language: For ``other_language``, the language the message seems to be in.
        unknown_titles: Titles the person named that the catalog does not have.
        suggestions: For each unknown title, the closest catalog titles.
        text: The message as received (trimmed).
        source: ``parser`` or ``llm``.
    """

    action: Action = "recommend"
    liked: list[str] = field(default_factory=list)
    disliked: list[str] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    anchors: list[str] = field(default_factory=list)
    genres_include: list[str] = field(default_factory=list)
    genres_prefer: list[str] = field(default_factory=list)
    genres_exclude: list[str] = field(default_factory=list)
    year_from: int | None = None
    year_to: int | None = None
    people: list[str] = field(default_factory=list)
    people_any: bool = False
    why_target: str | None = None
    about: list[str] = field(default_factory=list)
    question: Question = ""
    count: int | None = None
    retracted: list[str] = field(default_factory=list)
    replacements: list[str] = field(default_factory=list)
    language: str = ""
    unknown_titles: list[str] = field(default_factory=list)
    suggestions: dict[str, list[str]] = field(default_factory=dict)
    text: str = ""
    source: str = "parser"

    @property
    def has_signal(self) -> bool:
        """Whether the turn says anything the recommender can act on."""
        return bool(
            self.liked
            or self.disliked
            or self.seen
            or self.rejected
            or self.anchors
            or self.genres_include
            or self.genres_prefer
            or self.genres_exclude
            or self.year_from is not None
            or self.year_to is not None
            or self.people
            or self.retracted
            or self.replacements
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (graph state must be serialisable for the checkpointer)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TurnIntent:
        """Inverse of :meth:`to_dict`; unknown keys are ignored."""
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})
