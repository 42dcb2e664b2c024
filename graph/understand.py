"""Deterministic understanding of one chat turn, with no LLM.

A person types "something like Heat but funnier" or "not that one, seen the second"; this module
turns that into a :class:`~recagents.graph.intent.TurnIntent` whose item references are catalog ids.
Everything here is built from the dataset itself (titles, genres, people), so it works for any
catalog, and it never calls a model: it is the path that always works, and the fallback when a
chat model's structured output is missing or invalid (:func:`intent_from_llm`).

Pieces:

- :class:`CatalogMatcher`: titles typed by a person -> item ids (exact, article-, accent- and
  typo-tolerant), titles mentioned inside free text, and "did you mean" suggestions.
- :class:`GenreLexicon` and :class:`PeopleLexicon`: genre words and synonyms, people's names.
- :func:`parse_years`: "from the 90s", "newer than 2000", "between 1980 and 1990".
- :class:`IntentParser`: the rules that combine them into a :class:`TurnIntent`.
- :class:`LLMTurn` / :func:`intent_schema` / :func:`intent_from_llm`: the structured-output schema
  for a chat model and its mapping onto catalog ids through the same matcher and lexicons.

Precedence of :meth:`IntentParser.parse` (first that applies decides the action):

1. ``empty``: blank, or no letter or digit at all.
2. ``start_over``: "start over", "reset", "restart", "new conversation", "forget everything"...
   The rest of the message is still parsed (minus references to shown items, which the reset
   makes meaningless), so "start over, comedies from the 90s" keeps its genres and years.
3. ``why``: "why did you pick that?", "why the second one", "how come", "what makes you think".
   Only ``why_target`` is filled (an ordinal, a pronoun or a title; ``None`` when the question
   names nothing, which the intent defines as the first shown item): a why question must not
   re-rank.
4. ``recommend``: the message carries any signal (items, genres, years, people, unknown titles).
5. ``smalltalk``: only greeting / thanks words ("hi", "thanks!", "hello there").
6. ``recommend`` with no signal: anything else (other languages, gibberish, "show me something").

Inside a message, references are classified by the cue right before them (negative cues first:
dislike > reject > seen > like > similar), then by a cue right after ("X was great"), then by
coordination with the previous reference ("I loved Fargo and Heat"); a title with no cue is an
anchor, an ordinal with no cue is an anchor, a pronoun with no cue is ignored.

Work is capped so that any message is handled in milliseconds: only the first
:data:`MAX_SCAN_CHARS` characters are read, n-grams are at most :data:`MAX_NGRAM` words and at most
:data:`MAX_FUZZY_QUERIES` fuzzy look-ups run per message.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
import unicodedata
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)
from rapidfuzz import fuzz, process

from recagents.data.titles import move_article, strip_accents, title_variants
from recagents.errors import DataError
from recagents.graph.intent import Action, TurnIntent

if TYPE_CHECKING:
    from recagents.data import Dataset

logger = logging.getLogger(__name__)

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
    "intent_from_llm",
    "intent_schema",
    "parse_years",
]

#: Only this many leading characters of a message are read: a chat turn that matters fits, and
#: a pasted 20,000-character wall (or an attack) costs the same as a normal turn.
MAX_SCAN_CHARS = 2000
#: Longest title or name, in words, looked up as one n-gram.
MAX_NGRAM = 12
#: Fuzzy title look-ups per message (each is one rapidfuzz scan over titles of similar length).
MAX_FUZZY_QUERIES = 300
#: Minimum rapidfuzz ratio for a fuzzy multi-word title inside free text.
FUZZY_SPAN_SCORE = 88.0
#: Minimum rapidfuzz ratio for :meth:`CatalogMatcher.find` (a whole string typed as a title).
FIND_SCORE = 85.0

# --------------------------------------------------------------------------------------------
# Word lists. Hand-written because no dictionary ships with the project; they only have to be
# good enough to tell "heat" (an everyday word) from "fargo" (a title-looking word).

_STOPWORDS = frozenset(
    """
    a about above after again against all also am an and any are as at be because been before
    being below between both but by can cannot could d did do does doing don down during each
    either else ever few for from further get gets go goes going got had has have having he her
    here hers herself him himself his how i if in into is it its itself just ll m me might more
    most must my myself no nor not now of off on once one only or other our ours ourselves out
    over own re s same she should so some such t than that the their theirs them themselves then
    there these they this those through to too under until up upon us ve very was we were what
    when where which while who whom whose why will with would yet you your yours yourself
    yourselves ok okay oh yes yeah yep please pls thanks thank hi hello hey
    """.split()
)

_COMMON_WORDS = _STOPWORDS | frozenset(
    """
    able absolute accept accident across act action actor actors actress actually add addiction
    admit adore adored adult adults advice afraid afternoon age agent ago agree ahead air alive
    almost alone along already alright always amateur amazing american among amount angel angry
    animal animals another answer anybody anymore anyone anything anyway anywhere apart apartment
    apparently area arm army around arrival art article artist ask asked asleep assassins
    assignment associate attack attention august aunt autumn average avoid awake award away awful
    baby babe back bad badly bag ball band bank bar base basic basically bay beach bear beat
    beautiful beauty became become bed beginning behind believe believers bell belong below bent
    beside best better beyond big bigger bill bird birds birthday bit bitter black blade blind
    blink bliss block blood blow blue board boat body bogus bone book books border bored boring
    born boss bother bottle bottom bought bound box boy boys brain brave bread break breakdown
    breakfast bridge brief bright brilliant bring broke broken brother brothers brought brown
    buddy build building bulletproof bunch burn business busy buy call called calm came camera
    camp candidate capital captain captives car card care careful carry case cash casino cast cat
    catch caught cause ceiling center central century certain certainly chain chair chamber
    chance change changed character characters charge chase chasers cheap check child children
    choice choose chose church circle citizen city claim class classic clean clear clearly client
    climb clock close closed clothes club coast coat code coffee cold collection college color
    colour come comes coming commandments common company complete completely concept condition
    contact contempt continue control convent cook cool cop copy corner correct cost couch count
    country couple courage course court courtyard cousin cover craft crash crazy create crew crime
    cross crow crowd cry cup cure current cut cute dad daily damn dance dancing danger dangerous
    dark date daughter day days daylight dead deal dear death decent decide decided deep
    definitely degree deliver depend describe desert design detail detective devil diamond die
    died different difficult dinner direct direction directly director dirty discover distance
    diva doctor dog dogs dollar done door doors double doubt dream dreams dress drink drive driver
    drop drug drugs drunk drunks dry due dumb dust duty early earn earth easily east easy eat edge
    effect effort eight eighteen either election else empty end ended ending enemy energy enjoy
    enjoyed enough enter entire entirely episode equal eraser escape especially even evening event
    events eventually every everybody everyone everything everywhere evil exact exactly example
    excellent except exciting excuse expect expensive experience explain extra extreme eye eyes
    face faces fact fair faithful fall fallen false familiar family famous fan fans fantastic far
    farm fast fat father fault favor favorite favourite fear fearless feel feeling feelings fell
    felt few field fifteen fifth fight fighting figure fill film films final finally find fine
    finger finish fire firm first fish five fix flat flight flirt floor fly focus fog folks follow
    food fool foot force forest forever forget forgot form forward four fourth free freeway fresh
    friday friend friends front full fun funeral funny future game games garden gas gave general
    get getaway ghost giant gift girl girls give given glad glass glory god gold golden gone good
    got grab graduate grand grass gray great greatest green grew ground group grow guard guess
    guest guilty gun guns guy guys hair half hall hand hands hang happen happened happens happy
    hard hardly hate hated hates head heal health hear heard heart heat heaven heavy hell help
    hero hidden hide hideaway high hill himself hire history hit hold hole holiday home honest
    hope horrible horse hospital host hot hotel hour hours house huge human hundred hungry hunt
    hunted hunter hurt hush husband ice idea ill image imagine important impossible including
    indeed innocent innocents inside instead interest interested interesting invitation island
    issue jack jade jail jaws job join joke judge jump jungle junior jury justice keep kept key
    kick kid kids kill killed killer killing kind king kiss kissed kitchen knew knife know known
    lady lake land language large last late later laugh law lay lead learn least leave led left
    leg legend less lesson let letter level liar lie lies life light like liked likely line lines
    lion list listen little live lived lives living loaded local lock long look looked looking
    looks lose losing loss lost lot lots loud love loved lovely lover low luck lucky lunch mad
    made magic mail main major make makes making man manage many map mark market marriage married
    mask master match matchmaker matter may maybe mean meaning means meant meet meeting member
    memory men mention mercy mess message met middle might mighty mile military milk million mind
    mine minute minutes mirror miss missing mission mistake mom moment money monster month months
    mood moon morning mother mountain mouth move moved movie movies moving much murder music must
    mystery name named nation natural nature near nearly necessary neck need needed needs neither
    nervous net never new news next nice night nights nine nobody noise none normal north nose
    note nothing notice novel number nurse ocean odd offer office officer often old older open
    opinion orange order ordinary original others otherwise outside overall owner page pain paint
    pair panther paper parent parents park part partner party pass passed past path pay peace
    people perfect perhaps period person personal pest phone photo pick picked picture piece pink
    place plan plane planet plant play played player playing plays pleasure plenty plot pocket
    point police pool poor popular position possible post power powder present president pretty
    price priest prince princess prison private probably problem professional program promise
    proper protect proud prove public pull pure purple push put queen quest question quick quickly
    quiet quite race radio rain raise ran rather reach read ready real reality really reason
    receive recent recently recommend red relax remember remind rent report rest restoration
    return rich ride right ring rip ripe rise risk river road rock role roll room rose round rule
    run running sad safe said saint sale same save saw say saying scared scary scene scenes school
    score scout scream screen sea season seat second secret secrets see seem seemed seems seen
    sell send sense senseless serious seriously seven seventh several shadow shadows shake shall
    shape share sharp shine shining ship shirt shoe shoes shoot shooter shop shopping short shot
    show showed shows shut sick side sign silent silly simple simply since sing single sir sister
    sit six sixth size skin sky sleep sleeper sleepers slow small smart smell smile smoke snow
    soft soldier solo somebody someday somehow someone something sometimes somewhere son song
    soon sorry sort soul sound sounds south space speak special specialist species speech speed
    spend spent spirit spot spring spy square squeeze staff stage stand star stars start started
    state station stay steal steel step stick still stole stolen stomach stone stop store stories
    storm story straight strange stranger street strong student stuff stupid style subject
    substitute success sudden suddenly sugar suit summer sun sunday super suppose supposed sure
    surprise sweet swim system table take taken takes taking talk talking tall target taste taught
    tea teach teacher team tear tell ten terrible test thanks thin thing things think thinking
    third thirty though thought thousand three threw throw ticket tie tight till time times tiny
    tired title today together told tomorrow tonight took top total totally touch tough toward
    town toy track trade train trash travel traveller treat tree trip trouble truck true truly
    trust truth try trying turn turned turning twelve twenty twice twisted two type ugly uncle
    under understand unit unless upset use used usual usually vacation van version view village
    visit visitors voice volcano wait waiting wake walk wall want wanted wants war warm wash
    watch watched watching water way ways weak wear weather wedding week weekend weird welcome
    well went west wet whatever wheel whenever whether white whole wide wife wild win wind window
    wine winter wish witness woman women wonder wonderful wood word words work worked working
    world worried worry worse worst worth wow write writer wrong wrote yard year years yellow
    yesterday young youth zero
    """.split()
)

#: Words before a span that make a common-word title ("something like Heat") plausible.
_TITLE_CUES = frozenset(
    "like loved liked love enjoyed enjoy adore adored seen watched saw hated hate disliked as "
    "about than watch rewatch rewatched".split()
)
_TITLE_CUE_BIGRAMS = frozenset(
    {
        ("similar", "to"),
        ("fan", "of"),
        ("vein", "of"),
        ("lines", "of"),
        ("me", "of"),
        ("likes", "of"),
        ("style", "of"),
        ("spirit", "of"),
    }
)
#: Strong cues after which a capitalised unknown span is taken as a title the person means.
_UNKNOWN_CUES = frozenset(
    "like loved liked love enjoyed enjoy adore adored seen watched saw hated hate disliked watch "
    "rewatch rewatched".split()
)
_PERSON_CUES = frozenset(
    "with starring featuring by director directed actor actress stars star feat ft".split()
)
_MEDIA_NOUNS = frozenset(
    "movie movies film films flick flicks ones stuff genre fans fan lovers cinema picture pictures "
    "show shows".split()
)
_EN_ARTICLES = frozenset({"the", "a", "an"})
_NAME_SUFFIXES = frozenset({"jr", "sr", "ii", "iii", "iv"})
_CONNECTORS = frozenset("of the and a an in on to for with at from vs".split())
_CLAUSE_BREAK = frozenset(".!?;\n…")
_SOFT_BREAK = frozenset(',:()[]—–"“”«»')

# --------------------------------------------------------------------------------------------
# Genres: English words and phrases -> candidate catalog names (the first that exists wins).

_COMEDY = ("Comedy",)
_HORROR = ("Horror",)
_SCIFI = ("Sci-Fi", "Science Fiction")
_ROMANCE = ("Romance",)
_ANIMATION = ("Animation",)
_CHILDREN = ("Children's", "Children")
_THRILLER = ("Thriller",)
_NOIR = ("Film-Noir", "Film Noir", "Noir")

_GENRE_SYNONYMS: dict[str, tuple[tuple[str, ...], ...]] = {
    **dict.fromkeys(
        ("comedy", "comedies", "funny", "hilarious", "humor", "humour", "humorous", "comedic"),
        (_COMEDY,),
    ),
    **dict.fromkeys(
        (
            "horror",
            "horrors",
            "scary",
            "spooky",
            "creepy",
            "frightening",
            "terrifying",
            "slasher",
            "slashers",
        ),
        (_HORROR,),
    ),
    **dict.fromkeys(("sci fi", "scifi", "science fiction", "space", "futuristic"), (_SCIFI,)),
    **dict.fromkeys(("romance", "romances", "romantic", "love story", "love stories"), (_ROMANCE,)),
    **dict.fromkeys(("rom com", "romcom", "rom coms", "romcoms"), (_ROMANCE, _COMEDY)),
    **dict.fromkeys(("animated", "animation", "cartoon", "cartoons", "anime"), (_ANIMATION,)),
    **dict.fromkeys(
        ("kids", "children", "childrens", "children s", "family", "family friendly"),
        (_CHILDREN,),
    ),
    **dict.fromkeys(
        ("thriller", "thrillers", "suspense", "suspenseful", "thrilling"), (_THRILLER,)
    ),
    **dict.fromkeys(("action", "action packed"), (("Action",),)),
    **dict.fromkeys(("adventure", "adventures", "adventurous"), (("Adventure",),)),
    **dict.fromkeys(("crime", "crimes", "gangster", "gangsters", "heist", "heists"), (("Crime",),)),
    **dict.fromkeys(("documentary", "documentaries"), (("Documentary",),)),
    **dict.fromkeys(("drama", "dramas", "dramatic"), (("Drama",),)),
    **dict.fromkeys(("fantasy", "fantasies"), (("Fantasy",),)),
    **dict.fromkeys(("noir", "noirs", "film noir", "film noirs"), (_NOIR,)),
    **dict.fromkeys(("musical", "musicals"), (("Musical",),)),
    **dict.fromkeys(
        ("mystery", "mysteries", "whodunit", "whodunits", "whodunnit"), (("Mystery",),)
    ),
    **dict.fromkeys(("war",), (("War",),)),
    **dict.fromkeys(("western", "westerns"), (("Western",),)),
    # Comparatives: "funnier" means "favour comedy", not "only comedy".
    **dict.fromkeys(("funnier", "funniest"), (_COMEDY,)),
    **dict.fromkeys(("scarier", "scariest", "spookier", "creepier"), (_HORROR,)),
}
_COMPARATIVES = frozenset({"funnier", "funniest", "scarier", "scariest", "spookier", "creepier"})
#: Genre names that are bookkeeping, not something a person asks for.
_IGNORED_GENRES = frozenset({"imax", "unknown", "no genres listed", ""})

# --------------------------------------------------------------------------------------------
# Cue patterns, matched on the normalised words before / after a reference. Placeholders:
# @t title, @n person, @g genre, @o ordinal, @p pronoun; "," a soft break.

_FILLER = (
    r"(?:(?:the|a|an|really|so|much|also|just|totally|absolutely|already|both|all|of|too|again|"
    r"actually|kinda|definitely|ever|even|still|honestly|quite|pretty|very|truly)\s)*"
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
    r"(?:i|we|really|also|totally|do|still|always|definitely|kinda|actually|genuinely) like"
)
_ANCHOR = _cue(
    r"like|similar to|similar|vein of|lines of|reminds me of|reminiscent of|such as|same as|"
    r"akin to|style of|likes of|spirit of|more|as|about|comparable to|close to|resembling|"
    r"more of"
)
_COORD = re.compile(r"@[top]\s(?:,\s)?(?:(?:and|or|&|nor|plus|as well as)\s)?" + _FILLER + "$")
_POST_LIKE = re.compile(
    r"^(?:was|is|s|were|are)\s(?:so\s|really\s|just\s|pretty\s|absolutely\s|such\s|truly\s)?"
    r"(?:a\s|an\s)?(?:great|amazing|awesome|good|brilliant|fantastic|excellent|incredible|perfect|"
    r"wonderful|fun|superb|masterpiece|classic|the best|my favou?rite|favou?rite)\b"
)
_POST_DISLIKE = re.compile(
    r"^(?:(?:was|is|s|were|are)\s(?:so\s|really\s|just\s|pretty\s|such\s)?(?:a\s|an\s)?"
    r"(?:terrible|awful|bad|boring|horrible|overrated|dull|meh|the worst|trash|garbage|lame|"
    r"disappointing|a letdown|crap)|sucked|sucks|stank|stinks)\b"
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
_NOT_WHY_BEFORE = re.compile(
    r"(?:^|\s)(?:know|see|understand|wonder|that s|that is|which is|is|matter|idea)\s$"
)

_SMALLTALK_CORE = frozenset(
    "hi hello hey hiya howdy yo greetings thanks thank thx ty cheers bye goodbye morning evening "
    "afternoon sup welcome ok okay cool great nice awesome perfect lol haha bonjour hola ciao "
    "merci gracias danke".split()
)
_SMALLTALK = _SMALLTALK_CORE | frozenset(
    "there you so much a lot very good again all everyone folks bot how are is it going doing "
    "what s up whats mate friend dear and for the help your that thats well oh ah i m fine hope "
    "day have many tons really appreciate it man guys buddy pal goodnight night see later soon "
    "to u".split()
)

# --------------------------------------------------------------------------------------------
# Small helpers

_ALNUM = re.compile(r"[0-9a-z]+")
_TOKEN = re.compile(r"[^\W_]+|&|\n|[^\w\s]")
_TRAILING_YEAR = re.compile(r"[\s,(\[]*((?:18|19|20)\d{2})\s*[)\]]?\s*$")
_YEAR_AFTER = re.compile(r"\s*(?:\(\s*|\[\s*|,\s*)?((?:18|19|20)\d{2})(?!\d)\s*[)\]]?")
_QUOTED = re.compile(
    r"\"([^\"\n]{1,120})\"|“([^”\n]{1,120})”|«([^»\n]{1,120})»|(?<!\w)'([^'\n]{1,120})'(?!\w)"
)
_ORDINAL_WORDS = {
    "first": 0,
    "second": 1,
    "third": 2,
    "fourth": 3,
    "fifth": 4,
    "sixth": 5,
    "seventh": 6,
    "eighth": 7,
    "ninth": 8,
    "tenth": 9,
    "top": 0,
    "last": -1,
    "latter": -1,
    "former": 0,
}
_NUMBER_WORDS = {
    "one": 0,
    "two": 1,
    "three": 2,
    "four": 3,
    "five": 4,
    "six": 5,
    "seven": 6,
    "eight": 7,
    "nine": 8,
    "ten": 9,
}
_NUMBERED = re.compile(r"^(\d{1,2})(?:st|nd|rd|th)?$")
_REF_NOUNS = frozenset(
    "one ones movie film pick option suggestion title recommendation choice flick".split()
)
_ORDINAL_FOLLOW_OK = frozenset(
    "and or but please pls though too either instead then is was looks sounds seems".split()
)
_PRONOUN_FOLLOW_OK = frozenset("and or but please pls though too either instead then".split())
_NUMBER_LEADS = frozenset({"number", "no", "option", "pick", "choice", "nr"})


def _fold(text: str) -> str:
    return strip_accents(text).lower()


def _norm_tokens(text: str) -> list[str]:
    """Lower-case ASCII word tokens; the same function normalises titles, names and messages."""
    return _ALNUM.findall(_fold(text).replace("&", " and "))


def _clean(text: str) -> str:
    """Control, format and surrogate characters become spaces: binary junk is just noise."""
    if text.isprintable():
        return text
    return "".join(ch if ch in "\n\t" or unicodedata.category(ch)[0] != "C" else " " for ch in text)


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


_ROMAN = {"ii": 2, "iii": 3, "iv": 4, "v": 5, "vi": 6, "vii": 7, "viii": 8, "ix": 9, "x": 10}


def _numbers(text: str) -> frozenset[int]:
    """Sequel numbers in a normalised title ("part ii" and "part 2" agree)."""
    found = set()
    for token in text.split():
        if token.isdigit():
            found.add(int(token))
        elif token in _ROMAN:
            found.add(_ROMAN[token])
    return frozenset(found)


def _distinctive(token: str) -> bool:
    """Whether a word says "this is a title" by itself (``fargo``) rather than plain English."""
    return len(token) >= 4 and token not in _COMMON_WORDS and not token.isdigit()


@dataclass(frozen=True, slots=True)
class _Word:
    """One normalised word of a message, with what the rules need about its surroundings."""

    norm: str
    start: int
    end: int
    cap: bool
    sent_start: bool
    brk: str  # punctuation between the previous word and this one


def _tokenize(text: str) -> list[_Word]:
    """Words with character offsets; punctuation is kept only as each word's ``brk``."""
    words: list[_Word] = []
    pending = ""
    sentence = True
    for match in _TOKEN.finditer(text):
        tok = match.group()
        if tok == "&":
            parts = ["and"]
        elif tok[0].isalnum():
            parts = _ALNUM.findall(_fold(tok))
        else:
            pending += tok
            if tok in _CLAUSE_BREAK:
                sentence = True
            continue
        if not parts:  # a word in a script that folds to nothing ASCII: a separator
            pending += " "
            continue
        for k, part in enumerate(parts):
            first = k == 0
            words.append(
                _Word(
                    part,
                    match.start(),
                    match.end(),
                    first and tok[0].isupper(),
                    first and sentence,
                    pending if first else "",
                )
            )
        pending = ""
        sentence = False
    return words


