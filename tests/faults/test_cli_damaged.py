"""The CLI over a damaged home: ``train --resume`` and ``chat`` check before they load.

Before: a truncated round made ``train --resume`` die in safetensors (a traceback naming no
file), and ``chat`` over scrambled conversations died in SQLite.
"""

from __future__ import annotations

import logging

import pytest

from recagents.ui.cli import main
from tests.faults.conftest import DATASET, rounds, run_dir, scramble_pages, truncate

pytestmark = pytest.mark.slow


def test_train_resume_falls_back_past_a_truncated_round(home, caplog, capsys) -> None:  # type: ignore[no-untyped-def]
    finished = rounds(home)
    truncate(finished[-1] / "user_profile.safetensors")
    args = ["--home", str(home), "train", "--dataset", DATASET, "--resume"]
    with caplog.at_level(logging.WARNING, logger="recagents"):
        assert main([*args, "--rounds", "8", "--patience", "2"]) == 0
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        f"{finished[-1].name}/user_profile.safetensors does not match its checksum" in m
        and f"falling back to round {int(finished[-2].name.split('-')[1])}" in m
        for m in warned
    ), warned
    assert "<- chosen" in capsys.readouterr().out
    assert list(run_dir(home).glob(f"damaged-*/{finished[-1].name}"))


def test_chat_over_scrambled_conversations_says_one_line(home, capsys) -> None:  # type: ignore[no-untyped-def]
    scramble_pages(home / "conversations.sqlite")
    args = ["--home", str(home), "chat", "--dataset", DATASET, "--llm", "none"]
    assert main([*args, "--message", "I loved Comedy Story 3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    assert "conversations.sqlite is corrupt (" in err[0] and "restore it from a backup" in err[0]


def test_recommend_falls_back_past_a_truncated_round(home, capsys) -> None:  # type: ignore[no-untyped-def]
    finished = rounds(home)
    truncate(finished[-1] / "item.safetensors")
    args = ["--home", str(home), "recommend", "--dataset", DATASET, "--user", "u1", "--k", "3"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "top 3 for user u1" in out
    assert list(run_dir(home).glob(f"damaged-*/{finished[-1].name}"))
