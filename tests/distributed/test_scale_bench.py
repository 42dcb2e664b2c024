"""``bench/scale.py --quick`` runs its whole path: synthetic data, Ray actors, Chroma, usage."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from recagents.agents.distributed import RAY_ENV

ROOT = Path(__file__).resolve().parents[2]


def test_the_quick_scale_benchmark_reports_every_figure():
    env = {**os.environ, **RAY_ENV, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "scale.py"), "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    (size,) = report["sizes"]
    assert size["oracle"] > size["popularity"]
    (run,) = size["runs"]
    assert run["shards"] == 2
    assert set(run["peak_rss_mb"]) == {"user_profile-0", "user_profile-1", "item", "ranking"}
    assert all(mb > 50 for mb in run["peak_rss_mb"].values())
    # every round reads and writes vectors through the store: at least the users once
    assert run["store_bytes_per_round"] >= size["users"] * 32 * 4
    assert 0.0 < run["best_valid_ndcg@10"] <= size["oracle"] + 0.1
