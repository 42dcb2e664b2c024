"""Release-year expressions: "from the 90s", "newer than 2000", "between 1980 and 1990"."""

from __future__ import annotations

import logging
import re

from recagents.graph.understand.tokens import fold
from recagents.graph.understand.vocabulary import DECADE_WORDS

logger = logging.getLogger(__name__)

_Y = r"(?<!\d)(?:18[89]\d|19\d\d|20\d\d)(?!\d)(?!\s?['’]?s\b)"
_D = r"(?<!\w)['’]?(?:1[89]|20)?\d0\s?['’]?s\b|(?<!\w)(?:" + "|".join(DECADE_WORDS) + r")\b"
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
    for word, start in DECADE_WORDS.items():
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
    low = fold(text)
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
