"""True explanations: fact sheets from movies.db, and every claim of a reply checked against them.

The sheets are the real ones (MovieLens-100K matched to bokeh-sampledata's movies.db), so the
false sentences quoted in issue 10 are checked against the facts a user would be shown.
"""

from __future__ import annotations

import numpy as np
import pytest

from recagents.agents.ranking import shared_attributes
from recagents.data import Dataset
from recagents.data.facts import FactSheet
from recagents.graph.explain import build_prompt, check_reply, template_reason, tidy_reply
from recagents.types import Contribution, Evidence, Recommendation


def _index(dataset: Dataset, title: str) -> int:
    matches = [i for i in range(dataset.n_items) if dataset.item_title(i).startswith(title)]
    assert len(matches) == 1, (title, [dataset.item_title(i) for i in matches])
    return matches[0]


def _rec(dataset: Dataset, title: str, liked: tuple[str, ...] = ()) -> Recommendation:
    idx = _index(dataset, title)
    because = tuple(
        Contribution(dataset.item_map.external(j), dataset.item_title(j), 0.5)
        for j in (_index(dataset, t) for t in liked)
    )
    return Recommendation(
        dataset.item_map.external(idx), dataset.item_title(idx), 0.5, Evidence(because_of=because)
    )


def _check(dataset: Dataset, title: str, reply: str, liked: tuple[str, ...] = ()) -> str | None:
    rec = _rec(dataset, title, liked)
    sheet = dataset.fact_sheet(_index(dataset, title))
    return check_reply(tidy_reply(reply), rec, None, sheet)


# ------------------------------------------------------------------------------- fact sheets


def test_fact_sheet_holds_movies_db_facts(ml100k: Dataset) -> None:
    sheet = ml100k.fact_sheet(_index(ml100k, "Godfather, The (1972)"))
    assert sheet.year == 1972 and "Crime" in sheet.genres
    assert sheet.directors == ("Francis Ford Coppola",)
    assert "Italian" in sheet.languages and "Italy" in sheet.countries
    assert (sheet.oscars_won, sheet.oscar_nominations) == (2, 7)
    assert sheet.rated == "R" and sheet.runtime == 175
    assert sheet.metacritic == 100 and sheet.critics_meter == 97
    # movies.db lists cast alphabetically; the sheet puts the prominent first.
    assert sheet.cast.index("Al Pacino") < sheet.cast.index("Abe Vigoda")
    assert sheet.cast.index("Marlon Brando") < sheet.cast.index("Al Martino")
    assert "Al Pacino" in sheet.cast[:2]
    titanic = ml100k.fact_sheet(_index(ml100k, "Titanic (1997)"))
    assert titanic.cast[0] == "Leonardo DiCaprio"
    birds = ml100k.fact_sheet(_index(ml100k, "Birds, The (1963)"))
    assert birds.cast[-1] == "Alfred Hitchcock"  # the director's cameo is not a lead
    lines = sheet.lines()
    assert "Oscars: won 2 of 7 nominations" in lines
    assert "language: English, Italian" in lines
    assert not any("Abe Vigoda" in line for line in lines)  # only the five most prominent


def test_fact_sheet_of_an_unmatched_film_holds_the_catalog_row_only(ml100k: Dataset) -> None:
    sheet = ml100k.fact_sheet(_index(ml100k, "Star Maker, The"))
    assert sheet.genres == ("Drama",) and sheet.year == 1995
    assert sheet.countries == () and sheet.languages == () and sheet.oscars_won == 0
    assert sheet.lines() == ["year: 1995", "genres: Drama"]


def test_fact_sheets_are_built_once(ml100k: Dataset) -> None:
    idx = _index(ml100k, "Fargo (1996)")
    assert ml100k.fact_sheet(idx) is ml100k.fact_sheet(idx)