def _is_break(word: _Word, soft: bool = True) -> bool:
    chars = _CLAUSE_BREAK | _SOFT_BREAK if soft else _CLAUSE_BREAK
    return any(ch in chars for ch in word.brk)


@dataclass(frozen=True, slots=True)
class _Span:
    """A recognised stretch of words: ``kind`` is title, person, genre, ordinal, pronoun, quoted."""

    i: int
    j: int
    kind: str
    value: str
    score: float
    start: int
    end: int
    quoted: bool = False
    extra: tuple[str, ...] = ()


def _resolve_overlaps(spans: Iterable[_Span]) -> list[_Span]:
    """Keep the longest / best non-overlapping spans, in message order."""
    ranked = sorted(
        spans,
        key=lambda s: (s.quoted, (s.j - s.i) * s.score, s.kind == "title", s.score, -s.i),
        reverse=True,
    )
    taken: set[int] = set()
    kept: list[_Span] = []
    for span in ranked:
        cover = range(span.i, span.j)
        if any(k in taken for k in cover):
            continue
        taken.update(cover)
        kept.append(span)
    return sorted(kept, key=lambda s: s.i)


# --------------------------------------------------------------------------------------------
# Catalog titles


@dataclass(frozen=True, slots=True)
class Mention:
    """A catalog title found inside a message.

    Attributes:
        item_id: Catalog item id.
        start: Offset of the first character of the mention in the message.
        end: Offset just past the mention (a year right after the title is included).
        score: 100 for an exact (normalised) match, the rapidfuzz ratio for a fuzzy one.
        text: The mention as the person typed it.
    """

    item_id: str
    start: int
    end: int
    score: float
    text: str


