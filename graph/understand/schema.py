"""Structured output from a chat model: the schema it fills and its mapping onto catalog ids.

A capable chat model may read a turn instead of the rules; it only names things (titles, genres,
people, "the second one"), and :func:`intent_from_llm` resolves every name through the same
matcher and lexicons as the parser, so both paths give the same kind of :class:`TurnIntent`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from recagents.errors import DataError
from recagents.graph.intent import Action, TurnIntent
from recagents.graph.understand.lexicons import GenreLexicon, PeopleLexicon
from recagents.graph.understand.matcher import CatalogMatcher
from recagents.graph.understand.refs import ref_from_text
from recagents.graph.understand.tokens import unique

logger = logging.getLogger(__name__)

_Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
_Texts = Annotated[list[_Text], Field(default_factory=list, max_length=20)]


class LLMTurn(BaseModel):
    """What a chat model returns for one turn: :class:`TurnIntent` with names instead of ids.

    The model only names things; :func:`intent_from_llm` maps the names onto the catalog through
    the same matcher and lexicons as the parser, so a hallucinated title can never reach the
    ranking. Refs may be ordinals ("second", "#2", "the last one"), pronouns ("it", "that one")
    or titles.
    """

    model_config = ConfigDict(extra="ignore")

    action: Action = Field(
        "recommend",
        description="recommend, why, about (a question about the shown list), start_over, "
        "smalltalk, other_language, empty",
    )
    liked_titles: _Texts = Field(description="Titles the person says they like or loved.")
    disliked_titles: _Texts = Field(description="Titles the person says they dislike.")
    seen_refs: _Texts = Field(description="Shown items or titles the person has already seen.")
    rejected_refs: _Texts = Field(description="Shown items or titles the person turns down.")
    anchor_titles: _Texts = Field(description="Titles or shown items to find more like.")
    genres_include: _Texts = Field(description="Genres the results must have.")
    genres_prefer: _Texts = Field(description="Genres to favour (e.g. 'funnier' -> Comedy).")
    genres_exclude: _Texts = Field(description="Genres the results must not have.")
    year_from: int | None = Field(None, ge=1870, le=2100, description="Earliest release year.")
    year_to: int | None = Field(None, ge=1870, le=2100, description="Latest release year.")
    people: _Texts = Field(description="Directors or actors the results must involve.")
    people_any: bool = Field(
        False, description="True when any one of the people will do (they said 'or')."
    )
    why_ref: _Text | None = Field(None, description="Shown item or title a why question is about.")

    @model_validator(mode="after")
    def _ordered_years(self) -> LLMTurn:
        low, high = self.year_from, self.year_to
        if low is not None and high is not None and low > high:
            raise ValueError(f"year_from {self.year_from} is after year_to {self.year_to}")
        return self


def intent_schema() -> type[LLMTurn]:
    """The pydantic model to request as structured output (``with_structured_output``)."""
    return LLMTurn


def _validated(payload: LLMTurn | Mapping[str, Any]) -> LLMTurn:
    """``payload`` as an :class:`LLMTurn`; a :class:`DataError` sends the turn to the parser.

    Raises:
        DataError: ``payload`` is not an :class:`LLMTurn` and no dict that validates as one.
    """
    if isinstance(payload, LLMTurn):
        return payload
    if not isinstance(payload, Mapping):
        raise DataError(
            f"chat model output is a {type(payload).__name__}, not an LLMTurn or a dict; use "
            "IntentParser.parse for this turn instead"
        )
    try:
        return LLMTurn.model_validate(dict(payload))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "payload"
        raise DataError(
            f"chat model output does not fit LLMTurn ({exc.error_count()} error(s), first at "
            f"{where}: {first.get('msg')}); use IntentParser.parse for this turn instead"
        ) from exc


def _known_people(values: Iterable[str], people: PeopleLexicon) -> list[str]:
    """Canonical spellings of the named people the catalog has; the others are dropped (logged)."""
    named = []
    for value in values:
        person = people.lookup(value)
        if person is None:
            logger.info("chat model named person %r, who is not in the catalog: dropped", value)
        else:
            named.append(person)
    return unique(named)


def intent_from_llm(
    payload: LLMTurn | Mapping[str, Any],
    matcher: CatalogMatcher,
    genres: GenreLexicon,
    people: PeopleLexicon,
    shown: Sequence[str] = (),
    *,
    text: str = "",
) -> TurnIntent:
    """Map a chat model's :class:`LLMTurn` onto catalog ids, genres and people.

    Titles go through :meth:`CatalogMatcher.find` (shown items preferred); titles the catalog
    lacks are dropped from their list and reported in ``unknown_titles`` with suggestions;
    genres and people the catalog lacks are dropped (logged). Ordinals and pronouns in refs
    resolve against ``shown``.

    Args:
        payload: The model's output, validated or as a plain dict.
        matcher: The catalog matcher.
        genres: The genre lexicon.
        people: The people lexicon.
        shown: Item ids shown in the previous reply, in order.
        text: The person's message, kept in :attr:`TurnIntent.text`.

    Raises:
        DataError: ``payload`` does not fit :class:`LLMTurn` (the caller falls back to the
            parser).
    """
    turn = _validated(payload)
    shown = [str(s) for s in shown]
    unknown: list[str] = []

    def ids(values: Iterable[str]) -> list[str]:
        out: list[str] = []
        for value in values:
            item = ref_from_text(value, shown) or matcher.find(value, prefer=shown)
            if item is None:
                unknown.append(value)
            else:
                out.append(item)
        return unique(out)

    def genre_names(values: Iterable[str]) -> list[str]:
        out: list[str] = []
        for value in values:
            names = genres.lookup(value)
            if not names:
                logger.info("chat model named genre %r, which the catalog lacks: dropped", value)
            out.extend(names)
        return unique(out)

    intent = TurnIntent(action=turn.action, text=text.strip(), source="llm")
    intent.liked = ids(turn.liked_titles)
    intent.disliked = ids(turn.disliked_titles)
    intent.seen = ids(turn.seen_refs)
    intent.rejected = ids(turn.rejected_refs)
    intent.anchors = ids(turn.anchor_titles)
    intent.genres_exclude = genre_names(turn.genres_exclude)
    excluded = set(intent.genres_exclude)
    intent.genres_include = [g for g in genre_names(turn.genres_include) if g not in excluded]
    intent.genres_prefer = [g for g in genre_names(turn.genres_prefer) if g not in excluded]
    intent.year_from, intent.year_to = turn.year_from, turn.year_to
    intent.people = _known_people(turn.people, people)
    intent.people_any = len(intent.people) > 1 and bool(turn.people_any)
    if turn.why_ref:
        intent.why_target = ref_from_text(turn.why_ref, shown) or matcher.find(
            turn.why_ref, prefer=shown
        )
        if intent.why_target is None:
            unknown.append(turn.why_ref)
    intent.unknown_titles = unique(unknown)
    intent.suggestions = {
        title: [item for item, _, _ in matcher.closest(title, 3)] for title in intent.unknown_titles
    }
    return intent
