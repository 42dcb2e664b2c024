"""Resuming a run repeats the uninterrupted run exactly, and records each round once.

In process, on the block catalog (seconds); the real ``kill -9`` of a ``recagents train``
process is in ``tests/faults/test_train_kill_resume.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

import recagents.agents  # noqa: F401
from recagents.agents.checkpoints import RunFolder
from recagents.agents.registry import registry
from recagents.vectorstore.memory import InMemoryStore
from tests.agent_fixtures import block_context, block_coordinator

ROUNDS = 4


def _weights(folder: Path) -> dict[str, dict[str, np.ndarray]]:
    return {p.name: load_file(str(p)) for p in sorted(folder.glob("*.safetensors"))}


def _assert_same_weights(left: Path, right: Path) -> None:
    a, b = _weights(left), _weights(right)
    assert a.keys() == b.keys() and a
    for name in a:
        assert a[name].keys() == b[name].keys()
        for key in a[name]:
            assert np.array_equal(a[name][key], b[name][key]), f"{name}:{key} differs"


def _rounds(run: Path) -> list[dict]:
    return json.loads((run / "metrics.json").read_text())["rounds"]


def test_a_run_resumed_after_a_crash_in_round_2_repeats_the_uninterrupted_run(
    tmp_path, monkeypatch
):
    context = block_context()
    options = {"namespace": "b", "max_rounds": ROUNDS, "patience": ROUNDS}
    whole = tmp_path / "whole"
    block_coordinator(context, InMemoryStore(), run_dir=whole, **options).run()

    # the item agent (second in a round) crashes in round 2, after the user agent has trained
    # and published its round-2 vectors: the store holds half a round
    run, store, calls = tmp_path / "crashed", InMemoryStore(), {"n": 0}
    original = registry.get("item").partial_fit

    def crash_in_round_2(self, ctx, peers):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("power cut")
        return original(self, ctx, peers)

    monkeypatch.setattr(registry.get("item"), "partial_fit", crash_in_round_2)
    with pytest.raises(RuntimeError, match="power cut"):
        block_coordinator(context, store, run_dir=run, **options).run()
    monkeypatch.setattr(registry.get("item"), "partial_fit", original)
    assert [r["round"] for r in _rounds(run)] == [0, 1]

    block_coordinator(context, store, run_dir=run, **options).run(resume=True)
    expected, resumed = _rounds(whole), _rounds(run)
    assert [r["round"] for r in resumed] == list(range(ROUNDS + 1))
    for a, b in zip(expected, resumed, strict=True):
        assert a["valid"] == b["valid"], f"round {a['round']}"
        assert a["agents"] == b["agents"], f"round {a['round']}: losses differ"
    for number in range(ROUNDS + 1):
        _assert_same_weights(whole / f"round-{number:04d}", run / f"round-{number:04d}")
    _assert_same_weights(whole / "final", run / "final")


def test_a_run_resumed_after_round_0_records_each_round_once(tmp_path):
    # what a first `serve` stopped during training leaves: round 0 saved, nothing after it
    context = block_context()
    run, store = tmp_path / "run", InMemoryStore()
    block_coordinator(context, store, namespace="b", run_dir=run).seed_round()
    assert [r["round"] for r in _rounds(run)] == [0]

    block_coordinator(context, store, namespace="b", run_dir=run, max_rounds=2, patience=2).run(
        resume=True
    )
    assert [r["round"] for r in _rounds(run)] == [0, 1, 2]


def test_a_round_saved_but_not_yet_in_metrics_is_trained_again_not_skipped(tmp_path, monkeypatch):
    # killed between renaming round-0002 into place and rewriting metrics.json
    context = block_context()
    options = {"namespace": "b", "max_rounds": 3, "patience": 3}
    whole, run = tmp_path / "whole", tmp_path / "run"
    block_coordinator(context, InMemoryStore(), run_dir=whole, **options).run()
    store = InMemoryStore()
    original = RunFolder.write_report

    def killed_in_round_2(self, report):  # type: ignore[no-untyped-def]
        if report.rounds[-1].round == 2:
            raise RuntimeError("power cut")
        original(self, report)

    monkeypatch.setattr(RunFolder, "write_report", killed_in_round_2)
    with pytest.raises(RuntimeError, match="power cut"):
        block_coordinator(context, store, run_dir=run, **options).run()
    monkeypatch.setattr(RunFolder, "write_report", original)
    assert (run / "round-0002" / "DONE").exists()
    assert [r["round"] for r in _rounds(run)] == [0, 1]

    block_coordinator(context, store, run_dir=run, **options).run(resume=True)
    assert [r["round"] for r in _rounds(run)] == [0, 1, 2, 3]
    assert [r["valid"] for r in _rounds(run)] == [r["valid"] for r in _rounds(whole)]
    # only the last round keeps the optimiser and random states (the only one resumed from)
    kept = sorted(p.parent.name for p in run.glob("round-*/rng.safetensors"))
    assert kept == ["round-0003"]


def test_a_round_saved_before_training_state_was_kept_still_resumes(tmp_path, caplog):
    context = block_context()
    run, store = tmp_path / "run", InMemoryStore()
    block_coordinator(context, store, namespace="b", run_dir=run, max_rounds=1).run()
    for extra in (*run.glob("round-0001/*.optim.safetensors"), *run.glob("round-0001/rng.*")):
        extra.unlink()
    with caplog.at_level("WARNING"):
        block_coordinator(context, store, namespace="b", run_dir=run, max_rounds=2).run(resume=True)
    assert [r["round"] for r in _rounds(run)] == [0, 1, 2]
    assert "no optimiser or random state" in caplog.text