class CatalogMatcher:
    """Titles typed by a person -> catalog item ids. Built once per dataset, reused every turn.

    Every title is indexed under each of its display forms (MovieLens "Godfather, The" is also
    "The Godfather"; parenthesised alternatives such as "Seven (Se7en)" give "Se7en"), with and
    without a leading English article, and with the part before a colon as a weaker alias
    ("Mystery Science Theater 3000: The Movie"). Keys are accent-folded, lower-case words joined
    without spaces, so punctuation and spacing never matter.

    Args:
        dataset: The catalog.
        popularity: One score per item index used to break ties between remakes and homonyms
            (default: number of interactions per item).

    Raises:
        DataError: ``popularity`` does not have one value per item.
    """

    def __init__(self, dataset: Dataset, popularity: Sequence[float] | None = None) -> None:
        items = dataset.items
        self._ids: list[str] = [str(v) for v in items["item_id"].tolist()]
        self._index: dict[str, int] = {item: idx for idx, item in enumerate(self._ids)}
        n = len(self._ids)
        self._pop = self._popularity(dataset, popularity, n)
        years = items["year"] if "year" in items else [None] * n
        self._years: list[int | None] = [_year_or_none(y) for y in years]
        self._titles: list[str] = [str(t) for t in items["title"].tolist()]
        self._exact: dict[str, list[tuple[int, bool]]] = defaultdict(list)
        self._first_tokens: set[str] = set()
        fuzzy: dict[tuple[str, int], None] = {}
        self._max_tokens = 1
        for idx, title in enumerate(self._titles):
            if _fold(title).strip() in _IGNORED_GENRES:  # ML-100K has an item titled "unknown"
                continue
            for variant in title_variants(title):
                tokens = tuple(_norm_tokens(variant))
                if not tokens:
                    continue
                self._add(tokens, idx, alias=False)
                body = tokens[1:] if tokens[0] in _EN_ARTICLES and len(tokens) > 1 else tokens
                fuzzy[(" ".join(body), idx)] = None
                if ":" in variant:
                    head = tuple(_norm_tokens(variant.split(":", 1)[0]))
                    if len([t for t in head if t not in _EN_ARTICLES]) >= 2:
                        self._add(head, idx, alias=True)
        ordered = sorted(fuzzy, key=lambda pair: len(pair[0]))
        self._fz_keys: list[str] = [key for key, _ in ordered]
        self._fz_index: list[int] = [idx for _, idx in ordered]
        self._fz_lens: list[int] = [len(key) for key in self._fz_keys]
        self._exact = dict(self._exact)
        self._blocked = _genre_phrases(dataset)
        self._plain_tokens = _COMMON_WORDS | {t for phrase in self._blocked for t in phrase.split()}
        logger.debug("catalog matcher: %d items, %d keys", n, len(self._exact))

    @staticmethod
    def _popularity(dataset: Dataset, popularity: Sequence[float] | None, n: int) -> np.ndarray:
        if popularity is not None:
            values = np.asarray(popularity, dtype=np.float64)
            if values.shape != (n,):
                raise DataError(
                    f"popularity has {values.size} values but the catalog has {n} items: pass "
                    "one value per item index, or None to count interactions"
                )
            return values
        inter = dataset.interactions
        if len(inter) == 0 or "item" not in inter:
            return np.zeros(n)
        return np.bincount(inter["item"].to_numpy(dtype=np.int64), minlength=n)[:n].astype(float)

    def _add(self, tokens: tuple[str, ...], idx: int, *, alias: bool) -> None:
        keys = {"".join(tokens)}
        if tokens[0] in _EN_ARTICLES and len(tokens) > 1:
            keys.add("".join(tokens[1:]))
            self._first_tokens.add(tokens[1])
        self._first_tokens.add(tokens[0])
        for key in keys:
            entries = self._exact[key]
            if (idx, alias) not in entries and (idx, False) not in entries:
                entries.append((idx, alias))
        self._max_tokens = min(MAX_NGRAM, max(self._max_tokens, len(tokens)))

    # ---------------------------------------------------------------- public API

    def __len__(self) -> int:
        return len(self._ids)

    def display(self, item_id: str) -> str:
        """``Title (Year)`` with the article in front, for replies ("The Godfather (1972)").

        Raises:
            KeyError: Unknown item id.
        """
        return self._display(self._index[str(item_id)])

    def find(self, text: str, *, prefer: Collection[str] = ()) -> str | None:
        """The item a person means by a typed title, or None.

        Tolerates case, punctuation, accents, a missing or extra leading article ("Godfather",
        "The Godfather", "Godfather, The"), typos ("Godfater") and a year that picks between
        remakes ("Sabrina (1954)", "sabrina 1954"). Without a year, an item in ``prefer`` (the
        items just shown) wins, then the most popular.

        Args:
            text: What the person typed as a title.
            prefer: Item ids to favour among equally good matches.
        """
        found = self._find(text, prefer)
        return self._ids[found[0]] if found else None

    def mentions(self, message: str, *, prefer: Collection[str] = ()) -> list[Mention]:
        """Catalog titles mentioned inside free text, in order, without overlaps.

        Exact normalised n-grams are taken anywhere, except that a title made only of everyday
        words ("Heat", "Big", "Now and Then") needs a hint that it is a title: a capital letter
        that is not the sentence's first, quotes, or a cue word right before it ("like", "loved",
        "seen", "watched", "about"...). Multi-word spans also match fuzzily (ratio >= 88) when
        they hold a word that is not everyday English; a single unusual word right after a cue
        ("I loved godfater") too. Only the first :data:`MAX_SCAN_CHARS` characters are read.

        Args:
            message: The chat message.
            prefer: Item ids to favour between homonyms (the items just shown).
        """
        text = _clean(message[:MAX_SCAN_CHARS])
        words = _tokenize(text)
        spans = _resolve_overlaps(s for s in self._spans(text, words, prefer) if s.kind == "title")
        return [
            Mention(s.value, s.start, s.end, round(s.score, 1), text[s.start : s.end])
            for s in spans
        ]

    def closest(self, text: str, n: int = 3) -> list[tuple[str, str, float]]:
        """The ``n`` catalog titles closest to ``text``, for "did you mean ...?" replies.

        Returns:
            ``(item_id, "Title (Year)", score)`` tuples, best first (rapidfuzz QRatio, 0-100);
            ties go to the more popular item.
        """
        tokens = _norm_tokens(_clean(text[:300]))
        if tokens and tokens[0] in _EN_ARTICLES and len(tokens) > 1:
            tokens = tokens[1:]
        query = " ".join(tokens)
        if not query or n <= 0:
            return []
        hits = process.extract(query, self._fz_keys, scorer=fuzz.QRatio, limit=max(10, n * 5))
        best: dict[int, float] = {}
        for _, score, k in hits:
            idx = self._fz_index[k]
            best[idx] = max(best.get(idx, 0.0), float(score))
        ranked = sorted(best.items(), key=lambda kv: (-round(kv[1], 1), -self._pop[kv[0]]))
        return [(self._ids[i], self._display(i), round(s, 1)) for i, s in ranked[:n]]

    # ---------------------------------------------------------------- internals

    def _display(self, idx: int) -> str:
        title = move_article(re.sub(r"\s*\([^()]*\)\s*$", "", self._titles[idx]) or "")
        title = title or self._titles[idx]
        year = self._years[idx]
        return f"{title} ({year})" if year is not None else title

    def _choose(
        self, entries: Sequence[tuple[int, bool]], year: int | None, prefer: Collection[str]
    ) -> tuple[int, bool]:
        """Pick one item among homonyms; returns it and whether ``year`` decided."""
        candidates = [idx for idx, alias in entries if not alias] or [idx for idx, _ in entries]
        used_year = False
        if year is not None:
            dated = [idx for idx in candidates if self._years[idx] == year]
            if dated:
                candidates, used_year = dated, True
        preferred = [idx for idx in candidates if self._ids[idx] in prefer]
        if preferred:
            candidates = preferred
        return max(candidates, key=lambda idx: (self._pop[idx], -idx)), used_year

    def _fuzzy_hits(self, query: str, cutoff: float, limit: int) -> list[tuple[int, float]]:
        """Fuzzy look-up restricted to titles whose length allows the cutoff ratio at all."""
        size = len(query)
        ratio = cutoff / (200.0 - cutoff)  # the shortest/longest length ratio that can pass
        lo = bisect_left(self._fz_lens, math.floor(size * ratio))
        hi = bisect_right(self._fz_lens, math.ceil(size / ratio))
        if lo >= hi:
            return []
        hits = process.extract(
            query, self._fz_keys[lo:hi], scorer=fuzz.ratio, score_cutoff=cutoff, limit=limit
        )
        numbers = _numbers(query)
        return [
            (self._fz_index[lo + k], float(score))
            for key, score, k in hits
            if _numbers(key) == numbers  # "Toy Story 3" is not "Toy Story"
        ]

    def _find(
        self, text: str, prefer: Collection[str] = (), cutoff: float = FIND_SCORE
    ) -> tuple[int, float] | None:
        text = _clean(text[:300]).strip()
        year: int | None = None
        body = text
        match = _TRAILING_YEAR.search(text)
        if match and text[: match.start()].strip(" ,([-"):
            year, body = int(match.group(1)), text[: match.start()]
        for candidate in (body, text) if year is not None else (text,):
            tokens = _norm_tokens(move_article(candidate))
            if not tokens:
                continue
            keys = ["".join(tokens)]
            if tokens[0] in _EN_ARTICLES and len(tokens) > 1:
                keys.append("".join(tokens[1:]))
            for key in keys:
                entries = self._exact.get(key)
                if entries:
                    idx, _ = self._choose(entries, year if candidate is body else None, prefer)
                    return idx, 100.0
        tokens = _norm_tokens(move_article(body))
        if tokens and tokens[0] in _EN_ARTICLES and len(tokens) > 1:
            tokens = tokens[1:]
        query = " ".join(tokens)
        if len(query) < 4:
            return None
        hits = self._fuzzy_hits(query, cutoff, limit=10)
        if not hits:
            return None
        top = max(score for _, score in hits)
        close = [(idx, score) for idx, score in hits if score >= top - 2.0]
        idx, _ = self._choose(
            [(i, False) for i, _ in sorted(close, key=lambda h: -h[1])], year, prefer
        )
        return idx, dict(close)[idx]

    def _is_cue(self, words: Sequence[_Word], i: int) -> bool:
        """Whether the word(s) right before ``words[i]`` make a title plausible."""
        if i == 0 or _is_break(words[i]):
            return False
        if words[i - 1].norm in _TITLE_CUES:
            return True
        return i >= 2 and (words[i - 2].norm, words[i - 1].norm) in _TITLE_CUE_BIGRAMS

    @staticmethod
    def _inside_name(words: Sequence[_Word], i: int, j: int) -> bool:
        """Whether a capitalised word is glued to another capitalised word (a longer name)."""
        after = j < len(words) and words[j].cap and not _is_break(words[j])
        before = (
            i > 0
            and words[i - 1].cap
            and not words[i - 1].sent_start
            and words[i - 1].norm not in _TITLE_CUES
            and not _is_break(words[i])
        )
        return after or before

    def _gate(self, words: Sequence[_Word], i: int, j: int) -> bool:
        """Whether an exact n-gram match at ``words[i:j]`` is plausibly meant as a title."""
        body = words[i:j]
        if len(body) > 1 and body[0].norm in _EN_ARTICLES:
            body = body[1:]
        tokens = tuple(w.norm for w in body)
        if " ".join(tokens) in self._blocked:  # "horror", "love story", "westerns" are genres
            return False
        if len(body) == 1 and body[0].cap and self._inside_name(words, i, j):
            return False  # "Michael Keaton", "Jack Nicholson": a name, not "Michael" or "Jack"
        caps = any(w.cap and not w.sent_start for w in body)
        cue = self._is_cue(words, i)
        if any(_distinctive(t) for t in tokens) and (len(tokens) > 1 or len(tokens[0]) >= 5):
            return True
        if j < len(words) and words[j].norm in _MEDIA_NOUNS and not caps:
            return False  # "action movies", "big fans"
        verdict = j < len(words) and words[j].norm in {"was", "is", "s"} and not _is_break(words[j])
        caps = caps or (verdict and all(w.cap for w in body))  # "Heat was great."
        if len(tokens) == 1:
            token = tokens[0]
            if len(token) <= 1 or token in _STOPWORDS or token.isdigit():
                # "it", "up", "her", "m" (from I'm) are words first; a capital can make them titles.
                if token.isdigit():
                    return cue and len(token) >= 3  # "I loved 1941"
                return caps and len(token) >= 2
            return caps or cue
        if all(t in _STOPWORDS for t in tokens):
            return caps  # "Now and Then", "To Live"
        return caps or cue or sum(w.cap for w in body) >= 2

    def _spans(self, text: str, words: Sequence[_Word], prefer: Collection[str]) -> list[_Span]:
        """Candidate title spans, overlapping; the caller resolves them.

        Quoted spans that match nothing come back as ``kind="quoted"`` so the parser can report
        them as unknown titles.
        """
        spans: list[_Span] = []
        n_words = len(words)
        # 1. Quoted spans are titles by intent: look them up whole, typos allowed.
        for match in _QUOTED.finditer(text):
            group = next(g for g in range(1, 5) if match.group(g) is not None)
            qs, qe = match.start(group), match.end(group)
            inside = [k for k, w in enumerate(words) if w.start >= qs and w.end <= qe]
            if not inside:
                continue
            i, j = inside[0], inside[-1] + 1
            found = self._find(text[qs:qe], prefer)
            if found:
                idx, score = found
                spans.append(
                    _Span(i, j, "title", self._ids[idx], score, match.start(), match.end(), True)
                )
            elif not all(w.norm in self._plain_tokens for w in words[i:j]):
                # 'I said "no horror"' quotes plain words, not a title: leave them to the rules.
                spans.append(_Span(i, j, "quoted", text[qs:qe].strip(), 100.0, qs, qe, quoted=True))
        # 2. Exact n-grams, longest first at each start.
        exact_at: set[tuple[int, int]] = set()
        for i in range(n_words):
            if words[i].norm not in self._first_tokens:
                continue
            for n in range(min(self._max_tokens, n_words - i), 0, -1):
                key = "".join(w.norm for w in words[i : i + n])
                entries = self._exact.get(key)
                if not entries or not self._gate(words, i, i + n):
                    continue
                spans.append(self._dated_span(text, words, i, i + n, entries, 100.0, prefer))
                exact_at.add((i, i + n))
                break
        # 3. Fuzzy multi-word spans that hold at least one unusual word.
        queries = 0
        for i in range(n_words):
            first = words[i].norm
            if queries >= MAX_FUZZY_QUERIES:
                break
            if (first in _STOPWORDS and first not in _EN_ARTICLES) or first in _TITLE_CUES:
                continue
            for n in range(2, min(6, n_words - i) + 1):
                if _is_break(words[i + n - 1]):
                    break
                last = words[i + n - 1].norm
                if last in _STOPWORDS or (i, i + n) in exact_at:
                    continue
                tokens = [w.norm for w in words[i : i + n]]
                if tokens[0] in _EN_ARTICLES:
                    tokens = tokens[1:]
                if len(tokens) < 2 or not any(_distinctive(t) for t in tokens):
                    continue
                query = " ".join(tokens)
                if len(query) < 6 or query in self._blocked:
                    continue
                queries += 1
                hits = self._fuzzy_hits(query, FUZZY_SPAN_SCORE, limit=5)
                if hits:
                    top = hits[0][1]
                    entries = [(idx, False) for idx, score in hits if score >= top - 1.0]
                    spans.append(self._dated_span(text, words, i, i + n, entries, top, prefer))
        # 4. One unusual word right after a cue: "I loved godfater".
        for i in range(1, n_words):
            token = words[i].norm
            if (
                queries < MAX_FUZZY_QUERIES
                and len(token) >= 5
                and token.isalpha()
                and _distinctive(token)
                and self._is_cue(words, i)
                and token not in self._exact
            ):
                queries += 1
                hits = self._fuzzy_hits(token, FUZZY_SPAN_SCORE, limit=5)
                if hits:
                    top = hits[0][1]
                    entries = [(idx, False) for idx, score in hits if score >= top - 1.0]
                    spans.append(self._dated_span(text, words, i, i + 1, entries, top, prefer))
        return spans

    def _dated_span(
        self,
        text: str,
        words: Sequence[_Word],
        i: int,
        j: int,
        entries: Sequence[tuple[int, bool]],
        score: float,
        prefer: Collection[str],
    ) -> _Span:
        """A title span; a year right after it ("Sabrina (1954)") picks the remake and joins."""
        end = words[j - 1].end
        match = _YEAR_AFTER.match(text, end)
        year = int(match.group(1)) if match else None
        idx, used_year = self._choose(entries, year, prefer)
        if match and (used_year or "(" in match.group(0)):
            end = match.end()
            if j < len(words) and words[j].norm == match.group(1):
                j += 1
        return _Span(i, j, "title", self._ids[idx], score, words[i].start, end)


