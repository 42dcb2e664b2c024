"""``kill -9`` of a real ``recagents ingest`` while it writes: the next ingest cleans up."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recagents.data import load_dataset
from recagents.ui.cli import main


def _big_catalog(folder: Path) -> tuple[Path, Path]:
    """300,000 interactions: writing them takes about a second, time enough to kill it there."""
    rng = random.Random(0)
    items = folder / "items.csv"
    items.write_text("item_id,title\n" + "".join(f"m{i},Film {i}\n" for i in range(2000)))
    rows = (
        f"u{u},m{i},{1 + (u + i) % 5},{u * 3000 + i}\n"
        for u in range(3000)
        for i in rng.sample(range(2000), 100)
    )
    ratings = folder / "ratings.csv"
    ratings.write_text("user_id,item_id,rating,timestamp\n" + "".join(rows))
    return ratings, items


def test_a_staging_folder_left_by_a_killed_ingest_is_removed_by_the_next(tmp_path: Path) -> None:
    ratings, items = _big_catalog(tmp_path)
    home = tmp_path / "home"
    root = home / "datasets"
    command = [sys.executable, "-m", "recagents.ui.cli", "--home", str(home), "ingest"]
    command += ["--interactions", str(ratings), "--items", str(items), "--name", "big"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while not (root.exists() and any(p.name.startswith(".big.") for p in root.iterdir())):
            if proc.poll() is not None:
                pytest.fail(f"ingest ended before it was killed: {proc.stderr.read()!r}")
            if time.monotonic() > deadline:
                pytest.fail("ingest never started writing")
            time.sleep(0.002)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()  # type: ignore[union-attr]
    left = [p for p in root.iterdir() if p.name.startswith(".big.")]
    assert left and not (root / "big").exists()  # the kill left half a dataset aside, hidden

    small = tmp_path / "small.csv"
    small.write_text("user_id,item_id\nu1,m1\nu2,m2\nu2,m1\n")
    assert (
        main(
            ["--home", str(home), "ingest", "--interactions", str(small)]
            + ["--items", str(items), "--name", "small"]
        )
        == 0
    )
    assert sorted(p.name for p in root.iterdir()) == ["small"]
    assert load_dataset("small", home=home).n_users == 2