def test_the_model_is_given_the_sheet(ml100k: Dataset) -> None:
    idx = _index(ml100k, "Godfather, The (1972)")
    prompt = build_prompt(_rec(ml100k, "Godfather, The (1972)"), "crime", ml100k.fact_sheet(idx))
    for fact in ("- directed by: Francis Ford Coppola", "won 2 of 7", "- language: English"):
        assert fact in prompt


# ------------------------------------------------------------------- the sentences of issue 10


@pytest.mark.parametrize(
    ("title", "reply", "liked", "claim"),
    [
        (
            "Tin Cup (1996)",
            "Since you liked Fargo (1996), you will enjoy Tin Cup (1996) because it is a classic "
            "Italian film adapted into a musical soundtrack.",
            ("Fargo (1996)",),
            "adapted",
        ),
        (
            "Tin Cup (1996)",
            "You will enjoy Tin Cup (1996) because it is a classic Italian film.",
            (),
            "Italian",
        ),
        (
            "Birds, The (1963)",
            "You will enjoy The Birds (1963) because it is a genre-bending comedy that looks at "
            "fear through the lens of a beloved family drama.",
            (),
            "genre-bending",
        ),
        (
            "Birds, The (1963)",
            "You will enjoy The Birds (1963) because it is a comedy about a family drama.",
            (),
            "comedy",
        ),
        (
            "Pulp Fiction (1994)",
            "You will enjoy Pulp Fiction (1994) because it mixes action-adventure, sci-fi and "
            "horror.",
            (),
            "horror",
        ),
        (
            "Star Maker, The",
            "You will enjoy The Star Maker (1995) because it is a classic Italian horror movie.",
            (),
            "horror",
        ),
        (
            "Star Maker, The",
            "You will enjoy The Star Maker (1995) because it is a classic Italian drama.",
            (),
            "Italian",
        ),
    ],
)
def test_false_sentences_from_the_issue_are_rejected(
    ml100k: Dataset, title: str, reply: str, liked: tuple[str, ...], claim: str
) -> None:
    reason = _check(ml100k, title, reply, liked)
    assert reason is not None and claim in reason, reason


@pytest.mark.parametrize(
    ("title", "reply", "claim"),
    [
        (
            "Ready to Wear (Pret-A-Porter) (1994)",
            "You will enjoy Ready to Wear (Pret-A-Porter) (1994) because it's a comedy movie "
            "with a strong focus on family and relationships.",
            "relationships",
        ),
        (
            "Hot Shots! Part Deux (1993)",
            "You will enjoy Hot Shots! Part Deux (1993) because it's a comedy with a dark "
            "underbelly.",
            "underbelly",
        ),
        (
            "Bean (1997)",
            "You will enjoy Bean (1997) because it's a comedy movie with a strong focus on social "
            "commentary.",
            "commentary",
        ),
    ],
)
def test_false_themes_of_the_third_hand_checked_sample_are_rejected(
    ml100k: Dataset, title: str, reply: str, claim: str
) -> None:
    """BENCHMARKS.md, "True explanations", third sample: false theme phrases that passed."""
    reason = _check(ml100k, title, reply)
    assert reason is not None and claim in reason, reason


@pytest.mark.parametrize(
    ("title", "reply", "liked", "claim"),
    [
        (
            "Mr. Holland's Opus (1995)",
            "Since you liked Jerry Maguire (1996), you will enjoy Mr. Holland's Opus (1995) "
            "because it has been a favorite of yours.",
            ("Jerry Maguire (1996)",),
            "favorite",
        ),
        (
            "Event Horizon (1997)",
            "You will enjoy Event Horizon (1997) because it challenged the audience to think "
            "differently.",
            (),
            "challenged",
        ),
        (
            "Swingers (1996)",
            "You will enjoy Swingers (1996) because it's a comedy drama with a focus on the "
            "swagger culture.",
            (),
            "focus",
        ),
        (
            "Toy Story (1995)",
            "You will enjoy Toy Story (1995) because it combines elements of both entertainment "
            "and education.",
            (),
            "entertainment",
        ),
        (
            "Twister (1996)",
            "You will enjoy Twister (1996) because it's an action thriller with a twist.",
            (),
            "twist",
        ),
        (
            "Terminator 2: Judgment Day (1991)",
            "Since you liked Star Wars (1977), you will enjoy Terminator 2: Judgment Day (1991) "
            "because it's a sequel to the epic sci-fi movie.",
            ("Star Wars (1977)",),
            "sequel to",
        ),
        (
            "Jurassic Park (1993)",
            "You will enjoy Jurassic Park (1993) because it has action stars like Sam Neill and "
            "Laura Dern.",
            (),
            "action stars",
        ),
    ],
)
def test_words_no_fact_holds_are_rejected_whatever_they_are(
    ml100k: Dataset, title: str, reply: str, liked: tuple[str, ...], claim: str
) -> None:
    """Fourth hand-checked sample (BENCHMARKS.md): reception and theme claims in words no list
    named. Past the claim checks a sentence may only use neutral words and the sheet's facts."""
    reason = _check(ml100k, title, reply, liked)
    assert reason is not None and claim in reason, reason