def _year_or_none(value: Any) -> int | None:
    """A release year as int; missing values (None, NaN, pd.NA) and junk as None."""
    try:
        return int(value)
    except (TypeError, ValueError):  # pd.NA, None and NaN all land here
        return None


# --------------------------------------------------------------------------------------------
# Genres


def _genre_phrases(dataset: Dataset) -> frozenset[str]:
    """Every phrase that names a genre, so the title matcher does not take "Horror" for a film."""
    names = {" ".join(_norm_tokens(g)) for g in _catalog_genres(dataset)}
    plurals = {f"{n}s" for n in names if n}
    return frozenset(names | plurals | set(_GENRE_SYNONYMS))


def _catalog_genres(dataset: Dataset) -> list[str]:
    if "genres" not in dataset.items:
        return []
    found: Counter[str] = Counter()
    for cell in dataset.items["genres"].tolist():
        for name in str(cell).split("|"):
            name = name.strip()
            if name and " ".join(_norm_tokens(name)) not in _IGNORED_GENRES:
                found[name] += 1
    return sorted(found)


class GenreLexicon:
    """Genre words -> catalog genre names, built from the catalog's own genre column.

    The catalog's names are always recognised (case- and punctuation-insensitive, singular or
    plural); English synonyms ("funny", "scary", "sci-fi", "rom-com", "kids") map onto whichever
    catalog name exists ("Children's" in ML-100K, "Children" in ml-latest-small) and vanish when
    the catalog has no such genre. IMAX and "unknown" are never offered.

    Args:
        dataset: The catalog.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.genres: list[str] = _catalog_genres(dataset)
        by_norm = {" ".join(_norm_tokens(g)): g for g in self.genres}
        self._phrases: dict[tuple[str, ...], tuple[str, ...]] = {}
        for norm, name in by_norm.items():
            self._phrases[tuple(norm.split())] = (name,)
            self._phrases[tuple(f"{norm}s".split())] = (name,)
        for phrase, concepts in _GENRE_SYNONYMS.items():
            targets: list[str] = []
            for candidates in concepts:
                hit = next((by_norm[n] for n in map(_norm_key, candidates) if n in by_norm), None)
                if hit:
                    targets.append(hit)
            if targets:
                self._phrases.setdefault(tuple(phrase.split()), tuple(targets))
        self._max = max((len(p) for p in self._phrases), default=1)

    def lookup(self, text: str) -> list[str]:
        """Catalog genres a word or phrase names ("rom-com" -> Romance, Comedy); [] if none."""
        tokens = tuple(_norm_tokens(text))
        if tokens and tokens[-1] in {"movie", "movies", "film", "films"} and len(tokens) > 1:
            tokens = tokens[:-1]
        return list(self._phrases.get(tokens, ()))

    def spans(self, words: Sequence[_Word], covered: Collection[int]) -> list[_Span]:
        """Genre phrases among the words not already covered (longest first)."""
        spans: list[_Span] = []
        i = 0
        while i < len(words):
            for n in range(min(self._max, len(words) - i), 0, -1):
                if any(k in covered for k in range(i, i + n)):
                    continue
                phrase = tuple(w.norm for w in words[i : i + n])
                names = self._phrases.get(phrase)
                if names:
                    kind = "comparative" if phrase[-1] in _COMPARATIVES else "plain"
                    spans.append(
                        _Span(
                            i,
                            i + n,
                            "genre",
                            kind,
                            100.0,
                            words[i].start,
                            words[i + n - 1].end,
                            extra=names,
                        )
                    )
                    i += n
                    break
            else:
                i += 1
        return spans


def _norm_key(text: str) -> str:
    return " ".join(_norm_tokens(text))


# --------------------------------------------------------------------------------------------
# People


class PeopleLexicon:
    """People's names from the director, writer and cast columns -> canonical catalog spelling.

    Full names match case- and accent-insensitively ("tom hanks", "Tchéky Karyo" = "Tcheky
    Karyo"). A director's surname alone ("Tarantino", "Spielberg") matches when exactly one
    director has it and it is not an everyday word ("Stone", "Wood", "Lee" never do); when it
    is also somebody's first name ("Nolan") it needs a cue ("by Nolan", "a Nolan film").
    Single-word names ("Madonna") must be neither everyday words nor first names. The most
    frequent spelling of a name is the canonical one.

    Args:
        dataset: The catalog.
    """

    def __init__(self, dataset: Dataset) -> None:
        spellings: dict[str, Counter[str]] = defaultdict(Counter)
        directors: set[str] = set()
        items = dataset.items
        raw: Counter[str] = Counter()
        director_raw: set[str] = set()
        for column in ("director", "writer", "cast"):
            if column not in items:
                continue
            for cell in items[column].tolist():
                if not isinstance(cell, str) or not cell:
                    continue
                for name in cell.split(","):
                    name = name.strip()
                    if name:
                        raw[name] += 1
                        if column == "director":
                            director_raw.add(name)
        for name, count in raw.items():
            key = _norm_key(name)
            if key:
                spellings[key][name] += count
                if name in director_raw:
                    directors.add(key)
        self._names: dict[str, str] = {k: c.most_common(1)[0][0] for k, c in spellings.items()}
        multi = [k.split() for k in self._names if " " in k]
        first_names = {parts[0] for parts in multi}
        self._max = min(MAX_NGRAM, max((len(p) for p in multi), default=1))
        surnames: dict[str, set[str]] = defaultdict(set)
        for key in directors:
            parts = [p for p in key.split() if p not in _NAME_SUFFIXES]
            if len(parts) > 1:
                surnames[parts[-1]].add(key)
        self._single: dict[str, str] = {}
        # A surname that is also someone's first name ("Nolan") needs a cue: "by Nolan".
        self._cued: dict[str, str] = {}
        for surname, keys in surnames.items():
            if len(keys) == 1 and len(surname) >= 4 and surname not in _COMMON_WORDS:
                target = self._single if surname not in first_names else self._cued
                target[surname] = self._names[next(iter(keys))]
        for key, name in self._names.items():
            if (
                " " not in key
                and len(key) >= 3
                and not key.isdigit()
                and key not in _COMMON_WORDS
                and key not in first_names
            ):
                self._single.setdefault(key, name)
        self._first_names = frozenset(first_names)

    def __len__(self) -> int:
        return len(self._names)

    def is_first_name(self, token: str) -> bool:
        """Whether a lower-case word is somebody's first name (so alone it names nobody)."""
        return token in self._first_names

    def lookup(self, text: str) -> str | None:
        """Canonical spelling of a full name or unique director surname; None if unknown."""
        key = _norm_key(text)
        if key in self._names and " " in key:
            return self._names[key]
        return self._single.get(key) or self._cued.get(key)

    def spans(self, words: Sequence[_Word]) -> list[_Span]:
        """Candidate person spans (overlapping; the caller resolves them against titles)."""
        spans: list[_Span] = []
        n_words = len(words)
        for i in range(n_words):
            cue = i > 0 and words[i - 1].norm in _PERSON_CUES and not _is_break(words[i])
            score = 101.0 if cue else 99.0  # a cue wins a tie with a title ("by Ed Wood")
            for n in range(min(self._max, n_words - i), 1, -1):
                if any(_is_break(w) for w in words[i + 1 : i + n]):
                    continue
                body = words[i : i + n]
                key = " ".join(w.norm for w in body)
                name = self._names.get(key)
                if name is None:
                    continue
                everyday = all(w.norm in _COMMON_WORDS for w in body)
                if everyday and not any(w.cap for w in body) and not cue:
                    continue
                spans.append(_Span(i, i + n, "person", name, score, body[0].start, body[-1].end))
                break
            else:
                word = words[i]
                follows_media = i + 1 < n_words and words[i + 1].norm in _MEDIA_NOUNS
                name = self._single.get(word.norm)
                if name is None and (cue or follows_media):
                    name = self._cued.get(word.norm)
                if name is None:
                    continue
                if word.cap or cue or follows_media:
                    spans.append(_Span(i, i + 1, "person", name, score, word.start, word.end))
        return spans


# --------------------------------------------------------------------------------------------
# Years

_Y = r"(?<!\d)(?:18[89]\d|19\d\d|20\d\d)(?!\d)(?!\s?['’]?s\b)"
_DECADE_WORDS = {
    "twenties": 1920,
    "thirties": 1930,
    "forties": 1940,
    "fifties": 1950,
    "sixties": 1960,
    "seventies": 1970,
    "eighties": 1980,
    "nineties": 1990,
    "noughties": 2000,
}
_D = r"(?<!\w)['’]?(?:1[89]|20)?\d0\s?['’]?s\b|(?<!\w)(?:" + "|".join(_DECADE_WORDS) + r")\b"
_P = rf"(?:the\s+)?(?:early\s+|mid\s+|late\s+)?(?:{_D}|{_Y})"
_YEAR_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(rf"\bbetween\s+({_P})\s+(?:and|&|-)\s+({_P})"), "range"),
    (re.compile(rf"\bfrom\s+({_P})\s*(?:to|till|until|through|thru|-|–)\s*({_P})"), "range"),
    (re.compile(rf"({_Y})\s*(?:-|–|to)\s*({_Y})"), "range"),
    (
        re.compile(
            rf"\b(?:newer\s+than|later\s+than|after|post|more\s+recent\s+than|younger\s+than)"
            rf"\s*-?\s*({_P})"
        ),
        "after",
    ),
    (
        re.compile(
            rf"\bfrom\s+({_P})\s*(?:on\b|onwards?\b|and\s+(?:up|later|after|newer)\b|"
            rf"or\s+(?:later|newer|after)\b|\+)"
        ),
        "since",
    ),
    (re.compile(rf"\b(?:since|starting\s+(?:in|from)|at\s+least)\s+({_P})"), "since"),
    (
        re.compile(rf"({_P})\s*(?:(?:or|and)\s+(?:later|newer|after|up|beyond)\b|onwards?\b|\+)"),
        "since",
    ),
    (
        re.compile(rf"\b(?:older\s+than|earlier\s+than|before|pre|prior\s+to)\s*-?\s*({_P})"),
        "before",
    ),
    (
        re.compile(rf"\b(?:until|till|up\s+to|through|thru|no\s+later\s+than)\s+({_P})"),
        "until",
    ),
    (re.compile(rf"({_P})\s*(?:or|and)\s+(?:earlier|older|before)\b"), "until"),
    (re.compile(_D), "decade"),
    (re.compile(rf"\b(?:from|in|released\s+in|made\s+in|of|year)\s+({_Y})"), "exact"),
    (re.compile(_Y), "exact"),
]


