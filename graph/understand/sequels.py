"""Whether one catalog title is a numbered sequel of another ("The Godfather: Part II").

A person who says "The Godfather was great" may well want Part II, but should be told that it is
a sequel rather than find it presented as a discovery. Only what the titles show is claimed: the
later title starts with every word of the earlier one and adds a sequel number ("2", "II",
"Part III"). Sequels without a number ("Die Hard: With a Vengeance") are not detected, and so
never flagged: the flag is never a guess.
"""

from __future__ import annotations

from recagents.data.titles import move_article
from recagents.graph.understand.tokens import norm_tokens, sequel_numbers
from recagents.graph.understand.vocabulary import EN_ARTICLES


def _words(title: str) -> list[str]:
    tokens = norm_tokens(move_article(title))
    return tokens[1:] if len(tokens) > 1 and tokens[0] in EN_ARTICLES else tokens


def is_sequel(later: str, earlier: str) -> bool:
    """Whether title ``later`` is a numbered sequel of title ``earlier`` (titles without years).

    >>> is_sequel("Godfather: Part II, The", "Godfather, The")
    True
    >>> is_sequel("Aliens", "Alien")
    False
    """
    first, second = _words(earlier), _words(later)
    if not first or len(second) <= len(first) or second[: len(first)] != first:
        return False
    added = " ".join(second[len(first) :])
    return bool(sequel_numbers(added) - sequel_numbers(" ".join(first)))
