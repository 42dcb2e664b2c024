"""The interaction log's file format: append, torn tails, forget/clear/export, the fold."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from recagents.data.feedback import FeedbackLog, LogEntry, thread_evidence
from recagents.errors import DataError


def entry(thread: str, **lists: object) -> LogEntry:
    return LogEntry(thread_id=thread, time=1.0, catalog="blocks", **lists)  # type: ignore[arg-type]


def test_entries_round_trip_in_order(tmp_path: Path) -> None:
    log = FeedbackLog.in_home(tmp_path)
    written = [
        entry("a", message="I loved Film 1", liked=("i1",), shown=("i2", "i3")),
        entry("b", source="feedback", disliked=("i9",)),
        entry("a", message="and Film 3", liked=("i3",), accepted=("i3",)),
    ]
    assert log.append(written) == 3
    assert log.entries() == written
    assert log.threads() == ["a", "b"]


def test_empty_entries_are_not_written(tmp_path: Path) -> None:
    log = FeedbackLog.in_home(tmp_path)
    assert log.append([entry("a")]) == 0
    assert log.entries() == []


def test_a_torn_last_line_is_skipped_and_the_next_append_starts_a_new_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = FeedbackLog.in_home(tmp_path)
    log.append([entry("a", liked=("i1",))])
    line = entry("a", liked=("i2",)).to_json()
    with open(log.path, "ab") as handle:  # a writer killed in the middle of its line
        handle.write(line[: len(line) // 2].encode())
    with caplog.at_level(logging.WARNING):
        result = log.read()
    assert [e.liked for e in result.entries] == [("i1",)]
    assert result.skipped == [(2, "torn (no line end: a write was cut off)")]
    assert "log.jsonl:2 skipped" in caplog.text
    log.append([entry("a", liked=("i3",))])
    assert [e.liked for e in log.entries()] == [("i1",), ("i3",)]


def test_a_damaged_line_costs_that_line_only(tmp_path: Path) -> None:
    log = FeedbackLog.in_home(tmp_path)
    log.append([entry("a", liked=("i1",))])
    with open(log.path, "ab") as handle:
        handle.write(b'{"v": 1, "thread_id": "a", "source": "nonsense"}\n\xff\xfe\n')
    log.append([entry("a", liked=("i2",))])
    result = log.read()
    assert [e.liked for e in result.entries] == [("i1",), ("i2",)]
    assert [n for n, _ in result.skipped] == [2, 3]


def test_forget_removes_one_thread_and_keeps_the_others(tmp_path: Path) -> None:
    log = FeedbackLog.in_home(tmp_path)
    log.append([entry("a", liked=("i1",)), entry("b", liked=("i2",)), entry("a", seen=("i3",))])
    assert log.forget("a") == 2
    assert [e.thread_id for e in log.entries()] == ["b"]
    assert log.forget("a") == 0
    assert not list(tmp_path.glob("feedback/.log.jsonl.*")), "no temporary file left behind"
    log.append([entry("c", liked=("i4",))])  # appends still work on the rewritten file
    assert log.threads() == ["b", "c"]


def test_clear_and_export(tmp_path: Path) -> None:
    log = FeedbackLog.in_home(tmp_path)
    log.append([entry("a", liked=("i1",)), entry("b", liked=("i2",))])
    out = tmp_path / "out" / "export.jsonl"
    assert log.export(out) == 2
    assert FeedbackLog(out).entries() == log.entries()
    assert log.clear() == 2
    assert log.entries() == []
    with pytest.raises(DataError, match="cannot write"):
        log.export(tmp_path / "out" / "export.jsonl" / "x")  # a file where a folder must be


def test_the_fold_gives_each_thread_a_dialogue_shape() -> None:
    entries = [
        entry("a", message="I loved Film 1", liked=("i1",), shown=("i2", "i3")),
        entry("a", source="feedback", liked=("i2",), accepted=("i2",)),
        entry("a", message="not Film 1, I meant Film 5", liked=("i5",), retracted=("i1",)),
        entry("a", message="seen Film 3, hated it", disliked=("i3",), seen=("i3",)),
        entry("b", message="westerns"),
        LogEntry("c", 1.0, "other-catalog", liked=("x",)),
    ]
    a, b = thread_evidence(entries, catalog="blocks")
    assert a.seeker_text == "I loved Film 1\nnot Film 1, I meant Film 5\nseen Film 3, hated it"
    assert a.liked_items == ["i2", "i5"]
    assert a.disliked_items == ["i3"]
    assert a.accepted_items == ["i2"]
    assert a.suggested == ["i2", "i3"]
    assert a.first["i1"] == ("seeker", 0) and a.first["i2"] == ("recommender", 0)
    assert b.seeker_text == "westerns" and not b.first


def test_a_thread_becomes_a_dialogue_when_the_corpus_module_exists() -> None:
    pytest.importorskip("recagents.data.dialogues")
    (a,) = thread_evidence(
        [
            entry("a", message="I loved Film 1", liked=("i1",), shown=("i2",)),
            entry("a", source="feedback", liked=("i2",), accepted=("i2",)),
        ]
    )
    dialogue = a.to_dialogue()
    assert dialogue.dialogue_id == "a"
    assert dialogue.liked == ("i1", "i2")
    assert dialogue.accepted == ("i2",)


def test_the_log_folds_into_thread_users_of_the_union() -> None:
    from recagents.data.feedback import feedback_corpus
    from recagents.data.splits import rs_split
    from recagents.data.union import HOLDOUT_COLUMN, dialogue_union
    from tests.agent_fixtures import block_dataset

    entries = [
        entry("a", message="I loved Film 1", liked=("i1",), shown=("i9", "i2")),
        entry("a", source="feedback", liked=("i9",), accepted=("i9",)),
        entry("b", message="westerns please"),  # no film: not a user
        entry("c", message="I hated Film 3", disliked=("i3",), shown=("i4",)),
    ]
    corpus = feedback_corpus(entries, "blocks", "feedback-test")
    assert [d.dialogue_id for d in corpus.dialogues] == ["a", "c"]
    split = rs_split(block_dataset(), 0)
    union, weights, info = dialogue_union(split, [corpus], 10.0)
    assert union.dataset.n_users == split.dataset.n_users + 2
    a = union.dataset.user_map.index("dialogue:feedback-test:a")
    rows = union.train[union.train["user"] == a]
    items = {union.dataset.item_map.external(int(i)) for i in rows["item"]}
    assert items == {"i1", "i9", "i2"}  # named, accepted, and shown (not turned down)
    accepted = rows[rows[HOLDOUT_COLUMN]]["item"].tolist()
    assert [union.dataset.item_map.external(int(i)) for i in accepted] == ["i9"]
    c = union.dataset.user_map.index("dialogue:feedback-test:c")
    c_items = union.train[union.train["user"] == c]["item"].tolist()
    assert [union.dataset.item_map.external(int(i)) for i in c_items] == ["i4"]
    assert weights[a] == 10.0 and info.users == 2


def test_cli_exports_clears_and_refuses_a_feedback_round_on_an_empty_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from recagents.ui.cli import main

    log = FeedbackLog.in_home(tmp_path)
    log.append([entry("a", liked=("i1",)), entry("b", liked=("i2",))])
    out = tmp_path / "export.jsonl"
    assert main(["--home", str(tmp_path), "feedback", "export", "--out", str(out)]) == 0
    assert FeedbackLog(out).entries() == log.entries()
    assert main(["--home", str(tmp_path), "feedback", "forget", "--thread", "a"]) == 0
    assert log.threads() == ["b"]
    assert main(["--home", str(tmp_path), "feedback", "forget", "--thread", "a"]) == 2
    from recagents.data.dialogues import dialogue_names
    from recagents.data.feedback import snapshot_feedback

    used = snapshot_feedback(tmp_path, "blocks")
    assert snapshot_feedback(tmp_path, "blocks") != used  # another round's snapshot
    run = tmp_path / "runs" / "blocks-s2020-default"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(f'{{"dialogues": {{"corpora": ["{used}"]}}}}')
    assert main(["--home", str(tmp_path), "feedback", "clear"]) == 0
    assert log.entries() == []
    assert dialogue_names(tmp_path) == [used]  # the run's snapshot stays, the other goes
    capsys.readouterr()
    assert main(["--home", str(tmp_path), "train", "--with-feedback", "--rounds", "1"]) == 2
    assert "holds no thread that named a film" in capsys.readouterr().err