def _period(text: str) -> tuple[int, int]:
    """``(first, last)`` year of "1995", "the 90s", "'80s", "1990s", "nineties"."""
    text = re.sub(r"^(?:the\s+)?(?:early\s+|mid\s+|late\s+)?", "", text.strip())
    for word, start in _DECADE_WORDS.items():
        if text.startswith(word):
            return start, start + 9
    digits = re.search(r"\d+", text)
    value = int(digits.group()) if digits else 0
    if len(digits.group() if digits else "") == 2:
        base = 1900 if value >= 20 else 2000
        return base + value, base + value + 9
    if text.rstrip().endswith("s"):
        return value, value + 9
    return value, value


def parse_years(text: str) -> tuple[int | None, int | None]:
    """Release-year bounds a message asks for, as ``(year_from, year_to)`` (inclusive).

    Rules, applied in this order, each consuming the words it used: ranges ("between 1980 and
    1990", "from 1980 to 1990", "1980-1990"); strict lower bounds ("newer than / after 2000" ->
    2001); inclusive lower bounds ("since 2000", "2000 or later", "from 2000 on"); strict upper
    bounds ("older than / before 1980" -> 1979); inclusive upper bounds ("until 1980", "1980 or
    earlier"); decades ("the 90s", "'90s", "1990s", "nineties"; several are joined: "80s or 90s"
    -> 1980-1999); single years ("from / in / released in 1995", or a bare 1995). Exact periods are
    united, then intersected with the bounds. Vague words ("recent", "new", "old", "classic")
    give no bound: guessing one would silently hide items. Contradictory bounds give none.
    """
    low = _fold(text)
    lower: list[int] = []
    upper: list[int] = []
    periods: list[tuple[int, int]] = []
    for pattern, kind in _YEAR_RULES:
        for match in list(pattern.finditer(low)):
            if kind == "range":
                one, two = _period(match.group(1)), _period(match.group(2))
                periods.append((min(one[0], two[0]), max(one[1], two[1])))
            elif kind in {"decade", "exact"}:
                periods.append(_period(match.group(1) if match.groups() else match.group(0)))
            else:
                first, last = _period(match.group(1))
                if kind == "after":
                    lower.append(last + 1)
                elif kind == "since":
                    lower.append(first)
                elif kind == "before":
                    upper.append(first - 1)
                else:
                    upper.append(last)
            low = low[: match.start()] + " " * (match.end() - match.start()) + low[match.end() :]
    year_from = max(lower) if lower else None
    year_to = min(upper) if upper else None
    if periods:
        lo, hi = min(p[0] for p in periods), max(p[1] for p in periods)
        year_from = lo if year_from is None else max(year_from, lo)
        year_to = hi if year_to is None else min(year_to, hi)
    if year_from is not None and year_to is not None and year_from > year_to:
        logger.debug("contradictory year bounds %s > %s ignored", year_from, year_to)
        return None, None
    return year_from, year_to


