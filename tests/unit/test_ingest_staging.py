"""Staging folders of an ``ingest`` killed mid-write are cleaned by the next one, and only those.

The real ``kill -9`` of an ingest process is in ``tests/faults/test_ingest_kill.py``; here the
leftovers are planted with the pid of a process that has really ended, and of one that is alive.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from recagents.data import load_dataset
from recagents.data.ingest import datasets_dir, read_catalog, save_ingested
from tests.unit.test_ingest import INTERACTIONS, ITEMS, write


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_the_next_ingest_removes_dead_staging_keeps_live_ones_and_recovers_a_retired_dataset(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    inter, items = write(tmp_path, "i.csv", INTERACTIONS), write(tmp_path, "m.csv", ITEMS)
    dataset, report = read_catalog(inter, items, name="shop")
    save_ingested(dataset, report, home, "old")
    root = datasets_dir(home)
    dead, alive = _dead_pid(), os.getpid()

    stale = root / f".shop.staging-{dead}-x1y2"  # killed while writing
    stale.mkdir()
    (stale / "interactions.tsv").write_text("half a file")
    live = root / f".shop.staging-{alive}-a1b2"  # another ingest still writing
    live.mkdir()
    # killed between moving "old" aside and moving its replacement in: "old" is missing
    retired = root / f".old.old-{dead}-q9w8"
    retired.mkdir()
    (root / "old").rename(retired / "old")

    save_ingested(dataset, report, home, "shop")

    assert not stale.exists()
    assert live.exists()
    assert not retired.exists()
    assert load_dataset("old", home=home).n_items == dataset.n_items  # put back, whole
    assert sorted(p.name for p in root.iterdir()) == sorted(["old", "shop", live.name])
