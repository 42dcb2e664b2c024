"""Real ``recagents train`` processes: one per run at a time, and ``kill -9`` then resume exactly.

Every process is a real CLI subprocess on a small ingested catalog (real encoder, embedded
ChromaDB). Timing is made deterministic with signals rather than sleeps: the first process is
frozen with SIGSTOP at the moment under test (holding the lock; just after round 1's checkpoint)
and then continued or killed with SIGKILL.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from recagents.ui.cli import main

pytestmark = pytest.mark.slow

GENRES = ["Drama", "Comedy", "Horror", "Western", "Action", "Romance"]
ROUNDS = ["--rounds", "4", "--patience", "4"]
RUN = "syn-s2020-default"


def _write_catalog(folder: Path) -> None:
    """150 users who mostly like one genre: big enough that a round takes a few seconds."""
    rng = random.Random(0)
    items = ["item_id,title,year,genres,plot"]
    for i in range(90):
        genre = GENRES[i % 6]
        items.append(f"m{i},{genre} Story {i},{1980 + i % 40},{genre},A {genre.lower()} film {i}")
    inter = ["user_id,item_id,rating,timestamp"]
    for u in range(150):
        pool = [i for i in range(90) if i % 6 == u % 6]
        for i in dict.fromkeys(rng.sample(pool, 12) + rng.sample(range(90), 4)):
            inter.append(f"u{u},m{i},{rng.randint(1, 5)},{1_000_000 + u * 100 + i}")
    (folder / "items.csv").write_text("\n".join(items) + "\n")
    (folder / "ratings.csv").write_text("\n".join(inter) + "\n")


def _train(home: Path, *extra: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "recagents.ui.cli", "--home", str(home), "train"]
    command += ["--dataset", "syn", *ROUNDS, *extra]
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy()
    )


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test starts; any still running at the end are killed by pid."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
            proc.wait()


def _finish(proc: subprocess.Popen[str], timeout: float = 420) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def _recorded_rounds(run: Path) -> list[int]:
    """The rounds ``metrics.json`` records (none while it is missing or being replaced)."""
    try:
        return [int(r["round"]) for r in json.loads((run / "metrics.json").read_text())["rounds"]]
    except (OSError, ValueError, KeyError):
        return []


def _wait_for(proc: subprocess.Popen[str], done: Callable[[], bool], timeout: float = 420) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"train ended (rc {proc.returncode}) before the awaited moment: {err}")
        if time.monotonic() > deadline:
            pytest.fail("timed out waiting for the training process")
        time.sleep(0.01)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with the catalog ingested and trained once without interruption."""
    root = tmp_path_factory.mktemp("train-runs")
    _write_catalog(root)
    home = root / "reference"
    csvs = ["--interactions", str(root / "ratings.csv"), "--items", str(root / "items.csv")]
    assert main(["--home", str(home), "ingest", *csvs, "--name", "syn"]) == 0
    proc = _train(home)
    rc, _, err = _finish(proc)
    assert rc == 0, err
    return home


def _home_like(reference: Path, home: Path) -> Path:
    """A fresh home with the reference's dataset and encoder cache (no run, no store)."""
    shutil.copytree(reference / "datasets", home / "datasets")
    shutil.copytree(reference / "cache", home / "cache")
    return home


def _all_arrays(folder: Path) -> dict[str, dict[str, np.ndarray]]:
    return {p.name: load_file(str(p)) for p in sorted(folder.glob("*.safetensors"))}


def _assert_same_run(expected: Path, actual: Path) -> None:
    """Same rounds (metrics, losses), same weights, optimiser and RNG states, bit for bit."""
    a = json.loads((expected / "metrics.json").read_text())
    b = json.loads((actual / "metrics.json").read_text())
    assert [r["round"] for r in b["rounds"]] == [r["round"] for r in a["rounds"]]
    for x, y in zip(a["rounds"], b["rounds"], strict=True):
        assert (x["valid"], x["agents"]) == (y["valid"], y["agents"]), f"round {x['round']}"
    assert (a["best_round"], a["stopped"]) == (b["best_round"], b["stopped"])
    folders = sorted(p.name for p in expected.iterdir() if p.is_dir())
    assert folders == sorted(p.name for p in actual.iterdir() if p.is_dir())
    for name in folders:
        left, right = _all_arrays(expected / name), _all_arrays(actual / name)
        assert left.keys() == right.keys() and left, name
        for file in left:
            for key in left[file]:
                same = np.array_equal(left[file][key], right[file][key])
                assert same, f"{name}/{file}:{key} differs"


def test_a_second_train_on_the_same_run_stops_at_once_naming_the_first(
    reference: Path, tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    home = _home_like(reference, tmp_path / "home")
    lock = home / "runs" / f"{RUN}.lock"
    first = _train(home)
    processes.append(first)

    def holds_lock() -> bool:
        return lock.exists() and f'"pid": {first.pid}' in lock.read_text()

    _wait_for(first, holds_lock)
    os.kill(first.pid, signal.SIGSTOP)  # the first holds the lock for as long as the second runs
    try:
        second = _train(home)
        processes.append(second)
        began = time.monotonic()
        rc, _, err = _finish(second)
        lines = [line for line in err.splitlines() if line.startswith("error:")]
        assert rc == 2, err
        assert len(lines) == 1, err
        assert f"pid {first.pid}" in lines[0] and "since" in lines[0] and "train" in lines[0]
        assert str(lock) in lines[0]
        assert "Traceback" not in err
        assert time.monotonic() - began < 120  # it stops instead of waiting for the first
    finally:
        os.kill(first.pid, signal.SIGCONT)
    rc, _, err = _finish(first)
    assert rc == 0, err
    _assert_same_run(reference / "runs" / RUN, home / "runs" / RUN)  # the first is unharmed
    assert lock.read_text() == ""  # released and cleared on a clean exit


def test_kill_9_in_round_2_then_resume_repeats_the_uninterrupted_run(
    reference: Path, tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    home = _home_like(reference, tmp_path / "home")
    run = home / "runs" / RUN
    victim = _train(home)
    processes.append(victim)
    # Round 1 is finished once its folder is in place *and* metrics.json records it (written
    # just after the folder; stopping the process between the two was a race under load).
    _wait_for(
        victim,
        lambda: (run / "round-0001" / "DONE").exists() and _recorded_rounds(run) == [0, 1],
    )
    os.kill(victim.pid, signal.SIGSTOP)  # freeze it in round 2 to look, then kill it there
    assert not (run / "round-0002" / "DONE").exists(), "round 2 finished before the kill"
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL
    assert not (run / "final").exists()
    rounds = json.loads((run / "metrics.json").read_text())["rounds"]
    assert [r["round"] for r in rounds] == [0, 1]

    resumed = _train(home, "--resume")
    processes.append(resumed)
    rc, _, err = _finish(resumed)
    assert rc == 0, err
    # the dead process's lock was taken over, with a note naming it
    assert "took over the lock" in err and f"pid {victim.pid}" in err, err
    _assert_same_run(reference / "runs" / RUN, run)