# --------------------------------------------------------------------------------------------
# References to the items shown in the previous reply


def _ref_spans(words: Sequence[_Word], covered: Collection[int]) -> list[_Span]:
    """Ordinals ("the second one", "#2", "number 2", "the last one") and pronouns ("it", "them").

    ``value`` is the 0-based index (-1 = last) for ordinals, ``it`` / ``all`` / ``both`` for
    pronouns. "first" alone is not a reference ("first of all", "the first time"): it needs "the"
    before and nothing noun-like after, or a noun such as "one" / "movie" after.
    """
    spans: list[_Span] = []
    n_words = len(words)
    i = 0
    last_ordinal_end = -10

    def free(k: int) -> bool:
        return 0 <= k < n_words and k not in covered

    def next_ok(k: int) -> bool:
        return k >= n_words or _is_break(words[k]) or words[k].norm in _ORDINAL_FOLLOW_OK

    while i < n_words:
        if not free(i):
            i += 1
            continue
        word = words[i].norm
        prev = words[i - 1].norm if free(i - 1) and not _is_break(words[i]) else ""
        index: int | None = None
        start, end = i, i + 1
        numbered = _NUMBERED.match(word)
        if word in _ORDINAL_WORDS or (numbered and word != numbered.group(1)):
            index = _ORDINAL_WORDS.get(word)
            if index is None and numbered:
                index = int(numbered.group(1)) - 1
            has_noun = (
                free(i + 1) and words[i + 1].norm in _REF_NOUNS and not _is_break(words[i + 1])
            )
            chained = prev in {"and", "or"} and last_ordinal_end == i - 1
            if has_noun:
                end = i + 2
            elif not ((prev == "the" and next_ok(i + 1)) or chained):
                index = None
            if prev == "the" and index is not None:
                start = i - 1
        elif (
            word in _NUMBER_LEADS
            and free(i + 1)
            and (words[i + 1].norm.isdigit() or words[i + 1].norm in _NUMBER_WORDS)
        ):
            target = words[i + 1].norm
            index = int(target) - 1 if target.isdigit() else _NUMBER_WORDS[target]
            end = i + 2
        elif word.isdigit() and "#" in words[i].brk:
            index = int(word) - 1
        if index is not None and -1 <= index < 20:
            spans.append(
                _Span(
                    start, end, "ordinal", str(index), 100.0, words[start].start, words[end - 1].end
                )
            )
            last_ordinal_end = end - 1
            i = end
            continue
        pronoun = _pronoun_at(words, i, free)
        if pronoun:
            kind, end = pronoun
            spans.append(_Span(i, end, "pronoun", kind, 100.0, words[i].start, words[end - 1].end))
            i = end
            continue
        i += 1
    return spans


