"""Property-based tests (issue 11): the parser and ingest take any input without a surprise.

Examples test what we thought of; these generate what we did not: any text for the chat-turn
parser (always a valid, storable intent that names only catalog ids, never an exception), and
any bytes for ingest (a dataset, or a DataError that names the file; never another exception,
never half a dataset in the home). Example counts are bounded for two busy cores; the cases are
derandomised, so a failure reproduces.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from pathlib import Path
from typing import get_args

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recagents.errors import DataError
from recagents.graph.intent import Action, TurnIntent
from recagents.graph.understand import IntentParser

PROPERTY_SETTINGS = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

#: Words the rules react to: cues, negations, genres, years, counts, references.
CUES = (
    "I loved",
    "I hated",
    "not",
    "no",
    "something like",
    "more like",
    "why",
    "the second one",
    "it",
    "seen it",
    "not that one",
    "start over",
    "thanks",
    "hi",
    "funnier",
    "horror",
    "comedy",
    "after",
    "before",
    "between",
    "1990",
    "the 80s",
    "'95",
    "three",
    "movies",
    "with",
    "directed by",
    "or",
    "and",
    "I meant",
    "which is the best one?",
    "?",
    "!",
    ",",
    "(1995)",
)


@pytest.fixture(scope="module")
def parser(ml100k) -> IntentParser:  # type: ignore[no-untyped-def]
    return IntentParser(ml100k)


def _messages(titles: list[str]) -> st.SearchStrategy[str]:
    piece = st.one_of(
        st.sampled_from(CUES),
        st.sampled_from(titles),
        st.sampled_from(titles).map(lambda t: t.lower()[: max(3, len(t) // 2)]),  # partial/typo
        st.text(max_size=12),  # anything: controls, emoji, surrogates, RTL...
        st.integers(-10_000, 10_000).map(str),
    )
    return st.one_of(
        st.text(max_size=300),
        st.lists(piece, max_size=14).map(" ".join),
    )


def test_any_message_parses_to_a_valid_storable_intent(parser, ml100k) -> None:  # type: ignore[no-untyped-def]
    ids = [str(i) for i in ml100k.item_map.ids]
    catalog = set(ids)
    titles = [ml100k.item_title(i) for i in range(0, ml100k.n_items, 7)]
    genres = set(parser.genres.genres)
    actions = set(get_args(Action))

    @PROPERTY_SETTINGS
    @given(message=_messages(titles), shown=st.lists(st.sampled_from(ids[:200]), max_size=5))
    def check(message: str, shown: list[str]) -> None:
        intent = parser.parse(message, shown)
        assert isinstance(intent, TurnIntent) and intent.action in actions
        for name in ("liked", "disliked", "seen", "rejected", "anchors", "about", "retracted"):
            assert set(getattr(intent, name)) <= catalog, (name, getattr(intent, name))
        assert intent.why_target is None or intent.why_target in catalog
        if intent.year_from is not None and intent.year_to is not None:
            assert intent.year_from <= intent.year_to, (intent.year_from, intent.year_to)
        assert intent.count is None or intent.count > 0
        for name in ("genres_include", "genres_prefer", "genres_exclude"):
            assert set(getattr(intent, name)) <= genres, getattr(intent, name)
        # Storable: the checkpointer writes it as UTF-8 JSON, and it reads back the same.
        stored = json.dumps(intent.to_dict(), ensure_ascii=False).encode("utf-8")
        assert TurnIntent.from_dict(json.loads(stored)) == intent

    check()


# -- ingest -------------------------------------------------------------------------------------

ITEMS = (
    "item_id,title,genres\n"
    "i1,Toy Story (1995),Animation|Comedy\n"
    'i2,"Usual Suspects, The (1995)",Crime|Thriller\n'
    "i3,Seven,Thriller\n"
)
HEADERS = (
    "user_id,item_id,rating,timestamp",
    "user_id,item_id,rating,timestamp",
    "user_id,item_id",
    "user_id;item_id;rating",
    "",
)


def _cell() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(
            [
                "u1",
                "u2",
                "i1",
                "i2",
                "i3",
                "i9",
                "4",
                "5",
                "3.5",
                "-1",
                "7",
                "nan",
                "",
                " ",
                '"',
                '"a,b"',
                "1e309",
                "2020-01-01",
                "100",
                "\t",
            ]
        ),
        st.text(max_size=6),
    )


def _csv_bytes() -> st.SearchStrategy[bytes]:
    """Mostly well-formed rows with a few odd ones, in several encodings; or raw bytes."""
    plausible = st.tuples(
        st.sampled_from(["u1", "u2", "u3", " u1 ", '"u,4"']),
        st.sampled_from(["i1", "i2", "i3", "i9", ""]),
        st.sampled_from(["4", "5", "3.5", "", "-1", "7", "nan", "1e309", "x"]),
        st.sampled_from(["100", "", "2020-01-01", "-5", "soon"]),
    ).map(",".join)
    good = st.tuples(
        st.sampled_from(["u1", "u2", "u3"]),
        st.sampled_from(["i1", "i2", "i3"]),
        st.sampled_from(["1", "4", "5", "3.5", ""]),
        st.sampled_from(["100", "", "2020-01-01"]),
    ).map(",".join)
    junk = st.lists(_cell(), max_size=5).map(",".join)
    row = st.one_of(good, good, good, good, good, good, plausible, junk)
    text = st.tuples(st.sampled_from(HEADERS), st.lists(row, max_size=8)).map(
        lambda parts: "\n".join([parts[0], *parts[1]]) + "\n"
    )
    encoded = st.tuples(text, st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16"])).map(
        lambda pair: pair[0].encode(pair[1], errors="replace")
    )
    return st.one_of(encoded, encoded, encoded, st.binary(max_size=200))


def test_any_interactions_file_is_a_dataset_or_a_named_data_error(tmp_path: Path) -> None:
    """Through the CLI, as a person runs it: rc 0 and a loadable dataset, or rc 2, a message
    naming the file, and nothing of the dataset left in the home."""
    from recagents.data.ingest import load_ingested
    from recagents.ui.cli import main

    items = tmp_path / "items.csv"
    items.write_text(ITEMS, encoding="utf-8")
    outcomes: Counter[int] = Counter()

    @settings(PROPERTY_SETTINGS, max_examples=60)
    @given(data=_csv_bytes(), skip=st.booleans())
    def check(data: bytes, skip: bool) -> None:
        with tempfile.TemporaryDirectory(dir=tmp_path) as folder:
            home = Path(folder) / "home"
            interactions = Path(folder) / "ratings.csv"
            interactions.write_bytes(data)
            argv = [
                "--home",
                str(home),
                "ingest",
                "--interactions",
                str(interactions),
                "--items",
                str(items),
                "--name",
                "prop",
            ]
            try:
                code = main([*argv, *(["--skip-bad-rows"] if skip else [])])
            except SystemExit as exc:  # argparse only; never for file contents
                raise AssertionError(f"ingest exited {exc.code}") from exc
            datasets = home / "datasets"
            left = sorted(p.name for p in datasets.iterdir()) if datasets.exists() else []
            outcomes[code] += 1
            if code == 0:
                assert left == ["prop"], left
                dataset = load_ingested("prop", home)
                assert dataset.n_users >= 1 and dataset.n_items == 3
            else:
                assert code == 2
                assert left == [], f"a failed ingest left {left} in the home"

    check()
    print(f"ingest exit codes: {dict(outcomes)}")
    assert outcomes[0] and outcomes[2], outcomes  # both paths were exercised


def test_read_catalog_raises_only_data_errors_that_name_the_file(tmp_path: Path) -> None:
    from recagents.data.ingest import read_catalog

    items = tmp_path / "items.csv"
    items.write_text(ITEMS, encoding="utf-8")
    interactions = tmp_path / "ratings.csv"
    outcomes: Counter[str] = Counter()

    @settings(PROPERTY_SETTINGS, max_examples=120)
    @given(data=_csv_bytes())
    def check(data: bytes) -> None:
        interactions.write_bytes(data)
        try:
            dataset, report = read_catalog(interactions, items)
        except DataError as exc:
            outcomes["error"] += 1
            assert "ratings.csv" in str(exc), str(exc)
            return
        outcomes["read"] += 1
        assert dataset.n_items == 3 and len(dataset.interactions) >= 1

    check()
    print(f"read_catalog outcomes: {dict(outcomes)}")
    assert outcomes["read"] and outcomes["error"], outcomes
