"""Turning ranking evidence into words, and checking the words against the evidence.

Ranking hands over structured evidence (the liked films that drove a score, shared attributes,
each agent's score). :func:`template_reason` states it in one plain sentence with no model at all.
:func:`explain` may ask a chat model to phrase the top items more warmly, but the model only ever
sees one item and its evidence (never the candidate list), and its reply is kept only if code can
verify it: it names the recommended film, names no film outside the evidence, makes no claim the
film's fact sheet does not hold (genre and mood words, nationality, people, years, decades,
awards, "classic", plot and themes...: :mod:`recagents.graph.claims`), and looks like an
explanation (length, no links, no "As an AI", no echoed instructions). Anything else, including a
model error or timeout, falls back to the template sentence with the reason recorded, so neither
a hallucinated title nor an unsupported claim reaches the user. A model busy with another reply
beyond a short wait is not queued for: the template answers at once (source ``template-busy``),
and a call that times out is cancelled so it stops generating
(:mod:`recagents.graph.generation`). What no lexicon names can still
pass: the checks bound what a small model may claim, they do not make it truthful.

This module imports no torch or transformers: the chat model is passed in.
"""

from __future__ import annotations

import contextvars
import logging
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from recagents.data.facts import FactSheet
from recagents.data.titles import move_article, strip_accents, title_key, title_variants
from recagents.graph.claims import Support, people_in, unsupported_claim
from recagents.graph.generation import ModelBusy, call_control
from recagents.prompts import load_chat_prompt, prompt_sections
from recagents.types import Recommendation

if TYPE_CHECKING:
    from langchain_core.language_models.chat_models import BaseChatModel
    from langchain_core.messages import BaseMessage

logger = logging.getLogger(__name__)

CatalogMatcher = Callable[[str], list[str]]
"""Returns the catalog titles a text mentions (supplied by the conversation layer)."""

FactLookup = Callable[[Recommendation], "FactSheet | None"]
"""Returns a recommendation's fact sheet (supplied by the conversation layer from the dataset)."""

PROMPT_NAME = "explain"
MIN_CHARS = 10
MAX_CHARS = 400
DEFAULT_TEXT = "A well-liked pick that matches what you asked for."
MAX_LIKED_IN_TEXT = 3
MAX_SENTENCES = 2
MIN_WORDS_BEYOND_TITLES = 4