def _pronoun_at(words: Sequence[_Word], i: int, free: Any) -> tuple[str, int] | None:
    """A pronoun that can point at a shown item, as ``(kind, end)``, or None."""
    n_words = len(words)
    word = words[i].norm
    nxt = words[i + 1].norm if free(i + 1) and not _is_break(words[i + 1]) else ""
    if word in {"that", "this"}:
        if nxt in _REF_NOUNS:
            return "it", i + 2
        if i + 1 >= n_words or _is_break(words[i + 1]) or nxt in _PRONOUN_FOLLOW_OK:
            return "it", i + 1
        return None
    if word == "it":
        if nxt in {"to", "be", "s", "is", "would", "will", "should", "has", "had", "doesn", "isn"}:
            return None
        return "it", i + 1
    plural = {"them", "those", "these"}
    if word in plural:
        return "all", i + 1
    if word == "all" and nxt == "of" and free(i + 2) and words[i + 2].norm in plural:
        return "all", i + 3
    if word == "both" and (i + 1 >= n_words or _is_break(words[i + 1]) or nxt in {"of", "one"}):
        return "both", i + 1
    return None


def _shown_index(index: int, shown: Sequence[str]) -> str | None:
    if not shown:
        return None
    if index == -1:
        return shown[-1]
    return shown[index] if 0 <= index < len(shown) else None


# --------------------------------------------------------------------------------------------
# The parser


@dataclass
class _Collected:
    liked: list[str] = field(default_factory=list)
    disliked: list[str] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    anchors: list[str] = field(default_factory=list)

    def add(self, category: str, ids: Iterable[str]) -> None:
        getattr(self, category).extend(ids)


_CATEGORY_FIELD = {
    "like": "liked",
    "dislike": "disliked",
    "seen": "seen",
    "reject": "rejected",
    "anchor": "anchors",
}


def _alternatives(words: Sequence[_Word], spans: Sequence[_Span]) -> bool:
    """Whether "or" joins two of the spans ("Al Pacino or De Niro": any one will do)."""
    ordered = sorted(spans, key=lambda s: s.i)
    return any(
        any(w.norm in {"or", "either"} for w in words[left.j : right.i])
        for left, right in itertools.pairwise(ordered)
    )


