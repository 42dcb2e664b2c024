"""Title normalisation shared by enrichment, ingest, the title matcher and the UI.

MovieLens writes "Usual Suspects, The" and sometimes adds an alternative title in parentheses
("Cinema Paradiso (Nuovo cinema Paradiso)"); OMDb writes "The Usual Suspects". Matching on a
normalised key makes those the same film.
"""

from __future__ import annotations

import re
import unicodedata

#: A catalog title's trailing year: "Heat (1995)" -> "1995".
YEAR_SUFFIX = re.compile(r"\s*\((\d{4})\)\s*$")

_ARTICLES = ("the", "a", "an", "les", "la", "le", "il", "das", "der", "die", "el", "l'")
_TRAILING_ARTICLE = re.compile(
    r"^(?P<body>.*),\s*(?P<article>the|a|an|les|la|le|il|das|der|die|el|l')$", re.IGNORECASE
)
_PAREN = re.compile(r"\s*\(([^()]*)\)")
_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def strip_accents(text: str) -> str:
    """ASCII-fold accents (Cástulo -> Castulo) so typed queries match catalog text."""
    folded = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in folded if not unicodedata.combining(ch))


def move_article(title: str) -> str:
    """``Matrix, The`` -> ``The Matrix``; other titles unchanged."""
    match = _TRAILING_ARTICLE.match(title.strip())
    if not match:
        return title.strip()
    article = match.group("article")
    joiner = "" if article.endswith("'") else " "
    return f"{article}{joiner}{match.group('body').strip()}"


def title_variants(title: str) -> list[str]:
    """Display forms a film may be known by: main title and each parenthesised alternative."""
    title = title.strip()
    alternatives = [a.strip() for a in _PAREN.findall(title) if a.strip() and not a.isdigit()]
    main = _PAREN.sub("", title).strip()
    variants = [move_article(main)]
    for alt in alternatives:
        alt = re.sub(r"^a\.k\.a\.\s*", "", alt, flags=re.IGNORECASE)
        variants.append(move_article(alt))
    seen: set[str] = set()
    return [v for v in variants if v and not (v in seen or seen.add(v))]


def title_key(title: str) -> str:
    """Comparison key: lower case, accents folded, leading article and punctuation dropped."""
    text = strip_accents(move_article(title)).lower().replace("&", " and ")
    text = _NON_ALNUM.sub(" ", text).strip()
    for article in _ARTICLES:
        if text.startswith(article + " "):
            text = text[len(article) + 1 :]
            break
    return text.replace(" ", "")
