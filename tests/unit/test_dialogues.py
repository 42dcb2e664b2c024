"""Dialogue corpora (``recagents ingest --dialogues``): mapping, labels, errors, persistence.

Real catalog (ML-100K), the chat's real title matcher, ReDial-shaped lines written here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from recagents.data import Dataset
from recagents.data.dialogues import (
    dialogue_names,
    load_dialogues,
    read_redial,
    save_dialogues,
)
from recagents.data.ingest import BadRowsError
from recagents.data.splits import rs_split
from recagents.data.union import dialogue_union
from recagents.errors import DataError
from recagents.graph.understand import CatalogMatcher
from recagents.ui.cli import main


def _redial(
    conversation: Any,
    messages: list[tuple[str, str]],
    mentions: dict[str, str],
    forms: dict[str, dict[str, int]] | None = None,
) -> dict[str, Any]:
    """A ReDial record: seeker is worker 1, recommender worker 2."""
    return {
        "conversationId": conversation,
        "initiatorWorkerId": 1,
        "respondentWorkerId": 2,
        "movieMentions": mentions,
        "messages": [
            {"text": text, "senderWorkerId": 1 if who == "S" else 2} for who, text in messages
        ],
        "initiatorQuestions": forms or {},
        "respondentQuestions": forms or {},
    }


GOOD = _redial(
    "c1",
    [
        ("S", "hi, I loved @1 and @2"),
        ("R", "have you seen @3 ? or @4 or @5"),
        ("S", "@3 sounds great, not a fan of @4"),
    ],
    {
        "1": "Toy Story (1995)",
        "2": "The Matrix (1999)",  # not in ML-100K (it stops in 1998)
        "3": "Babe (1995)",
        "4": "Heat (1995)",
        "5": "Toy Story (2010)",  # a title in the catalog, but another film: the year guard
    },
    {
        "1": {"suggested": 0, "seen": 1, "liked": 1},
        "2": {"suggested": 0, "seen": 1, "liked": 1},
        "3": {"suggested": 1, "seen": 0, "liked": 1},
        "4": {"suggested": 1, "seen": 2, "liked": 0},
        "5": {"suggested": 1, "seen": 2, "liked": 2},
    },
)


def _write(tmp_path: Path, records: list[Any], name: str = "d.jsonl") -> Path:
    path = tmp_path / name
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def matcher(ml100k: Dataset) -> CatalogMatcher:
    return CatalogMatcher(ml100k)


def _title(dataset: Dataset, item_id: str) -> str:
    return dataset.item_title(dataset.item_map.index(item_id))


def test_a_dialogue_becomes_a_user_with_the_seekers_words_and_labels(
    tmp_path: Path, ml100k: Dataset, matcher: CatalogMatcher
) -> None:
    corpus = read_redial(_write(tmp_path, [GOOD]), ml100k, matcher.find, name="chats")
    (dialogue,) = corpus.dialogues
    titles = [_title(ml100k, i) for i in dialogue.mentioned]
    assert titles == ["Toy Story (1995)", "Babe (1995)", "Heat (1995)"]
    assert [_title(ml100k, i) for i in dialogue.liked] == ["Toy Story (1995)", "Babe (1995)"]
    assert [_title(ml100k, i) for i in dialogue.accepted] == ["Babe (1995)"]
    assert [_title(ml100k, i) for i in dialogue.rejected] == ["Heat (1995)"]
    assert dialogue.films[0].by == "seeker" and dialogue.films[1].by == "recommender"
    assert dialogue.films[1].seen is False and dialogue.films[2].seen is None
    # the seeker's words only, mentions spelled out (an unmapped film without its year)
    assert dialogue.seeker_text.splitlines() == [
        "hi, I loved Toy Story (1995) and The Matrix",
        "Babe (1995) sounds great, not a fan of Heat (1995)",
    ]
    assert corpus.user_id(dialogue) == "dialogue:chats:c1"
    info = corpus.info
    assert (info["mentions"], info["mentions_mapped"]) == (5, 3)
    assert dict((t, c) for t, c in info["unmapped"]) == {
        "The Matrix (1999)": 1,
        "Toy Story (2010)": 1,
    }


def test_saved_corpus_loads_back_the_same(
    tmp_path: Path, ml100k: Dataset, matcher: CatalogMatcher
) -> None:
    corpus = read_redial(_write(tmp_path, [GOOD]), ml100k, matcher.find, name="chats")
    folder = save_dialogues(corpus, tmp_path / "home")
    assert folder == tmp_path / "home" / "dialogues" / "chats"
    assert dialogue_names(tmp_path / "home") == ["chats"]
    loaded = load_dialogues("chats", tmp_path / "home")
    assert loaded.dialogues == corpus.dialogues and loaded.catalog == ml100k.name
    assert loaded.info["mentions_mapped"] == 3
    union, _, added = dialogue_union(rs_split(ml100k, 2020), [loaded])
    assert added.users == 1 and union.dataset.user_map.ids[-1] == "dialogue:chats:c1"
    # no staging folder is left behind
    assert [p.name for p in (tmp_path / "home" / "dialogues").iterdir()] == ["chats"]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "must be a JSON object"),
        (json.dumps({**GOOD, "conversationId": "c2", "messages": "hi"}), "no messages list"),
        (
            json.dumps({**GOOD, "conversationId": "c2", "messages": [{"senderWorkerId": 1}]}),
            "message 1 has no text",
        ),
        (json.dumps({**GOOD, "conversationId": "c2", "movieMentions": [1]}), "movieMentions"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "conversationId"}), "conversationId"),
        (json.dumps(GOOD), "conversationId c1 repeats line 1"),
    ],
)
def test_bad_lines_are_named_by_file_and_line(
    tmp_path: Path, ml100k: Dataset, matcher: CatalogMatcher, line: str, reason: str
) -> None:
    path = _write(tmp_path, [GOOD, "", line])  # a blank line 2 is skipped, the bad one is line 3
    with pytest.raises(BadRowsError) as info:
        read_redial(path, ml100k, matcher.find, name="chats")
    message = str(info.value)
    assert "d.jsonl:3: " in message and reason in message, message
    assert "--skip-bad-rows" in message
    # with skip_bad_rows the line is dropped and listed, the rest kept
    corpus = read_redial(path, ml100k, matcher.find, name="chats", skip_bad_rows=True)
    assert len(corpus.dialogues) == 1
    assert [(p["line"], reason in p["reason"]) for p in corpus.info["problems"]] == [(3, True)]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "holds no dialogue"),
        (b"\n\n", "holds no dialogue"),
        (json.dumps(GOOD).encode() + b"\n\xff\xfe\n", "d.jsonl:2: not UTF-8"),
    ],
)
def test_unusable_files_are_one_clear_error(
    tmp_path: Path, ml100k: Dataset, matcher: CatalogMatcher, content: bytes, message: str
) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_redial(path, ml100k, matcher.find, name="chats")


def test_dialogues_about_another_catalog_are_refused(
    tmp_path: Path, ml100k: Dataset, matcher: CatalogMatcher
) -> None:
    modern = _redial(
        "c9",
        [("S", "I liked @1"), ("R", "try @2")],
        {"1": "Black Panther (2018)", "2": "Coco (2017)"},
    )
    with pytest.raises(DataError, match="is --catalog the catalog"):
        read_redial(_write(tmp_path, [modern]), ml100k, matcher.find, name="chats")


def test_a_corpus_mapped_onto_another_catalog_is_a_clear_error(
    tmp_path: Path, ml100k: Dataset, matcher: CatalogMatcher
) -> None:
    corpus = read_redial(_write(tmp_path, [GOOD]), ml100k, matcher.find, name="chats")
    corpus.catalog = "movielens-small"
    with pytest.raises(DataError, match="--catalog movielens-100k"):
        dialogue_union(rs_split(ml100k, 2020), [corpus])


def test_damaged_saved_corpus_names_the_file(
    tmp_path: Path, ml100k: Dataset, matcher: CatalogMatcher
) -> None:
    corpus = read_redial(_write(tmp_path, [GOOD]), ml100k, matcher.find, name="chats")
    folder = save_dialogues(corpus, tmp_path / "home")
    data = folder / "dialogues.jsonl"
    data.write_text(data.read_text()[:40], encoding="utf-8")
    with pytest.raises(DataError, match=r"dialogues.jsonl:1 is damaged"):
        load_dialogues("chats", tmp_path / "home")
    with pytest.raises(DataError, match="unknown dialogue corpus 'other'.*found: chats"):
        load_dialogues("other", tmp_path / "home")


def test_cli_ingests_dialogues_and_reports_what_it_could_not_map(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, [GOOD])
    home = tmp_path / "home"
    rc = main(["--home", str(home), "ingest", "--dialogues", str(path), "--name", "chats"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "1 of 1 dialogues kept, 3 of 5 film mentions mapped (60.0%)" in out
    assert "The Matrix (1999) (1)" in out
    assert "--with-dialogues chats" in out
    assert load_dialogues("chats", home).catalog == "movielens-100k"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ingest", "--dialogues", "/nonexistent.jsonl"], "no such file"),
        (["ingest", "--dialogues", "X", "--items", "i.csv"], "either --dialogues"),
        (["ingest"], "needs --interactions and --items"),
        (["ingest", "--dialogues", "X", "--name", "bad name"], "name"),
    ],
)
def test_cli_dialogue_mistakes_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    rc = main(["--home", str(tmp_path), *argv])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err, err


def test_cli_bad_lines_exit_2_naming_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, [GOOD, "{oops"])
    rc = main(["--home", str(tmp_path), "ingest", "--dialogues", str(path), "--name", "x"])
    err = capsys.readouterr().err
    assert rc == 2 and "d.jsonl:2: not JSON" in err and "Traceback" not in err
    assert dialogue_names(tmp_path) == []  # nothing half-written
