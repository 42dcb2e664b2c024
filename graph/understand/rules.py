"""The rules that turn one chat turn into a :class:`~recagents.graph.intent.TurnIntent`.

Precedence of :meth:`IntentParser.parse` (first that applies decides the action):

1. ``empty``: blank, or no letter or digit at all.
1b. ``other_language``: the message is in another language (:mod:`.language`): one clear
   sentence says English is understood, rather than an English question that ignores it.
2. ``start_over``: "start over", "reset", "restart", "new conversation", "forget everything"...
   The rest of the message is still parsed (minus references to shown items, which the reset
   makes meaningless), so "start over, comedies from the 90s" keeps its genres and years.
3. ``why``: "why did you pick that?", "why the second one", "how come", "what makes you think".
   Only ``why_target`` is filled (an ordinal, a pronoun or a title; ``None`` when the question
   names nothing, which the intent defines as the first shown item): a why question must not
   re-rank. A request that happens to contain "why" ("recommend three comedies and tell me why
   each is good") is a request: a request verb before the cue keeps it ``recommend``.
3b. ``about``: a question about the shown list: "which is the best one?" (``best``), "tell me
   more about the second" (``details``), "is it scary?" (``genre``, the genres asked in
   ``genres_include``). Answered from the facts held, without re-ranking.
4. ``recommend``: the message carries any signal (items, genres, years, people, unknown titles).
5. ``smalltalk``: only greeting / thanks words ("hi", "thanks!", "hello there").
6. ``recommend`` with no signal: anything else (other languages, gibberish, "show me something").

Inside a message, references are classified by the cue right before them (negative cues first:
dislike > reject > seen > like > similar), then by a cue right after ("X was great"), then by
coordination with the previous reference ("I loved Fargo and Heat"); a title with no cue is an
anchor, an ordinal with no cue is an anchor, a pronoun with no cue is ignored.

Corrections: "I meant Babe" makes Babe a replacement; "actually not Toy Story" (or any "not X"
in a message that has a replacement) retracts Toy Story: it leaves the list it was in and the
replacement takes its place. A count ("three movies", "top 5", "give me 3") sets ``count``.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from recagents.graph.intent import TurnIntent
from recagents.graph.understand.language import detect_foreign
from recagents.graph.understand.lexicons import GenreLexicon, PeopleLexicon
from recagents.graph.understand.matcher import CatalogMatcher
from recagents.graph.understand.refs import ref_spans, shown_index
from recagents.graph.understand.router import SemanticRouter
from recagents.graph.understand.schema import LLMTurn, intent_from_llm
from recagents.graph.understand.tokens import (
    MAX_SCAN_CHARS,
    Span,
    Word,
    clean,
    is_break,
    norm_key,
    resolve_overlaps,
    tokenize,
    unique,
)
from recagents.graph.understand.vocabulary import (
    AFTER_BARE_SEEN,
    COMMON_WORDS,
    CONNECTORS,
    EN_ARTICLES,
    MEDIA_NOUNS,
    NUMBER_WORDS,
    SMALLTALK,
    SMALLTALK_CORE,
    STOPWORDS,
    UNKNOWN_CUES,
)
from recagents.graph.understand.years import parse_years

if TYPE_CHECKING:
    from recagents.data import Dataset

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# Cue patterns, matched on the normalised words before / after a reference. Placeholders:
# @t title, @n person, @g genre, @o ordinal, @p pronoun; "," a soft break.

_FILLER = (
    r"(?:(?:the|a|an|really|so|much|also|just|totally|absolutely|already|both|all|of|too|again|"
    r"actually|kinda|definitely|ever|even|still|honestly|quite|pretty|very|truly|original)\s)*"
)


def _cue(alternatives: str) -> re.Pattern[str]:
    return re.compile(rf"(?:^|\s)(?:{alternatives})\s{_FILLER}$")


_NOT_SEEN = _cue(
    r"(?:haven t|have not|hasn t|never|not|didn t|did not|don t|do not|yet to)\s(?:\w+\s)?"
    r"(?:seen|watched|saw|see|watch)"
)
_ASKED_SEEN = _cue(r"(?:have|did|has|do)\s(?:you|u)\s(?:ever\s)?(?:seen|watched|saw|see|watch)")
_DISLIKE = _cue(
    r"hated|hate|disliked|dislike|detest|detested|loathe|loathed|(?:can t|cannot|couldn t|could "
    r"not|can not) stand|(?:didn t|did not) (?:like|enjoy|care for)|(?:not|wasn t|was not|"
    r"never) a fan of|don t care for|do not care for"
)
_REJECT = _cue(
    r"not|no|nope|nah|skip|pass on|(?:don t|do not|dont) (?:like|want|need)|not interested in|"
    r"other than|anything but|instead of|except|rather than|never|nothing like|not like|"
    r"without|exclude|remove|drop|no more|else than|but not|not even"
)
_SEEN = _cue(r"seen|watched|saw|rewatched|already have|already own")
_LIKE = _cue(
    r"loved|love|liked|enjoyed|adore|adored|appreciated|dug|(?:fan|fans) of|"
    r"(?:can|could) never get enough of|never get tired of|"
    r"(?:my|our) (?:all time |very )?favou?rite(?: movie| film| one)?(?: ever)? (?:is|was|s|has "
    r"to be|would be)|"
    r"(?:i|we|really|also|totally|do|still|always|definitely|kinda|actually|genuinely) like"
)
_ANCHOR = _cue(
    r"like|similar to|similar|vein of|lines of|reminds me of|reminiscent of|such as|same as|"
    r"akin to|style of|likes of|spirit of|more|as|about|comparable to|close to|resembling|"
    r"more of"
)
_REPLACE = _cue(r"(?:i\s|i\sactually\s)?(?:meant|mean)(?:\sto\ssay)?")
_RETRACT = _cue(
    r"(?:actually|oops|sorry|wait|no wait|correction|scratch that|i mean|i meant)\s(?:,\s)?"
    r"(?:not|no)|(?:i\s)?(?:didn t|did not|don t|do not) mean|scratch|forget about|forget"
)
_COORD = re.compile(r"@[top]\s(?:,\s)?(?:(?:and|or|&|nor|plus|as well as)\s)?" + _FILLER + "$")
_POST_LIKE = re.compile(
    r"^(?:(?:for sure|definitely|really|also|too|honestly|still)\s)?"
    r"(?:was|is|s|were|are|its|it s)\s(?:so\s|really\s|just\s|pretty\s|absolutely\s|such\s|"
    r"truly\s|still\s)?(?:one of\s)?(?:a\s|an\s|the\s)?(?:great|amazing|awesome|good|brilliant|"
    r"fantastic|excellent|incredible|perfect|wonderful|fun|superb|masterpiece|classic|gold|"
    r"the best|(?:my|our) (?:all time )?favou?rites?|favou?rites?)\b"
    r"|^(?:and\s)?(?:i\s)?(?:really\s|also\s|did\s|totally\s)*(?:liked|loved|enjoyed|like|love)\s"
    r"(?:it|the movie|the film|that|that one)\b"
)
_POST_DISLIKE = re.compile(
    r"^(?:(?:was|is|s|were|are)\s(?:so\s|really\s|just\s|pretty\s|such\s)?(?:a\s|an\s)?"
    r"(?:terrible|awful|bad|boring|horrible|overrated|dull|meh|the worst|trash|garbage|lame|"
    r"disappointing|a letdown|crap|too (?:@g|scary|long|slow|boring|violent|sad|cheesy|dark|gory))|"
    r"sucked|sucks|stank|stinks)\b"
)
_NEG_GENRE = re.compile(
    r"(?:^|\s)(?:no|not|nothing|without|except|hate|hated|dislike|disliked|avoid|skip|never|"
    r"anything but|other than|excluding|exclude|minus|don t (?:like|want|need|care for)|"
    r"do not (?:like|want|need)|(?:can t|cannot) stand|sick of|tired of|no more|not into|"
    r"instead of|rather than)\s(?:(?!but\s)[^\s,.]+\s){0,4}$"
)
_NOTHING_BUT = re.compile(r"(?:^|\s)(?:nothing but|why not)\s(?:[^\s,.]+\s){0,3}$")
_LESS_GENRE = re.compile(r"(?:^|\s)(?:less|fewer)\s$")
_PREFER_GENRE = re.compile(
    r"(?:^|\s)(?:more|extra|bit more|even more|lot more)\s(?:of\s)?(?:a\s|an\s)?$"
)
_START_OVER = re.compile(
    r"(?:^|\s)(?:start (?:over|again|afresh|from scratch)|reset|restart|new (?:conversation|chat|"
    r"session)|forget (?:everything|it all|all (?:of )?that|what i said)|clear (?:everything|"
    r"history|it all)|begin again|from scratch|let s start again)(?:\s|$)"
)
_WHY = re.compile(
    r"(?:^|\s)(?:why(?! not\b)|how come|what makes you (?:think|say|believe|pick|choose)|"
    r"what made you (?:think|say|pick|choose|suggest|recommend)|explain (?:why|that|this|it|the|"
    r"your|how)|what s the reason|what is the reason|reason (?:for|behind))(?:\s|$)"
)
_REQUEST_BEFORE_WHY = re.compile(
    r"(?:^|\s)(?:recommend|suggest|give me|show me|find me|list|pick|i want|i d like|"
    r"i would like|looking for|i need|can you (?:recommend|suggest|give|find|show))\s"
)
#: "which is the best one?", "which should I watch first?", "what's your favourite of these?"
_ASK_BEST = re.compile(
    r"(?:^|\s)(?:which|what)\s(?:one\s|ones\s|movie\s|film\s|of (?:these|those|them|the @\w)\s)?"
    r"(?:(?:is|s|are|would be|was|do you think is)\s(?:the\s|your\s)?(?:very\s)?"
    r"(?:best|better|greatest|top|favou?rite|most (?:popular|liked|loved|acclaimed)|"
    r"highest rated)|do you (?:recommend|suggest) "
    r"most)(?:\s|$)|(?:^|\s)(?:the\s)?best (?:one|of (?:these|those|them))(?:\s|$)|"
    r"(?:^|\s)which (?:one\s|of (?:these|those|them)\s)?should i (?:watch|see|pick|choose|start "
    r"with)(?:\s|$)"
)
#: "tell me more about the second", "what is it about?", "more info on Fargo".
_ASK_DETAILS = re.compile(
    r"(?:^|\s)(?:tell me (?:more\s|a bit\s|a little\s|something\s)?(?:more\s)?about|"
    r"^more about|"
    r"(?:more|some) (?:info|information|details) (?:on|about)|details (?:on|about|of)|"
    r"describe|what (?:is|s|was) @[top] about|what (?:is|s) (?:it|that|this) about|"
    r"who (?:is|s) in|who (?:directed|stars in|starred in|is the director of))(?:\s|$)"
)
#: "is it scary?", "is the second one funny?", "are any of them romantic?"
_ASK_GENRE = re.compile(
    r"^(?:so\s|and\s|but\s|ok\s|okay\s)?(?:is|are|was|were|isn t|aren t)\s"
    r"(?:(?!@g)[^\s.]+\s){0,5}@g(?:\s|$)"
)
_COUNT_LEAD = frozenset(
    {"top", "recommend", "suggest", "give", "show", "me", "list", "pick", "find"}
)
_COUNT_FOLLOW = MEDIA_NOUNS | {
    "@g",
    "more",
    "other",
    "picks",
    "recommendations",
    "suggestions",
    "titles",
    "options",
    "good",
    "great",
    "new",
    "different",
    "classic",
    "old",
    "recent",
}
#: Most items a person can ask for in one reply.
MAX_COUNT = 20
_NOT_WHY_BEFORE = re.compile(
    r"(?:^|\s)(?:know|see|understand|wonder|that s|that is|which is|is|matter|idea)\s$"
)


@dataclass
class _Collected:
    liked: list[str] = field(default_factory=list)
    disliked: list[str] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    anchors: list[str] = field(default_factory=list)
    retracted: list[str] = field(default_factory=list)
    replacements: list[str] = field(default_factory=list)

    def add(self, category: str, ids: Iterable[str]) -> None:
        getattr(self, category).extend(ids)


_CATEGORY_FIELD = {
    "like": "liked",
    "dislike": "disliked",
    "seen": "seen",
    "reject": "rejected",
    "anchor": "anchors",
    "retract": "retracted",
    "replace": "replacements",
}


def _alternatives(words: Sequence[Word], spans: Sequence[Span]) -> bool:
    """Whether "or" joins two of the spans ("Al Pacino or De Niro": any one will do)."""
    ordered = sorted(spans, key=lambda s: s.i)
    return any(
        any(w.norm in {"or", "either"} for w in words[left.j : right.i])
        for left, right in itertools.pairwise(ordered)
    )


class IntentParser:
    """Rule-based understanding of a chat turn (precedence: see this module's docstring).

    Building it indexes the catalog once (well under a second for ML-100K, about a second for
    ml-latest-small); :meth:`parse` then takes a few milliseconds and never raises on any text.

    Args:
        dataset: The catalog.
        popularity: One value per item index, to pick between remakes (default: interaction
            counts). See :class:`CatalogMatcher`.
        matcher: An already built matcher to reuse (the graph may share one).
        router: A :class:`~recagents.graph.understand.router.SemanticRouter` that decides the
            action when it is confident (the rules decide otherwise); None: rules only.
    """

    #: Actions the semantic router may decide. The rest stay with the rules: empty and other
    #: languages are read exactly, and "start over" wipes the thread, so only its explicit
    #: words may trigger it ("Ignore previous instructions..." sits close to "forget
    #: everything" in embedding space, and must not erase a conversation).
    ROUTED = frozenset({"recommend", "why", "about", "smalltalk"})

    def __init__(
        self,
        dataset: Dataset,
        popularity: Sequence[float] | None = None,
        *,
        matcher: CatalogMatcher | None = None,
        router: SemanticRouter | None = None,
    ) -> None:
        self.matcher = matcher or CatalogMatcher(dataset, popularity)
        self.router = router
        self.genres = GenreLexicon(dataset)
        self.people = PeopleLexicon(dataset)

    def from_llm(
        self, payload: LLMTurn | Mapping[str, Any], shown: Sequence[str] = (), text: str = ""
    ) -> TurnIntent:
        """:func:`intent_from_llm` with this parser's matcher and lexicons."""
        return intent_from_llm(payload, self.matcher, self.genres, self.people, shown, text=text)

    def parse(
        self, message: str, shown: Sequence[str] = (), *, force: str | None = None
    ) -> TurnIntent:
        """Understand one chat turn: the semantic router's action when it is sure, else the rules'.

        The rules always run first. Where they hold explicit evidence they stand
        (:func:`_rules_are_sure`: an empty or foreign message, "start over", a why or about
        cue, or an opinion or constraint such as "I loved Film 2", which the router alone once
        read as "describe the second film"). Otherwise, when a router is set and confidently
        names another action, the message is read again for that action, so its fields (why
        target, asked genres...) are filled as that action needs. See :meth:`parse_rules`.
        """
        intent = self.parse_rules(message, shown, force=force)
        if force is not None or self.router is None or _rules_are_sure(intent):
            return intent
        try:
            choice = self.router.route(intent.text)
        except Exception:  # an encoder failure must never cost a turn: the rules stand
            logger.exception("semantic routing failed; the rules decide")
            return intent
        if choice is None or not choice.confident or choice.label == intent.action:
            return intent
        if choice.label not in self.ROUTED:
            return intent
        return self.parse_rules(message, shown, force=choice.label)

    def parse_rules(
        self, message: str, shown: Sequence[str] = (), *, force: str | None = None
    ) -> TurnIntent:
        """Understand one chat turn with the rules only.

        Steps: clean and tokenize the message; recognise its units (titles, people, genres,
        references to shown items); read the years around them; a why question stops there (it
        must not re-rank); otherwise classify references by their cues, sort genres by polarity,
        collect people and unknown titles, and decide the action by the precedence in
        :mod:`recagents.graph.understand.rules`.

        Args:
            message: What the person typed (any text: it is never executed or trusted).
            shown: Item ids shown in the previous reply, in order, for "the second one", "it".
            force: An action decided elsewhere (the semantic router): the fields are read as
                for that action, whatever the cue words say. ``None``: the rules decide.

        Returns:
            The turn's intent, ``source="parser"``; item id lists are de-duplicated in order.
            ``text`` is the trimmed message, with lone surrogates replaced by ``?`` so the
            intent stays storable as UTF-8 JSON.
        """
        if not isinstance(message, str):
            message = "" if message is None else str(message)
        # Lone surrogates (bytes decoded with surrogateescape) would break JSON/UTF-8 storage.
        full = message.strip().encode("utf-8", "replace").decode("utf-8")
        text = clean(full[:MAX_SCAN_CHARS])
        if not any(ch.isalnum() for ch in text):
            return TurnIntent(action="empty", text=full)
        words = tokenize(text)
        joined = " ".join(w.norm for w in words)
        if force is None or force == "other_language":
            language = detect_foreign([w.norm for w in words], text)
            if language is not None or force == "other_language":
                return TurnIntent(action="other_language", language=language or "", text=full)
        start_over = (bool(_START_OVER.search(joined)) and force is None) or force == "start_over"
        shown = [] if start_over else [str(s) for s in shown]

        units, genre_spans, unknown = self._recognise(text, words, shown)
        tokens, positions = _unit_tokens(words, units)
        intent = TurnIntent(text=full)
        blanked = _blank(text, [s for s in units if s.kind in {"title", "person"}])
        intent.year_from, intent.year_to = parse_years(blanked)

        why = _WHY.search(joined)
        is_why = bool(
            why
            and not _NOT_WHY_BEFORE.search(joined[: why.start() + 1])
            and not _REQUEST_BEFORE_WHY.search(joined[: why.start() + 1])
        )
        if (force is None and is_why and not start_over) or force == "why":
            intent.action = "why"
            at = why.start() if why else 0
            intent.why_target = self._why_target(units, words, at, joined, shown)
            intent.year_from = intent.year_to = None
            return intent
        question = _question(tokens, self.genres, genre_spans)
        if (force is None and question and not start_over) or force == "about":
            intent.action = "about"
            intent.question = question or _guess_question(tokens)
            intent.about = self._about_targets(units, tokens, shown)
            self._genres(genre_spans, tokens, positions, intent)
            intent.genres_exclude = intent.genres_prefer = []
            intent.year_from = intent.year_to = None
            return intent

        self._references(units, tokens, positions, shown, intent)
        self._genres(genre_spans, tokens, positions, intent)
        people = [s for s in units if s.kind == "person" and not _negated(tokens, positions[id(s)])]
        intent.people = unique(s.value for s in people)
        intent.people_any = len(intent.people) > 1 and _alternatives(words, people)
        intent.unknown_titles = unique(unknown)
        intent.suggestions = {
            title: [item for item, _, _ in self.matcher.closest(title, 3)]
            for title in intent.unknown_titles
        }
        intent.count = _count(tokens)
        self._decide_action(intent, text, words, shown, start_over=start_over)
        if force in ("smalltalk", "recommend") and intent.action != "start_over":
            if force == "smalltalk" and not intent.has_signal and not intent.unknown_titles:
                intent.action = "smalltalk"
            elif force == "recommend" and intent.action == "smalltalk":
                intent.action = "recommend"
        return intent

    # ---------------------------------------------------------------- rule pieces

    def _recognise(
        self, text: str, words: Sequence[Word], shown: Sequence[str]
    ) -> tuple[list[Span], list[Span], list[str]]:
        """Every unit of the message in order, its genre spans, and the unknown titles.

        Titles and people come first (overlaps resolved: the longest, best match wins), then
        capitalised spans after a strong cue, then genres and references among the words left
        over, so that a word belongs to one unit at most.
        """
        chosen, unknown = self._titles_and_people(text, words, shown)
        covered = {k for s in chosen for k in range(s.i, s.j)}
        for span in self._cued_capitals(text, words, covered, shown):
            if span.kind == "quoted":
                unknown.append(span.value)
            else:
                chosen.append(span)
            covered.update(range(span.i, span.j))
        genre_spans = self.genres.spans(words, covered)
        covered.update(k for s in genre_spans for k in range(s.i, s.j))
        refs = ref_spans(words, covered)
        units = sorted(chosen + genre_spans + refs, key=lambda s: s.i)
        return units, genre_spans, unknown

    def _titles_and_people(
        self, text: str, words: Sequence[Word], shown: Sequence[str]
    ) -> tuple[list[Span], list[str]]:
        """Title and person spans without overlaps, and the quoted titles the catalog lacks.

        A quoted full name ("anything with 'Tom Hanks'") is a person, not an unknown title.
        """
        spans = self.matcher._spans(text, words, shown)
        spans += self.people.spans(words)
        chosen = resolve_overlaps(spans)
        unknown: list[str] = []
        for index, span in enumerate(chosen):
            if span.kind != "quoted":
                continue
            person = self.people.lookup(span.value) if " " in span.value.strip() else None
            if person:
                chosen[index] = Span(span.i, span.j, "person", person, 100.0, span.start, span.end)
            else:
                unknown.append(span.value)
        return [s for s in chosen if s.kind != "quoted"], unknown

    def _references(
        self,
        units: Sequence[Span],
        tokens: Sequence[str],
        positions: Mapping[int, int],
        shown: Sequence[str],
        intent: TurnIntent,
    ) -> None:
        """Fill liked / disliked / seen / rejected / anchors from the references and their cues.

        A bare "seen it already" with no reference after it marks the first shown item seen.
        """
        collected = _Collected()
        self._classify(units, tokens, positions, shown, collected)
        if shown and not collected.seen and _mentions_seen(tokens):
            collected.seen.append(shown[0])
        if collected.replacements:  # "not Toy Story, I meant Babe": the "not" takes it back
            collected.retracted.extend(collected.rejected)
            collected.rejected = []
        for name in (
            "liked",
            "disliked",
            "seen",
            "rejected",
            "anchors",
            "retracted",
            "replacements",
        ):
            setattr(intent, name, unique(getattr(collected, name)))

    def _decide_action(
        self,
        intent: TurnIntent,
        text: str,
        words: Sequence[Word],
        shown: Sequence[str],
        *,
        start_over: bool,
    ) -> None:
        """Set the action by precedence once every field is filled (``why`` is decided earlier).

        A short message with no signal and no smalltalk may be a whole (mistyped) title
        ("godfater", "the usual suspect"): it becomes the anchor, the action stays ``recommend``.
        """
        if start_over:
            intent.action = "start_over"
        elif intent.has_signal or intent.unknown_titles:
            intent.action = "recommend"
        elif _is_smalltalk(words):
            intent.action = "smalltalk"
        elif len(words) <= 8:
            found = self.matcher._find(text, shown, cutoff=90.0)
            if found:
                intent.anchors = [self.matcher._ids[found[0]]]

    def _cued_capitals(
        self, text: str, words: Sequence[Word], covered: set[int], shown: Sequence[str]
    ) -> list[Span]:
        """Capitalised spans right after a strong cue, such as "I loved Zorblax Returns".

        Each is a title if the catalog has it (typos allowed), a person if it is a full name, else
        an unknown title (``kind="quoted"``).
        """
        found: list[Span] = []
        n_words = len(words)
        i = 1
        while i < n_words:
            word = words[i]
            if (
                i in covered
                or not word.cap
                or word.sent_start
                or is_break(word)
                or words[i - 1].norm not in UNKNOWN_CUES
                or (word.norm in STOPWORDS and word.norm not in EN_ARTICLES)
            ):
                i += 1
                continue
            j = i + 1
            while j < n_words and j - i < 8 and j not in covered and not is_break(words[j]):
                nxt = words[j]
                if nxt.cap or nxt.norm.isdigit():
                    j += 1
                elif (
                    nxt.norm in CONNECTORS
                    and j + 1 < n_words
                    and words[j + 1].cap
                    and j + 1 not in covered
                    and not is_break(words[j + 1])
                ):
                    j += 2
                else:
                    break
            body = [w.norm for w in words[i:j]]
            if body[0] in EN_ARTICLES and len(body) == 1:
                i = j
                continue
            if len(body) == 1 and (body[0] in COMMON_WORDS or self.people.is_first_name(body[0])):
                i = j
                continue
            if all(t in COMMON_WORDS for t in body) or norm_key(" ".join(body)) in (
                self.matcher._blocked
            ):
                i = j
                continue
            raw = text[words[i].start : words[j - 1].end]
            start, end = words[i].start, words[j - 1].end
            hit = self.matcher._find(raw, shown)
            person = self.people.lookup(raw)
            if hit:
                idx, score = hit
                found.append(Span(i, j, "title", self.matcher._ids[idx], score, start, end))
            elif person and " " in norm_key(raw):
                found.append(Span(i, j, "person", person, 100.0, start, end))
            else:
                found.append(Span(i, j, "quoted", raw, 100.0, start, end))
            i = j
        return found

    def _why_target(
        self,
        units: Sequence[Span],
        words: Sequence[Word],
        why_at: int,
        joined: str,
        shown: Sequence[str],
    ) -> str | None:
        """The item a why question is about: first reference after the cue, else the first."""
        char_at = _word_index_at(joined, why_at)
        refs = [s for s in units if s.kind in {"title", "ordinal", "pronoun"}]
        ordered = [s for s in refs if s.i >= char_at] + [s for s in refs if s.i < char_at]
        for span in ordered:
            ids = self._ref_ids(span, units, shown)
            if ids:
                return ids[0]
        return None

    def _about_targets(
        self, units: Sequence[Span], tokens: Sequence[str], shown: Sequence[str]
    ) -> list[str]:
        """The shown items an ``about`` question names; empty means the whole shown list.

        "it" / "that" with nothing else named is the first shown item (as for "why"); "them",
        "these", "any of them" are the whole list.
        """
        targets: list[str] = []
        for span in units:
            if span.kind not in {"title", "ordinal", "pronoun"}:
                continue
            if span.kind == "pronoun" and span.value in {"all", "both"}:
                continue
            targets.extend(self._ref_ids(span, units, shown))
        return unique(targets)

    def _ref_ids(self, span: Span, units: Sequence[Span], shown: Sequence[str]) -> list[str]:
        """Item ids a reference unit points at (pronouns: an earlier title, else ``shown``)."""
        if span.kind == "title":
            return [span.value]
        if span.kind == "ordinal":
            item = shown_index(int(span.value), shown)
            return [item] if item else []
        if span.value == "all":
            return list(shown)
        if span.value == "both":
            return list(shown[:2])
        earlier = [s for s in units if s.kind == "title" and s.j <= span.i]
        if earlier:  # "I loved Fargo, more like it please": "it" is Fargo
            return [earlier[-1].value]
        return [shown[0]] if shown else []

    def _classify(
        self,
        units: Sequence[Span],
        tokens: Sequence[str],
        positions: Mapping[int, int],
        shown: Sequence[str],
        out: _Collected,
    ) -> None:
        """Sort every reference into liked / disliked / seen / rejected / anchors by its cues."""
        previous: str | None = None
        for span in units:
            if span.kind not in {"title", "ordinal", "pronoun"}:
                continue
            pos = positions[id(span)]
            left = _left_context(tokens, pos)
            category = _left_category(left)
            if category is None:
                category = _right_category(tokens, pos)
            elif category == "seen" and _right_category(tokens, pos) == "like":
                out.add("seen", self._ref_ids(span, units, shown))  # "saw X and loved it"
                category = "like"
            if category is None and previous and _COORD.search(left):
                category = previous
            if category == "none":
                previous = None
                continue
            if category is None:
                category = "anchor" if span.kind != "pronoun" else None
            ids = self._ref_ids(span, units, shown)
            if category is not None and ids:
                out.add(_CATEGORY_FIELD[category], ids)
            previous = category

    def _genres(
        self,
        spans: Sequence[Span],
        tokens: Sequence[str],
        positions: Mapping[int, int],
        intent: TurnIntent,
    ) -> None:
        """Genre polarity: negated -> exclude, comparative / "more X" -> prefer, else include.

        "less X" is ignored (no field says "a bit less"); an excluded genre is removed from
        include and prefer, so "no horror... horror movies" never asks for both.
        """
        include: list[str] = []
        prefer: list[str] = []
        exclude: list[str] = []
        for span in spans:
            pos = positions[id(span)]
            left = _left_context(tokens, pos)
            if _LESS_GENRE.search(left):
                continue
            if _NEG_GENRE.search(left) and not _NOTHING_BUT.search(left):
                exclude.extend(span.extra)
            elif span.value == "comparative" or _PREFER_GENRE.search(left):
                prefer.extend(span.extra)
            else:
                include.extend(span.extra)
        excluded = set(exclude)
        intent.genres_exclude = unique(exclude)
        intent.genres_include = unique(g for g in include if g not in excluded)
        intent.genres_prefer = unique(
            g for g in prefer if g not in excluded and g not in intent.genres_include
        )


def _unit_tokens(words: Sequence[Word], units: Sequence[Span]) -> tuple[list[str], dict[int, int]]:
    """The message as cue-matching tokens, and each unit's token position.

    Tokens are words, ``@x`` placeholders for recognised spans, ``.`` for a sentence break and
    ``,`` for a soft break, so cue patterns read like the sentence they match.
    """
    placeholder = {"title": "@t", "person": "@n", "genre": "@g", "ordinal": "@o", "pronoun": "@p"}
    starts = {s.i: s for s in units}
    tokens: list[str] = []
    positions: dict[int, int] = {}
    i = 0
    while i < len(words):
        word = words[i]
        if i and is_break(word, soft=False):
            tokens.append(".")
        elif i and is_break(word):
            tokens.append(",")
        span = starts.get(i)
        if span is not None:
            positions[id(span)] = len(tokens)
            tokens.append(placeholder[span.kind])
            i = span.j
            continue
        tokens.append(word.norm)
        i += 1
    return tokens, positions


def _left_context(tokens: Sequence[str], pos: int) -> str:
    """Up to 10 tokens before ``pos`` within the same sentence, space-joined.

    A trailing space is added so every cue pattern can end in whitespace.
    """
    window = list(tokens[max(0, pos - 10) : pos])
    if "." in window:
        window = window[len(window) - window[::-1].index(".") :]
    return " ".join(window) + " " if window else ""


def _left_category(left: str) -> str | None:
    """Category given by the cue right before a reference.

    ``none`` means "explicitly nothing" ("I haven't seen it"); a question "have you seen X?" is a
    plain anchor, not a claim to have seen it.
    """
    if not left:
        return None
    if _REPLACE.search(left):
        return "replace"
    if _RETRACT.search(left):
        return "retract"
    if _NOT_SEEN.search(left):
        return "none"
    if _ASKED_SEEN.search(left):
        return "anchor"
    if _DISLIKE.search(left):
        return "dislike"
    if _REJECT.search(left):
        return "reject"
    if _SEEN.search(left):
        return "seen"
    if _LIKE.search(left):
        return "like"
    if _ANCHOR.search(left):
        return "anchor"
    return None


def _right_category(tokens: Sequence[str], pos: int) -> str | None:
    """A verdict right after a reference: "Heat was great" / "the second one was boring"."""
    window = []
    for tok in tokens[pos + 1 : pos + 6]:
        if tok in {".", ","}:
            break
        window.append(tok)
    right = " ".join(window)
    if _POST_LIKE.search(right):
        return "like"
    if _POST_DISLIKE.search(right):
        return "dislike"
    return None


def _negated(tokens: Sequence[str], pos: int) -> bool:
    left = _left_context(tokens, pos)
    return bool(_NEG_GENRE.search(left)) and not _NOTHING_BUT.search(left)


def _mentions_seen(tokens: Sequence[str]) -> bool:
    """Whether "already seen" / "seen" stands with no reference after it (the first shown item)."""
    for pos, tok in enumerate(tokens):
        if tok not in {"seen", "watched", "saw"}:
            continue
        left = _left_context(tokens, pos)
        if _NOT_SEEN.search(left + tok + " ") or _ASKED_SEEN.search(left + tok + " "):
            continue
        after = tokens[pos + 1 : pos + 3]
        if not after or after[0] in {".", ","} or after[0] in AFTER_BARE_SEEN:
            return True
    return False


def _is_smalltalk(words: Sequence[Word]) -> bool:
    norms = {w.norm for w in words}
    return bool(norms) and norms <= SMALLTALK and bool(norms & SMALLTALK_CORE)


def _blank(text: str, spans: Sequence[Span]) -> str:
    """``text`` with the given spans replaced by spaces (years inside titles are not asked)."""
    if not spans:
        return text
    chars = list(text)
    for span in spans:
        for k in range(span.start, min(span.end, len(chars))):
            chars[k] = " "
    return "".join(chars)


def _word_index_at(joined: str, char_at: int) -> int:
    """Index of the word starting at or after ``char_at`` of the space-joined normalised words."""
    return joined[: max(0, char_at)].count(" ") + (1 if char_at > 0 else 0)


def _rules_are_sure(intent: TurnIntent) -> bool:
    """Whether the rules' reading rests on explicit words the router must not overturn.

    Sure: empty, other language, start over (explicit words only: it wipes the thread), a
    why or about question (their cue patterns matched), smalltalk (only greeting words), and a
    request that states an opinion or a constraint, or names a title the catalog lacks. Not
    sure: a request with nothing but
    anchors or nothing at all ("how long is the last one?", "thanks for the suggestions!"),
    where the rules merely fell through to their default.
    """
    if intent.action != "recommend":
        return True
    return bool(
        intent.liked
        or intent.disliked
        or intent.seen
        or intent.rejected
        or intent.retracted
        or intent.replacements
        or intent.genres_include
        or intent.genres_prefer
        or intent.genres_exclude
        or intent.year_from is not None
        or intent.year_to is not None
        or intent.people
        or intent.count
        or intent.unknown_titles  # "what is The Matrix about?": say we lack it, not guess
    )


def _question(tokens: Sequence[str], genres: GenreLexicon, genre_spans: Sequence[Span]) -> str:
    """What an ``about`` turn asks ("best", "details", "genre"), or "" for no such question."""
    sentence = " ".join(t for t in tokens if t != ",")
    if _ASK_BEST.search(sentence):
        return "best"
    if _ASK_DETAILS.search(sentence) and any(t in {"@t", "@o", "@p"} for t in tokens):
        return "details"
    if genre_spans and _ASK_GENRE.search(sentence):
        return "genre"
    return ""


def _guess_question(tokens: Sequence[str]) -> str:
    """For a question the router called ``about`` with no rule cue: a genre asked, else details."""
    if "@g" in tokens:
        return "genre"
    if {"best", "better", "favourite", "favorite", "top", "greatest", "which"} & set(tokens):
        return "best"  # "which would you pick?" asks to choose among them
    return "details"


def _count(tokens: Sequence[str]) -> int | None:
    """How many items a turn asks for: "three movies", "top 5", "give me 3", else None.

    A number counts when a media noun, a genre or "more" follows it, or a request word ("top",
    "give me", "recommend") precedes it; "one" needs a noun after it ("one more" is not a count).
    """
    for pos, tok in enumerate(tokens):
        if tok in NUMBER_WORDS:
            value = NUMBER_WORDS[tok] + 1
        elif tok.isdigit() and len(tok) <= 2:
            value = int(tok)
        else:
            continue
        if not 1 <= value <= MAX_COUNT:
            continue
        after = tokens[pos + 1 : pos + 3]
        follows = bool(after) and (
            after[0] in _COUNT_FOLLOW or (len(after) > 1 and after[1] in MEDIA_NOUNS | {"@g"})
        )
        leads = pos > 0 and tokens[pos - 1] in _COUNT_LEAD
        if follows and (value > 1 or (after and after[0] != "more")):
            return value
        if leads and value > 1:
            return value
    return None