@pytest.mark.parametrize(
    ("title", "reply"),
    [
        (
            "When Harry Met Sally... (1989)",
            "Since you liked Dave (1993), you will enjoy When Harry Met Sally... (1989) because "
            "it's a comedy with romantic undertones, directed by Rob Reiner.",
        ),
        (
            "Pulp Fiction (1994)",
            "You will enjoy Pulp Fiction (1994) because it combines elements of crime and drama, "
            "with Uma Thurman and John Travolta.",
        ),
    ],
)
def test_neutral_frames_of_facts_are_accepted(ml100k: Dataset, title: str, reply: str) -> None:
    liked = ("Dave (1993)",) if "Dave" in reply else ()
    assert _check(ml100k, title, reply, liked) is None


@pytest.mark.parametrize(
    ("title", "reply"),
    [
        (
            "Pulp Fiction (1994)",
            "You will enjoy Pulp Fiction (1994) because it is a violent crime drama from Quentin "
            "Tarantino, starring Samuel L. Jackson and Bruce Willis.",
        ),
        (
            "Birds, The (1963)",
            "You will enjoy The Birds (1963) because it is a classic, scary horror film directed "
            "by Alfred Hitchcock in the 1960s.",
        ),
        (
            "Godfather, The (1972)",
            "The Godfather (1972) is a dark, dramatic crime epic from Francis Ford Coppola that "
            "won 2 Oscars, with Al Pacino and Marlon Brando.",
        ),
        (
            "Godfather, The (1972)",
            "You will enjoy The Godfather (1972) because this acclaimed American and Italian "
            "crime drama from the '70s holds a Metacritic score of 100/100.",
        ),
        (
            "Tin Cup (1996)",
            "Tin Cup (1996) is a funny romantic comedy starring Kevin Costner and Rene Russo.",
        ),
        (
            "Fargo (1996)",
            "Fargo (1996) is a tense crime thriller by Joel Coen, nominated for Oscars.",
        ),
        (
            "Birds, The (1963)",
            "The Birds (1963) is an Oscar-nominated horror film with Jessica Tandy and Rod Taylor.",
        ),
    ],
)
def test_true_paraphrases_are_accepted(ml100k: Dataset, title: str, reply: str) -> None:
    assert _check(ml100k, title, reply) is None