class IntentParser:
    """Rule-based understanding of a chat turn; see the module docstring for the precedence.

    Building it indexes the catalog once (well under a second for ML-100K, about a second for
    ml-latest-small); :meth:`parse` then takes a few milliseconds and never raises on any text.

    Args:
        dataset: The catalog.
        popularity: One value per item index, to pick between remakes (default: interaction
            counts). See :class:`CatalogMatcher`.
        matcher: An already built matcher to reuse (the graph may share one).
    """

    def __init__(
        self,
        dataset: Dataset,
        popularity: Sequence[float] | None = None,
        *,
        matcher: CatalogMatcher | None = None,
    ) -> None:
        self.matcher = matcher or CatalogMatcher(dataset, popularity)
        self.genres = GenreLexicon(dataset)
        self.people = PeopleLexicon(dataset)

    def from_llm(
        self, payload: LLMTurn | Mapping[str, Any], shown: Sequence[str] = (), text: str = ""
    ) -> TurnIntent:
        """:func:`intent_from_llm` with this parser's matcher and lexicons."""
        return intent_from_llm(payload, self.matcher, self.genres, self.people, shown, text=text)

    def parse(self, message: str, shown: Sequence[str] = ()) -> TurnIntent:
        """Understand one chat turn.

        Args:
            message: What the person typed (any text: it is never executed or trusted).
            shown: Item ids shown in the previous reply, in order, for "the second one", "it".

        Returns:
            The turn's intent, ``source="parser"``; item id lists are de-duplicated in order.
            ``text`` is the trimmed message, with lone surrogates replaced by ``?`` so the
            intent stays storable as UTF-8 JSON.
        """
        if not isinstance(message, str):
            message = "" if message is None else str(message)
        # Lone surrogates (bytes decoded with surrogateescape) would break JSON/UTF-8 storage.
        full = message.strip().encode("utf-8", "replace").decode("utf-8")
        text = _clean(full[:MAX_SCAN_CHARS])
        if not any(ch.isalnum() for ch in text):
            return TurnIntent(action="empty", text=full)
        words = _tokenize(text)
        joined = " ".join(w.norm for w in words)
        start_over = bool(_START_OVER.search(joined))
        shown = [] if start_over else [str(s) for s in shown]

        spans = self.matcher._spans(text, words, shown)
        spans += self.people.spans(words)
        chosen = _resolve_overlaps(spans)
        unknown: list[str] = []
        for index, span in enumerate(chosen):
            if span.kind != "quoted":
                continue
            person = self.people.lookup(span.value) if " " in span.value.strip() else None
            if person:  # a quoted full name: "anything with 'Tom Hanks'"
                chosen[index] = _Span(span.i, span.j, "person", person, 100.0, span.start, span.end)
            else:
                unknown.append(span.value)
        chosen = [s for s in chosen if s.kind != "quoted"]
        covered = {k for s in chosen for k in range(s.i, s.j)}
        for span in self._cued_capitals(text, words, covered, shown):
            if span.kind == "quoted":
                unknown.append(span.value)
            else:
                chosen.append(span)
            covered.update(range(span.i, span.j))
        genre_spans = self.genres.spans(words, covered)
        covered.update(k for s in genre_spans for k in range(s.i, s.j))
        ref_spans = _ref_spans(words, covered)
        units = sorted(chosen + genre_spans + ref_spans, key=lambda s: s.i)

        tokens, positions = _unit_tokens(words, units)
        intent = TurnIntent(text=full)
        blanked = _blank(text, [s for s in units if s.kind in {"title", "person"}])
        intent.year_from, intent.year_to = parse_years(blanked)

        why = _WHY.search(joined)
        if why and not _NOT_WHY_BEFORE.search(joined[: why.start() + 1]):
            intent.action = "why"
            intent.why_target = self._why_target(units, words, why.start(), joined, shown)
            intent.year_from = intent.year_to = None
            return intent

        collected = _Collected()
        self._classify(units, tokens, positions, shown, collected)
        if shown and not collected.seen and _mentions_seen(tokens):
            collected.seen.append(shown[0])
        self._genres(genre_spans, tokens, positions, intent)
        people = [s for s in units if s.kind == "person" and not _negated(tokens, positions[id(s)])]
        intent.people = _unique(s.value for s in people)
        intent.people_any = len(intent.people) > 1 and _alternatives(words, people)
        for name in ("liked", "disliked", "seen", "rejected", "anchors"):
            setattr(intent, name, _unique(getattr(collected, name)))
        intent.unknown_titles = _unique(unknown)
        intent.suggestions = {
            title: [item for item, _, _ in self.matcher.closest(title, 3)]
            for title in intent.unknown_titles
        }
        if start_over:
            intent.action = "start_over"
        elif intent.has_signal or intent.unknown_titles:
            intent.action = "recommend"
        elif _is_smalltalk(words):
            intent.action = "smalltalk"
        elif len(words) <= 8:
            # The whole message may be a (mistyped) title: "godfater", "the usual suspect".
            found = self.matcher._find(text, shown, cutoff=90.0)
            if found:
                intent.anchors = [self.matcher._ids[found[0]]]
        return intent

    # ---------------------------------------------------------------- rule pieces

    def _cued_capitals(
        self, text: str, words: Sequence[_Word], covered: set[int], shown: Sequence[str]
    ) -> list[_Span]:
        """Capitalised spans right after a strong cue, such as "I loved Zorblax Returns".

        Each is a title if the catalog has it (typos allowed), a person if it is a full name, else
        an unknown title (``kind="quoted"``).
        """
        found: list[_Span] = []
        n_words = len(words)
        i = 1
        while i < n_words:
            word = words[i]
            if (
                i in covered
                or not word.cap
                or word.sent_start
                or _is_break(word)
                or words[i - 1].norm not in _UNKNOWN_CUES
                or (word.norm in _STOPWORDS and word.norm not in _EN_ARTICLES)
            ):
                i += 1
                continue
            j = i + 1
            while j < n_words and j - i < 8 and j not in covered and not _is_break(words[j]):
                nxt = words[j]
                if nxt.cap or nxt.norm.isdigit():
                    j += 1
                elif (
                    nxt.norm in _CONNECTORS
                    and j + 1 < n_words
                    and words[j + 1].cap
                    and j + 1 not in covered
                    and not _is_break(words[j + 1])
                ):
                    j += 2
                else:
                    break
            body = [w.norm for w in words[i:j]]
            if body[0] in _EN_ARTICLES and len(body) == 1:
                i = j
                continue
            if len(body) == 1 and (body[0] in _COMMON_WORDS or self.people.is_first_name(body[0])):
                i = j
                continue
            if all(t in _COMMON_WORDS for t in body) or _norm_key(" ".join(body)) in (
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
                found.append(_Span(i, j, "title", self.matcher._ids[idx], score, start, end))
            elif person and " " in _norm_key(raw):
                found.append(_Span(i, j, "person", person, 100.0, start, end))
            else:
                found.append(_Span(i, j, "quoted", raw, 100.0, start, end))
            i = j
        return found

    def _why_target(
        self,
        units: Sequence[_Span],
        words: Sequence[_Word],
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

    def _ref_ids(self, span: _Span, units: Sequence[_Span], shown: Sequence[str]) -> list[str]:
        """Item ids a reference unit points at (pronouns: an earlier title, else ``shown``)."""
        if span.kind == "title":
            return [span.value]
        if span.kind == "ordinal":
            item = _shown_index(int(span.value), shown)
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
        units: Sequence[_Span],
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
        spans: Sequence[_Span],
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
        intent.genres_exclude = _unique(exclude)
        intent.genres_include = _unique(g for g in include if g not in excluded)
        intent.genres_prefer = _unique(
            g for g in prefer if g not in excluded and g not in intent.genres_include
        )


def _unit_tokens(
    words: Sequence[_Word], units: Sequence[_Span]
) -> tuple[list[str], dict[int, int]]:
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
        if i and _is_break(word, soft=False):
            tokens.append(".")
        elif i and _is_break(word):
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
        if not after or after[0] in {".", ",", "already", "before", "too", "that", "both"}:
            return True
    return False


def _is_smalltalk(words: Sequence[_Word]) -> bool:
    norms = {w.norm for w in words}
    return bool(norms) and norms <= _SMALLTALK and bool(norms & _SMALLTALK_CORE)


def _blank(text: str, spans: Sequence[_Span]) -> str:
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


# --------------------------------------------------------------------------------------------
# Structured output from a chat model

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

    action: Action = Field("recommend", description="recommend, why, start_over, smalltalk, empty")
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


def _ref_from_text(text: str, shown: Sequence[str]) -> str | None:
    """An ordinal or pronoun written as text ("second", "#2", "the last one", "it") -> item id."""
    tokens = _norm_tokens(text)
    tokens = [t for t in tokens if t not in {"the", "one", "movie", "film", "pick", "number", "no"}]
    if len(tokens) != 1:
        return None
    token = tokens[0]
    if token in {"it", "that", "this"}:
        return shown[0] if shown else None
    if token in _ORDINAL_WORDS:
        return _shown_index(_ORDINAL_WORDS[token], shown)
    numbered = _NUMBERED.match(token)
    if numbered:
        return _shown_index(int(numbered.group(1)) - 1, shown)
    return None


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
    if isinstance(payload, LLMTurn):
        turn = payload
    elif isinstance(payload, Mapping):
        try:
            turn = LLMTurn.model_validate(dict(payload))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "payload"
            raise DataError(
                f"chat model output does not fit LLMTurn ({exc.error_count()} error(s), first at "
                f"{where}: {first.get('msg')}); use IntentParser.parse for this turn instead"
            ) from exc
    else:
        raise DataError(
            f"chat model output is a {type(payload).__name__}, not an LLMTurn or a dict; use "
            "IntentParser.parse for this turn instead"
        )
    shown = [str(s) for s in shown]
    unknown: list[str] = []

    def ids(values: Iterable[str]) -> list[str]:
        out: list[str] = []
        for value in values:
            item = _ref_from_text(value, shown) or matcher.find(value, prefer=shown)
            if item is None:
                unknown.append(value)
            else:
                out.append(item)
        return _unique(out)

    def genre_names(values: Iterable[str]) -> list[str]:
        out: list[str] = []
        for value in values:
            names = genres.lookup(value)
            if not names:
                logger.info("chat model named genre %r, which the catalog lacks: dropped", value)
            out.extend(names)
        return _unique(out)

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
    named = []
    for value in turn.people:
        person = people.lookup(value)
        if person is None:
            logger.info("chat model named person %r, who is not in the catalog: dropped", value)
        else:
            named.append(person)
    intent.people = _unique(named)
    intent.people_any = len(intent.people) > 1 and bool(turn.people_any)
    if turn.why_ref:
        intent.why_target = _ref_from_text(turn.why_ref, shown) or matcher.find(
            turn.why_ref, prefer=shown
        )
        if intent.why_target is None:
            unknown.append(turn.why_ref)
    intent.unknown_titles = _unique(unknown)
    intent.suggestions = {
        title: [item for item, _, _ in matcher.closest(title, 3)] for title in intent.unknown_titles
    }
    return intent
