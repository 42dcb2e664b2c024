"""Deterministic understanding of one chat turn, with no LLM.

A person types "something like Heat but funnier" or "not that one, seen the second"; this package
turns that into a :class:`~recagents.graph.intent.TurnIntent` whose item references are catalog ids.
Everything here is built from the dataset itself (titles, genres, people), so it works for any
catalog, and it never calls a model: it is the path that always works, and the fallback when a
chat model's structured output is missing or invalid (:func:`intent_from_llm`).

Pieces, one module each:

- ``matcher``: :class:`CatalogMatcher`, titles typed by a person -> item ids (exact, article-,
  accent- and typo-tolerant), titles mentioned inside free text (:class:`Mention`), and "did you
  mean" suggestions.
- ``lexicons``: :class:`GenreLexicon` and :class:`PeopleLexicon`, genre words and synonyms,
  people's names.
- ``years``: :func:`parse_years`, "from the 90s", "newer than 2000", "between 1980 and 1990".
- ``rules``: :class:`IntentParser`, the rules that combine them into a :class:`TurnIntent`; the
  module's docstring gives the precedence of actions and how cues classify references.
- ``router``: :class:`SemanticRouter`, the action from the nearest labelled example turns
  (``words/exemplars.toml``) embedded with the sentence encoder; the rules decide when it is
  unsure.
- ``language``: :func:`detect_foreign`, a message in another language, by function words and
  script.
- ``refs``: references to the items shown in the previous reply ("the second one", "it").
- ``schema``: :class:`LLMTurn` / :func:`intent_schema` / :func:`intent_from_llm`, the
  structured-output schema for a chat model and its mapping onto catalog ids through the same
  matcher and lexicons.
- ``tokens``: folding, the tokenizer, break detection and recognised spans, shared by all.
- ``vocabulary``: the word lists (stopwords, everyday words, cue words, smalltalk, ordinals,
  genre synonyms...), which are data files under ``words/``, loaded once.

Work is capped so that any message is handled in milliseconds: only the first
:data:`MAX_SCAN_CHARS` characters are read, n-grams are at most :data:`MAX_NGRAM` words and at most
:data:`MAX_FUZZY_QUERIES` fuzzy look-ups run per message.
"""

from recagents.graph.understand.language import detect_foreign
from recagents.graph.understand.lexicons import GenreLexicon, PeopleLexicon
from recagents.graph.understand.matcher import MAX_FUZZY_QUERIES, CatalogMatcher, Mention
from recagents.graph.understand.router import RouteChoice, SemanticRouter, shared_router
from recagents.graph.understand.rules import IntentParser
from recagents.graph.understand.schema import LLMTurn, intent_from_llm, intent_schema
from recagents.graph.understand.tokens import MAX_NGRAM, MAX_SCAN_CHARS
from recagents.graph.understand.years import parse_years

__all__ = [
    "MAX_FUZZY_QUERIES",
    "MAX_NGRAM",
    "MAX_SCAN_CHARS",
    "CatalogMatcher",
    "GenreLexicon",
    "IntentParser",
    "LLMTurn",
    "Mention",
    "PeopleLexicon",
    "RouteChoice",
    "SemanticRouter",
    "detect_foreign",
    "shared_router",
    "intent_from_llm",
    "intent_schema",
    "parse_years",
]