@pytest.mark.parametrize(
    ("title", "reply", "claim"),
    [
        ("Godfather, The (1972)", "The Godfather (1972) is a gripping 80s crime saga.", "80s"),
        ("Godfather, The (1972)", "The Godfather (1972) is a crime saga from 1974.", "1974"),
        ("Godfather, The (1972)", "The Godfather (1972) won three Oscars for its cast.", "three"),
        (
            "Godfather, The (1972)",
            "The Godfather (1972) is a crime drama directed by Al Pacino.",
            "Al Pacino",
        ),
        (
            "Godfather, The (1972)",
            "The Godfather (1972) is a crime drama starring Tom Hanks.",
            "Tom Hanks",
        ),
        ("Godfather, The (1972)", "The Godfather (1972) is a French crime drama.", "French"),
        ("Godfather, The (1972)", "The Godfather (1972) is a PG-rated crime drama.", "PG"),
        (
            "Godfather, The (1972)",
            "The Godfather (1972) is a gritty crime drama, 90 minutes long.",
            "90 minutes",
        ),
        ("Tin Cup (1996)", "Tin Cup (1996) is a romantic comedy that won an Oscar.", "Oscar"),
        (
            "Tin Cup (1996)",
            "Tin Cup (1996) is a critically acclaimed romantic comedy.",
            "acclaimed",
        ),
        ("Tin Cup (1996)", "Tin Cup (1996) is a romantic comedy classic.", "classic"),
        ("Tin Cup (1996)", "Tin Cup (1996) is the romantic comedy sequel fans wanted.", "sequel"),
        (
            "Tin Cup (1996)",
            "Tin Cup (1996) is a romantic comedy set in Texas with Kevin Costner.",
            "Texas",
        ),
        ("Tin Cup (1996)", "Tin Cup (1996) is a beloved romantic comedy.", "beloved"),
        ("Fargo (1996)", "Fargo (1996) is a hilarious crime story.", "hilarious"),
        ("Tin Cup (1996)", "Tin Cup (1996) is a romantic comedy that won Best Picture.", "Best"),
        ("Spawn (1997)", "Spawn (1997) is a great sci-fi action film.", "great"),
        (
            "Godfather, The (1972)",
            "The Godfather (1972) is a crime drama produced by Francis Ford Coppola.",
            "produced by",
        ),
        (
            "Replacement Killers, The (1998)",
            "The Replacement Killers (1998) is a movie about a team of superheroes.",
            "movie about",
        ),
        (
            "12 Angry Men (1957)",
            "12 Angry Men (1957) is a drama with a strong female lead, Ed Begley.",
            "female",
        ),
        ("Alien (1979)", "Alien (1979) is a tense crime story set in space.", "crime"),
    ],
)
def test_each_kind_of_claim_is_checked(ml100k: Dataset, title: str, reply: str, claim: str) -> None:
    reason = _check(ml100k, title, reply)
    assert reason is not None and claim.lower() in reason.lower(), reason


def test_without_a_sheet_claims_are_checked_against_the_evidence() -> None:
    rec = Recommendation(
        "1",
        "Fargo (1996)",
        0.5,
        Evidence(shared_attributes=("genre: Crime", "cast: Steve Buscemi")),
    )
    assert check_reply("Fargo (1996) is a crime story with Steve Buscemi.", rec) is None
    reason = check_reply("Fargo (1996) is a scary crime story.", rec)
    assert reason is not None and "evidence only" in reason


# ------------------------------------------------------------------------ template reasons


def test_template_names_the_stars_not_the_alphabet(ml100k: Dataset) -> None:
    item = _index(ml100k, "Godfather, The (1972)")
    liked = np.array([_index(ml100k, "Godfather: Part II, The")])
    attributes = shared_attributes(ml100k, item, liked)
    rec = Recommendation(
        ml100k.item_map.external(item),
        ml100k.item_title(item),
        0.5,
        Evidence(
            because_of=(Contribution("x", ml100k.item_title(int(liked[0])), 1.0),),
            shared_attributes=attributes,
        ),
    )
    reason = template_reason(rec)
    assert "Al Pacino" in reason, reason
    assert "Abe Vigoda" not in reason and "Al Martino" not in reason, reason
    # People the user named come first when the evidence holds them.
    named = template_reason(rec, prefer=["talia shire"])
    assert "starring Talia Shire and" in named or "stars Talia Shire and" in named, named


def test_fact_sheet_round_trips_to_a_dict() -> None:
    sheet = FactSheet("1", "Heat (1995)", 1995, ("Action",), cast=("Al Pacino",))
    assert FactSheet(**{**sheet.to_dict(), "genres": ("Action",), "cast": ("Al Pacino",)}) == sheet
