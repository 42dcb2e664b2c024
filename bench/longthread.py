"""Long threads: one conversation of N turns (``--llm none``) on the SQLite checkpointer.

Why: every turn reads and rewrites the thread's checkpointed state, so whatever a thread keeps
without bound (every graph step's checkpoint, every message, every id shown) makes each later
turn slower and the database bigger. This prints the checkpoint database's size and rows, the
thread's state size, and the turn latency of the first and the last 100 turns.

With ``--before-python`` it runs the same thread twice, back to back, side by side in one
table: once with that interpreter (e.g. the main checkout's venv: the code before the change),
once with this one. Each run is a fresh process and a fresh database; the agents are loaded
from ``--home`` (trained there on first use; the bench never writes into it: the database is a
temporary file).

    V/bin/python bench/longthread.py --home /tmp/home --turns 1000 \\
        --before-python /work/main/.venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MESSAGES = (
    "recommend me a movie",
    "more please",
    "something from the 90s",
    "any comedies?",
    "more please",
    "why the first one?",
)


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def db_bytes(path: Path) -> int:
    """The database's size on disk, with its WAL and shared-memory files."""
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def run_thread(home: Path, turns: int, window: int) -> dict[str, Any]:
    """One thread of ``turns`` turns in this process; its figures."""
    from langgraph.checkpoint.sqlite import SqliteSaver

    from recagents.config import Settings
    from recagents.env import ensure_offline
    from recagents.graph.builder import load_deps
    from recagents.ui.facade import Recommender

    ensure_offline()
    settings = Settings.load(home=home)
    deps = load_deps(settings, llm="none")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "conversations.sqlite"
        connection = sqlite3.connect(str(path), check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        rec = Recommender(deps.engine, settings, checkpointer=SqliteSaver(connection))
        latencies: list[float] = []
        for n in range(turns):
            began = time.perf_counter()
            rec.chat(MESSAGES[n % len(MESSAGES)], "long")
            latencies.append(time.perf_counter() - began)
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        rows = {
            table: connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("checkpoints", "writes")
        }
        size = db_bytes(path)
        state = rec.state("long")
    first, last = latencies[:window], latencies[-window:]
    return {
        "turns": turns,
        "db_mb": size / 1e6,
        "checkpoint_rows": rows["checkpoints"],
        "write_rows": rows["writes"],
        "state_kb": len(pickle.dumps(state)) / 1e3,
        "messages_kept": len(state.get("messages") or []),
        "shown_kept": len(state.get("shown") or []),
        "first_p50_ms": 1e3 * statistics.median(first),
        "first_p95_ms": 1e3 * percentile(first, 0.95),
        "last_p50_ms": 1e3 * statistics.median(last),
        "last_p95_ms": 1e3 * percentile(last, 0.95),
    }


def in_subprocess(python: str, home: Path, turns: int, window: int) -> dict[str, Any]:
    """:func:`run_thread` under another interpreter (another checkout's code)."""
    # One torch thread in both runs: on a shared machine, torch's thread pool fighting other
    # processes adds seconds of noise to the encoder's part of a turn, in either run.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    out = subprocess.run(
        [
            python,
            __file__,
            "--home",
            str(home),
            "--turns",
            str(turns),
            "--window",
            str(window),
            "--worker",
        ],
        check=True,
        env=env,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    """Parse options, run, print the table (or the worker's JSON line)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="trained home (read only)")
    parser.add_argument("--turns", type=int, default=1000)
    parser.add_argument("--window", type=int, default=100, help="turns in each latency window")
    parser.add_argument("--before-python", help="interpreter of the code to compare against")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(run_thread(args.home, args.turns, args.window)))
        return
    runs: dict[str, dict[str, Any]] = {}
    if args.before_python:
        runs["before"] = in_subprocess(args.before_python, args.home, args.turns, args.window)
    runs["after"] = in_subprocess(sys.executable, args.home, args.turns, args.window)
    w, n = args.window, args.turns
    rows = [
        ("checkpoint DB (MB)", "db_mb", "{:.1f}"),
        ("checkpoint rows", "checkpoint_rows", "{}"),
        ("write rows", "write_rows", "{}"),
        ("thread state (kB, pickled)", "state_kb", "{:.0f}"),
        ("messages kept", "messages_kept", "{}"),
        ("ids kept in shown", "shown_kept", "{}"),
        (f"turns 1-{w}: p50 (ms)", "first_p50_ms", "{:.0f}"),
        (f"turns 1-{w}: p95 (ms)", "first_p95_ms", "{:.0f}"),
        (f"turns {n - w + 1}-{n}: p50 (ms)", "last_p50_ms", "{:.0f}"),
        (f"turns {n - w + 1}-{n}: p95 (ms)", "last_p95_ms", "{:.0f}"),
    ]
    names = list(runs)
    print(f"One {n}-turn thread, --llm none, SQLite checkpointer")
    print("| | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for label, key, fmt in rows:
        print(f"| {label} | " + " | ".join(fmt.format(runs[r][key]) for r in names) + " |")


if __name__ == "__main__":
    main()