# MovieLens genres: quoted or emphasised genre words are not film titles.
_GENRES = (
    "Action Adventure Animation Children's Children Comedy Crime Documentary Drama Fantasy "
    "Film-Noir Noir Horror Musical Mystery Romance Sci-Fi Science Fiction Thriller War Western IMAX"
).split()
_SELF_TALK = re.compile(
    r"\bas an ai\b|\bai (?:language )?model\b|\blanguage model\b|\bchatbot\b|\bassistant\b|"
    r"\bfeel free\b|\blet me know\b|\bhappy to help\b|\bsorry\b|"
    r"(?-i:\bI\b)|\bI'(?:m|d|ll|ve)\b|\bme\b|\bmy\b",
    re.IGNORECASE,
)
_PROMPT_SPEAK = re.compile(
    r"\bthe user\b|\bthe facts?\b|\boriginal sentence\b|\brewrite\b|\bin common:|\bsummary:",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(
    r"(?<!\bMr\.)(?<!\bMrs\.)(?<!\bMs\.)(?<!\bDr\.)(?<!\bSt\.)(?<!\bJr\.)(?<!\bSr\.)(?<!\bvs\.)"
    r"(?<=[a-z0-9)\"'\u201d][.!?])\s+(?=[A-Z0-9\"\u201c])"
)
_URL = re.compile(
    r"https?://|\bwww\.|\b[\w-]+\.(?:com|org|net|io|ai|co|tv|ly|me|info)\b", re.IGNORECASE
)
_CHAT_MARKUP = re.compile(
    r"<\|[^|]*\|>|</?s>|^\s*(?:system|user|assistant|human)\s*:|\$\w+|\$\{", re.I | re.M
)
_COMMENT = re.compile(r"<!--.*?-->\s*", re.DOTALL)
_TRAILING_PARENS = re.compile(r"^(?P<main>.*?)(?P<parens>(?:\s*\([^()]*\))*)\s*$")
_YEAR_IN_PARENS = re.compile(r"\(\s*((?:18|19|20)\d\d)\s*\)")
_MASK = " \u00a6 "
_LEADING_ARTICLES = frozenset("the a an les la le il das der die el".split())
_CONNECTORS = frozenset(
    "of the a an and in on to for with at from de la le les du des di del da el vs vs. & or "
    "under over into".split()
)
# Capitalised words that open a sentence rather than a title ("Fans of Heat (1995)").
_STARTERS = frozenset(
    "if you fans fan like because as just try watch enjoy also and but it this since with so "
    "then love loved lovers for like, think may might will would could should perhaps maybe "
    "here there".split()
)
_QUOTED = (
    re.compile(r'"([^"\n]{1,100})"'),
    re.compile(r"\u201c([^\u201d\n]{1,100})\u201d"),
    re.compile(r"(?<![\w'])'([^'\n]{1,100})'(?![\w'])"),
    re.compile(r"\u2018([^\u2019\n]{1,100})\u2019(?!\w)"),
    re.compile(r"\*{1,2}([^*\n]{1,100})\*{1,2}"),
    re.compile(r"(?<!\w)_([^_\n]{1,100})_(?!\w)"),
)


@dataclass(frozen=True)
class Explanation:
    """The words shown for one recommendation, and where they came from.

    Attributes:
        item_id: The recommended item.
        text: One or two sentences.
        source: ``llm`` when a chat model's phrasing passed verification; ``template-busy`` when
            the template answered because the model was busy with another reply beyond the
            caller's wait; else ``template``.
        rejected_reason: Why the model's phrasing was not used (failed check, error, timeout,
            busy); ``None`` when it was used or the model was not asked.
    """

    item_id: str
    text: str
    source: Literal["llm", "template", "template-busy"]
    rejected_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


# --------------------------------------------------------------------------- template phrasing


def display_title(title: str) -> str:
    """``Usual Suspects, The (1995)`` -> ``The Usual Suspects (1995)`` (MovieLens to prose)."""
    match = _TRAILING_PARENS.match(title.strip())
    if match is None:  # pragma: no cover - the pattern matches any string
        return title.strip()
    return move_article(match.group("main")) + match.group("parens")


def _join(items: Sequence[str]) -> str:
    items = [i for i in items if i]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _parse_attributes(attributes: Iterable[str]) -> dict[str, list[str]]:
    """``["genre: Crime", "director: X"]`` -> ``{"genre": ["Crime"], "director": ["X"]}``."""
    kinds = {
        "genre": "genre",
        "genres": "genre",
        "director": "director",
        "directors": "director",
        "directed by": "director",
        "cast": "cast",
        "actor": "cast",
        "actors": "cast",
        "actress": "cast",
        "star": "cast",
        "stars": "cast",
        "starring": "cast",
    }
    parsed: dict[str, list[str]] = {}
    for attribute in attributes:
        kind, sep, value = attribute.partition(":")
        if not sep:
            kind, value = "other", attribute
        kind = kinds.get(kind.strip().lower(), kind.strip().lower())
        for part in (v.strip() for v in value.split("|")):
            if part and part not in parsed.setdefault(kind, []):
                parsed[kind].append(part)
    return parsed


def _liked_titles(rec: Recommendation) -> list[str]:
    ranked = sorted(rec.evidence.because_of, key=lambda c: c.weight, reverse=True)
    titles: list[str] = []
    for contribution in ranked:
        shown = display_title(contribution.title)
        if shown and shown not in titles:
            titles.append(shown)
    return titles


def _first(names: list[str], prefer: Sequence[str]) -> list[str]:
    """``names`` with those in ``prefer`` (compared case- and accent-blind) moved to the front."""
    wanted = {title_key(p) for p in prefer}
    return sorted(names, key=lambda n: title_key(n) not in wanted)


def template_reason(rec: Recommendation, prefer: Sequence[str] = ()) -> str:
    """One plain sentence built only from the evidence: always true, always available.

    Example: ``Because you liked Fargo (1996) and Pulp Fiction (1994); it shares Crime and
    Thriller, directed by Quentin Tarantino.``

    People are named in the evidence's order (ranking lists shared cast by prominence, so "Al
    Pacino", not "Abe Vigoda and Al Martino", for The Godfather), except that people in
    ``prefer`` (named by the user) come first.

    Args:
        rec: The recommendation and its evidence.
        prefer: People to name first when the evidence holds them.

    Returns:
        The sentence; a generic one when the evidence is empty.
    """
    liked = _liked_titles(rec)[:MAX_LIKED_IN_TEXT]
    attributes = _parse_attributes(rec.evidence.shared_attributes)
    genres = attributes.pop("genre", [])[:3]
    directors = _first(attributes.pop("director", []), prefer)[:2]
    cast = _first(attributes.pop("cast", []), prefer)[:2]

    clauses: list[str] = []
    if genres:
        clauses.append(("it shares " if liked else "") + _join(genres))
    if directors:
        clauses.append(
            ("it is directed by " if liked and not clauses else "directed by ") + _join(directors)
        )
    if cast:
        clauses.append(("it stars " if liked and not clauses else "starring ") + _join(cast))
    for kind, values in attributes.items():
        label = "also" if kind == "other" else f"same {kind}"
        clauses.append(f"{label}: {_join(values[:2])}")

    if liked and clauses:
        return f"Because you liked {_join(liked)}; {', '.join(clauses)}."
    if liked:
        return f"Because you liked {_join(liked)}."
    if clauses:
        return f"Matches what you like: {', '.join(clauses)}."
    return _score_reason(rec.evidence.agent_scores)


#: Catalog facts the engine adds to ``agent_scores`` (not agent views).
FACT_KEYS = ("ratings", "mean_rating", "popular")


def _score_reason(scores: dict[str, float]) -> str:
    """Without items or attributes, say which agent liked it most (facts for popularity)."""
    views = {
        k: v for k, v in scores.items() if k != "final" and k not in FACT_KEYS and v == v
    }  # drop NaN
    if not views or max(views, key=lambda k: views[k]) == "popularity":
        return facts_reason(scores) or DEFAULT_TEXT
    strongest = max(views, key=lambda k: views[k])
    return {
        "text": "A close match for what you asked for.",
        "tower": "Close to the films you rate highly.",
        "history": "Close to the films you rate highly.",
    }.get(strongest, DEFAULT_TEXT)


def facts_reason(scores: dict[str, float]) -> str:
    """What the train data says of the film: "popular" only when it is among the most rated."""
    count = scores.get("ratings")
    mean = scores.get("mean_rating")
    if not count or mean is None or mean != mean:
        return ""
    rated = f"average rating {mean:.1f} from {int(count)} ratings"
    if scores.get("popular") == 1.0:
        return f"One of the most-rated films in the catalog: {rated}."
    return f"Well rated: {rated}." if mean >= 3.5 else f"{rated.capitalize()}."


# ------------------------------------------------------------------------------ verification


def _fold(text: str) -> str:
    """Accents folded character by character, so positions in the folded text match the original."""
    out = []
    for ch in text:
        folded = strip_accents(ch)
        out.append(folded if len(folded) == 1 else ch)
    return "".join(out)


def _title_forms(title: str) -> list[str]:
    """Every way a text may name a film.

    ``Usual Suspects, The (1995)`` gives ``Usual Suspects, The``, ``The Usual Suspects`` and
    ``Usual Suspects``; each parenthesised alternative title is added the same way.
    """
    forms = [_strip_parens(title), *title_variants(title)]
    for form in list(forms):
        moved = move_article(form)
        first, _, rest = moved.partition(" ")
        if rest and first.lower() in _LEADING_ARTICLES:
            forms.append(rest)
    unique: dict[str, str] = {}
    for form in forms:
        if form:
            unique.setdefault(form.lower(), form)
    return list(unique.values())


def _strip_parens(title: str) -> str:
    match = _TRAILING_PARENS.match(title.strip())
    return match.group("main").strip() if match else title.strip()


def _year(title: str) -> str | None:
    years = _YEAR_IN_PARENS.findall(title)
    return years[-1] if years else None


def _form_pattern(form: str, year: str | None) -> re.Pattern[str] | None:
    tokens = re.findall(r"[0-9a-z]+|&", _fold(form).lower())
    if not tokens:
        return None
    parts = ["(?:&|and)" if t in {"&", "and"} else re.escape(t) for t in tokens]
    year_part = rf"(?:\s*\(\s*{year}\s*\))?" if year else ""
    return re.compile(
        r"(?<![0-9a-z])" + r"[\W_]*".join(parts) + r"(?![0-9a-z])" + year_part, re.IGNORECASE
    )


def _patterns(titles: Iterable[str]) -> list[re.Pattern[str]]:
    """Patterns for the given titles, longest form first so masking takes whole titles."""
    found: list[tuple[int, re.Pattern[str]]] = []
    for title in titles:
        year = _year(title)
        for form in _title_forms(title):
            pattern = _form_pattern(form, year)
            if pattern is not None:
                found.append((len(form), pattern))
    return [p for _, p in sorted(found, key=lambda x: -x[0])]


def _mask(text: str, titles: Iterable[str]) -> tuple[str, int]:
    """Replace every mention of ``titles`` with a neutral mark; return the text and the count."""
    masked = _fold(text)
    total = 0
    titles = list(titles)
    literals = {form for title in titles for form in (title, display_title(title))}
    for title in sorted(literals, key=len, reverse=True):
        # Literal forms first (as stored and as displayed, "The Tin Drum (Blechtrommel, Die)"):
        # titles with nested parentheses defeat the word patterns below and would leave
        # "Die) (1979)" looking invented.
        literal = _fold(title)
        if literal and literal in masked:
            total += masked.count(literal)
            masked = masked.replace(literal, _MASK)
    for pattern in _patterns(titles):
        masked, count = pattern.subn(_MASK, masked)
        total += count
    return masked, total


def mentions_title(text: str, title: str) -> bool:
    """Whether ``text`` names ``title`` (with or without year, ``The X`` or ``X, The``)."""
    return _mask(text, [title])[1] > 0


def _keys(title: str) -> set[str]:
    keys = {title_key(f) for f in _title_forms(title)}
    return {k for k in keys if k}


def _is_allowed(candidate: str, allowed_keys: set[str]) -> bool:
    return bool(_keys(candidate) & allowed_keys) or title_key(candidate) in allowed_keys


def _year_titled_spans(masked: str) -> list[str]:
    """``Title Cased Words (1997)`` spans: the form small models use to name films."""
    spans: list[str] = []
    for match in _YEAR_IN_PARENS.finditer(masked):
        before = re.split(
            r"[.!?;:\n\u00a6]|,\s", masked[max(0, match.start() - 120) : match.start()]
        )[-1]
        words = before.split()
        run: list[str] = []
        for word in reversed(words):
            bare = word.strip("\"'“”‘’*_")
            if bare and (bare[0].isupper() or bare[0].isdigit()):
                run.insert(0, bare)
            elif bare.lower() in _CONNECTORS and run:
                run.insert(0, bare)
            else:
                break
        while run and (
            (run[0].islower() and run[0] in _CONNECTORS) or run[0].lower().rstrip(",") in _STARTERS
        ):
            run.pop(0)
        if run:
            spans.append(f"{' '.join(run)} ({match.group(1)})")
    return spans


def _quoted_spans(masked: str, not_titles: set[str]) -> list[str]:
    """Quoted or emphasised spans starting with a capital (``"Titanic"``, ``*Heat*``)."""
    spans: list[str] = []
    for pattern in _QUOTED:
        for match in pattern.finditer(masked):
            span = match.group(1).strip().strip(",.;:")
            if not span or "\u00a6" in span or not (span[0].isupper() or span[0].isdigit()):
                continue
            if len(span.split()) > 8 or title_key(span) in not_titles:
                continue
            if all(title_key(part) in not_titles for part in re.split(r",|/|\band\b", span)):
                continue
            spans.append(span)
    return spans


def verify_titles(
    text: str,
    allowed_titles: Iterable[str],
    catalog_titles: CatalogMatcher | None = None,
    *,
    not_titles: Iterable[str] = (),
) -> list[str]:
    """The film titles ``text`` names that are not in ``allowed_titles`` (empty: all is well).

    Mentions of allowed titles are masked first, so a title *inside* an allowed one ("The
    Godfather" within "The Godfather: Part II") is not reported. Then three detectors run:

    1. ``catalog_titles(text)``, the catalog matcher, when given (its titles are reported only if
       they still appear once allowed titles are masked, or cannot be located at all);
    2. ``Title Cased Words (1997)`` spans;
    3. quoted or emphasised spans starting with a capital (``"Titanic"``, ``*Heat*``), except
       genre words and ``not_titles`` (attribute values such as people's names).

    Args:
        text: The generated explanation.
        allowed_titles: Titles the text may name (the recommendation and its evidence).
        catalog_titles: Optional matcher returning catalog titles mentioned in a text.
        not_titles: Strings that are never titles here (genres, director and cast names).

    Returns:
        Offending titles in order of appearance, without duplicates; benchmarks count them.
    """
    allowed = [t for t in allowed_titles if t]
    allowed_keys: set[str] = set()
    for title in allowed:
        allowed_keys |= _keys(title)
    ignore = {title_key(s) for s in [*not_titles, *_GENRES] if title_key(s)}
    masked, _ = _mask(text, allowed)
    folded = _fold(text)

    candidates: list[str] = []
    if catalog_titles is not None:
        for found in catalog_titles(text):
            if _is_allowed(found, allowed_keys):
                continue
            still_there = _mask(masked, [found])[1] > 0
            anywhere = _mask(folded, [found])[1] > 0
            if still_there or not anywhere:
                candidates.append(found)
    candidates.extend(_year_titled_spans(masked))
    candidates.extend(_quoted_spans(masked, ignore))

    offending: list[str] = []
    seen: set[str] = set()
    for candidate in candidates:
        key = title_key(_strip_parens(candidate)) or candidate
        if _is_allowed(candidate, allowed_keys) or key in seen:
            continue
        seen.add(key)
        offending.append(candidate)
    return offending


# --------------------------------------------------------------------------------- prompting


def _attribute_line(rec: Recommendation) -> str:
    parsed = _parse_attributes(rec.evidence.shared_attributes)
    return "; ".join(f"{kind}: {', '.join(values)}" for kind, values in parsed.items()) or "none"


def _clean_request(request: str, limit: int = 200) -> str:
    request = " ".join(request.split())
    if len(request) > limit:
        request = request[: limit - 1].rstrip() + "\u2026"
    return request or "nothing specific"


def build_messages(
    rec: Recommendation,
    request: str = "",
    *,
    prefill: bool = False,
    facts: FactSheet | None = None,
) -> list[BaseMessage]:
    """The messages for one recommendation: its title, the request and its evidence, nothing else.

    The candidate list never enters the prompt (a long list invites the model to name other
    films, and costs latency); only the item being phrased and its own evidence do.

    Args:
        rec: The recommendation to phrase.
        request: What the user asked for this turn.
        prefill: End with the prompt's ``assistant`` section as the reply's opening ("Since you
            liked Pulp Fiction (1994), you will enjoy Fargo (1996) because"). It keeps a small
            model on the title and the evidence (SmolLM2: 11 of 12 replies verified, against 6 of
            12 without), but only models that continue a trailing assistant message can take it.
        facts: The film's fact sheet, listed for the model as the only facts it may use (the
            reply is checked against the same sheet); without it, the evidence alone.
    """
    liked = _liked_titles(rec)[:MAX_LIKED_IN_TEXT]
    sheet = facts or evidence_sheet(rec)
    values = {
        "sheet": "\n".join(f"- {line}" for line in sheet.lines()) or "- none",
        "title": display_title(rec.title),
        "request": _clean_request(request),
        "liked": ", ".join(f'"{t}"' for t in liked) or "none",
        "attributes": _attribute_line(rec),
        "facts": template_reason(rec),
        "first_liked": liked[0] if liked else "",
    }
    opening: tuple[str, ...] = ()
    if prefill:
        opening = ("assistant",) if liked else ("assistant without liked", "assistant")
    return load_chat_prompt(PROMPT_NAME, opening).format_messages(**values)


def build_prompt(rec: Recommendation, request: str = "", facts: FactSheet | None = None) -> str:
    """The whole prompt for one recommendation as plain text (for logs and tests)."""
    return "\n\n".join(m.text for m in build_messages(rec, request, facts=facts))


def _instruction_ngrams(n: int = 5) -> set[tuple[str, ...]]:
    """Word n-grams of the prompt's fixed text; a reply containing one is echoing instructions."""
    template = "\n".join(prompt_sections(PROMPT_NAME).values())
    grams: set[tuple[str, ...]] = set()
    for fragment in re.split(r"\{\w+\}", template):
        words = re.findall(r"[a-z0-9']+", fragment.lower())
        grams |= {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}
    return grams


def split_sentences(text: str) -> list[str]:
    """Split prose into sentences without breaking ``E.T.`` or ``Mr. Pink``.

    The local model's stopping rule uses it too, so a reply is cut where the checks count a
    sentence, not at every full stop.
    """
    return [part for part in _SENTENCE_END.split(text) if part]


def tidy_reply(text: str) -> str:
    """Normalise a raw reply before it is checked: what is checked is exactly what is shown.

    One line, no wrapping quotes, at most two sentences (the prompt asks for one or two; small
    models ramble on and the rambling is where they invent), and no unfinished last sentence (a
    reply cut by ``max_new_tokens``).
    """
    text = " ".join(text.split())
    if len(text) >= 2 and text[0] in "\"'\u201c" and text[-1] in "\"'\u201d":
        text = text[1:-1].strip()
    quotes = '"\u201c\u201d'
    if sum(text.count(q) for q in quotes) == 1:  # a stray quote left by the model at either end
        text = text.strip(quotes).strip()
    sentences = split_sentences(text)
    if len(sentences) > 1 and sentences[-1][-1] not in ".!?\"'\u201d)":
        sentences = sentences[:-1]
    return " ".join(sentences[:MAX_SENTENCES])


def evidence_sheet(rec: Recommendation) -> FactSheet:
    """A fact sheet holding only what the evidence says (title, year, shared genres, people).

    Used when no catalog sheet is at hand, so replies are still checked, against less.
    """
    parsed = _parse_attributes(rec.evidence.shared_attributes)
    year = _year(rec.title)
    return FactSheet(
        item_id=rec.item_id,
        title=rec.title,
        year=int(year) if year else None,
        genres=tuple(parsed.get("genre", ())),
        directors=tuple(parsed.get("director", ())),
        cast=tuple(parsed.get("cast", ())),
    )


def _unsupported_facts(
    text: str,
    rec: Recommendation,
    allowed: Sequence[str],
    facts: FactSheet | None,
) -> str | None:
    """The first claim of ``text`` that ``facts`` (else the evidence alone) does not support.

    Titles are masked first: "2001: A Space Odyssey" holds a year, "Oscar" is a film and "Some
    Like It Hot" is no mood. See :mod:`recagents.graph.claims` for what counts as a claim.
    """
    masked = _mask(text, allowed)[0].replace(_MASK.strip(), " ")
    support = Support(
        sheet=facts or evidence_sheet(rec),
        people=people_in(rec.evidence.shared_attributes),
        years=tuple(y for t in allowed for y in _YEAR_IN_PARENS.findall(t)),
    )
    reason = unsupported_claim(masked, support)
    if reason and facts is None:
        reason += " (checked against the evidence only)"
    return reason


def check_reply(
    text: str,
    rec: Recommendation,
    catalog_titles: CatalogMatcher | None = None,
    facts: FactSheet | None = None,
) -> str | None:
    """Why a (tidied) reply may not be shown for ``rec``, or ``None`` when it passes every check.

    Checks, in order: length within 10..400 characters; a finished last sentence; no assistant
    talk ("As an AI", "I'd be happy to"); no links; no chat markup or echoed instructions; names
    the recommended title and says something beyond titles; names no other film than the
    recommendation and the liked films in its evidence (:func:`verify_titles`); and every claim
    it makes (genre and mood words, nationality and language, people, years and decades, awards,
    critics' praise, "classic", "sequel"...) is on the film's fact sheet
    (:func:`recagents.graph.claims.unsupported_claim`).

    Args:
        text: The tidied reply.
        rec: The recommendation it phrases.
        catalog_titles: Catalog matcher used to spot film titles.
        facts: The recommended film's fact sheet; without it, claims are checked against the
            evidence alone (stricter: fewer facts support fewer claims).
    """
    if len(text) < MIN_CHARS:
        return f"too short ({len(text)} characters)"
    if len(text) > MAX_CHARS:
        return f"too long ({len(text)} characters)"
    if not re.search(r"[.!?][\"'\u201d)]*$", text):
        return "unfinished sentence (the model ran out of tokens)"
    allowed = [rec.title, *(c.title for c in rec.evidence.because_of)]
    masked = _mask(text, allowed)[0]  # "Star Wars: Episode I" must not read as "I"
    if _SELF_TALK.search(masked):
        return "speaks as the assistant instead of about the film"
    if _URL.search(text):
        return "contains a link"
    words = re.findall(r"[a-z0-9']+", text.lower())
    echoed = {tuple(words[i : i + 5]) for i in range(len(words) - 4)} & _instruction_ngrams()
    if _CHAT_MARKUP.search(text) or _PROMPT_SPEAK.search(text) or echoed:
        return "echoes the instructions"
    if not mentions_title(text, rec.title):
        return f"does not name the recommended title {display_title(rec.title)!r}"
    if len(re.findall(r"[A-Za-z0-9']+", masked)) < MIN_WORDS_BEYOND_TITLES:
        return "says nothing beyond the titles"
    not_titles = [
        v for values in _parse_attributes(rec.evidence.shared_attributes).values() for v in values
    ]
    try:
        offending = verify_titles(text, allowed, catalog_titles, not_titles=not_titles)
    except Exception as exc:  # the matcher is caller code; a failure must not show unchecked text
        return f"title check failed: {exc}"
    if offending:
        return "names titles outside the evidence: " + "; ".join(offending)
    return _unsupported_facts(text, rec, allowed, facts)


def _invoke(
    chat_model: BaseChatModel,
    messages: list[BaseMessage],
    timeout_s: float | None,
    busy_wait_s: float | None = None,
) -> str:
    """Call the model, giving up after ``timeout_s`` and then cancelling the call.

    The call runs under a :func:`~recagents.graph.generation.call_control`: a model that honours
    it (the embedded one) raises ``ModelBusy`` after ``busy_wait_s`` behind another reply, and
    stops generating at its next token once a timed-out call is cancelled, so it does not hold
    the model for the next caller. Other models ignore the control; their call is abandoned.
    """
    with call_control(busy_wait_s) as control:
        if timeout_s is None:
            return chat_model.invoke(messages).text
        return _invoke_within(chat_model, messages, timeout_s, control.cancel)


def _invoke_within(
    chat_model: BaseChatModel,
    messages: list[BaseMessage],
    timeout_s: float,
    cancel: Callable[[], None],
) -> str:
    box: dict[str, Any] = {}

    def call() -> None:
        try:
            box["text"] = chat_model.invoke(messages).text
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    context = contextvars.copy_context()
    worker = threading.Thread(target=context.run, args=(call,), name="explain-llm", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        cancel()
        raise TimeoutError(f"no reply within {timeout_s:g} s")
    if "error" in box:
        raise box["error"]
    return str(box["text"])


def _lookup(facts: FactLookup | None, rec: Recommendation) -> FactSheet | None:
    if facts is None:
        return None
    try:
        return facts(rec)
    except Exception:  # caller code; no sheet means checking against the evidence alone
        logger.warning("no fact sheet for %s", rec.item_id, exc_info=True)
        return None


def _continue(opening: str, continuation: str) -> str:
    if not opening:
        return continuation
    if continuation[:1].isspace() or continuation[:1] in {",", ".", "!", "?", ";", ":", "'"}:
        return opening + continuation
    return f"{opening} {continuation}"


def explain(
    recs: Sequence[Recommendation],
    chat_model: BaseChatModel | None,
    *,
    request: str = "",
    max_llm_items: int = 1,
    catalog_titles: CatalogMatcher | None = None,
    timeout_s: float | None = 60.0,
    facts: FactLookup | None = None,
    people: Sequence[str] = (),
    busy_wait_s: float | None = None,
) -> list[Explanation]:
    """Explain each recommendation, phrased by the chat model where it can be verified.

    Only the first ``max_llm_items`` items go to the model (each call costs seconds on a CPU);
    the rest, and every item whose reply fails :func:`check_reply` or whose call fails or times
    out, get :func:`template_reason`.

    Args:
        recs: Recommendations in display order.
        chat_model: The model, or ``None`` for template sentences only.
        request: What the user asked for this turn (given to the model as context).
        max_llm_items: How many leading items the model may phrase.
        catalog_titles: Catalog matcher used to spot film titles in replies.
        timeout_s: Longest wait for one reply; ``None`` waits for ever.
        facts: Fact-sheet lookup: the model is given the sheet and its reply checked against
            it (:func:`check_reply`); without it, against the evidence alone.
        people: Names the user gave this conversation: template reasons name them first
            (they never widen what a model's reply may claim).
        busy_wait_s: Longest wait for a model busy with another reply; past it the item (and
            every later one) gets the template at once, marked ``template-busy``. ``None``
            waits as long as the timeout allows.

    Returns:
        One explanation per recommendation, in the same order.
    """
    explanations: list[Explanation] = []
    busy: str | None = None
    for index, rec in enumerate(recs):
        fallback = template_reason(rec, people)
        if chat_model is None or index >= max_llm_items:
            explanations.append(Explanation(rec.item_id, fallback, "template"))
            continue
        if busy is not None:  # one wait per turn, not one per item
            explanations.append(Explanation(rec.item_id, fallback, "template-busy", busy))
            continue
        prefill = bool(getattr(chat_model, "supports_prefill", False))
        sheet = _lookup(facts, rec)
        messages = build_messages(rec, request, prefill=prefill, facts=sheet)
        opening = messages[-1].text if prefill and messages[-1].type == "ai" else ""
        try:
            text = _invoke(chat_model, messages, timeout_s, busy_wait_s)
            reply = tidy_reply(_continue(opening, text))
        except ModelBusy as exc:
            busy = f"model busy: {exc}"
            logger.info("explanation for %s uses the template: %s", rec.item_id, busy)
            explanations.append(Explanation(rec.item_id, fallback, "template-busy", busy))
            continue
        except Exception as exc:  # provider errors come in every type
            reason = f"model call failed: {type(exc).__name__}: {exc}"
            logger.warning("explanation for %s falls back to the template: %s", rec.item_id, reason)
        else:
            rejected = check_reply(reply, rec, catalog_titles, sheet)
            if rejected is None:
                explanations.append(Explanation(rec.item_id, reply, "llm"))
                continue
            reason = rejected
            logger.info("rejected phrasing for %s (%s): %r", rec.item_id, reason, reply)
        explanations.append(Explanation(rec.item_id, fallback, "template", reason))
    return explanations
