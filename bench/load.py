"""Load test: concurrent conversations through the HTTP API of a real in-process server.

Starts ``recagents serve``'s app (the same ``create_app``) on a free 127.0.0.1 port over the
trained MovieLens-100K agents (trained on first use under ``--home``), then runs N conversations of
T turns at once, each in its own thread with its own HTTP client. Reports throughput (turns/s),
p50/p95/max latency per turn, and checks that no thread saw another's turns: every thread's
stored state must hold exactly its own messages, in order, and only its own liked item.

    .venv/bin/python bench/load.py --home /tmp/servehome          # 20 x 5 turns, llm none
    .venv/bin/python bench/load.py --conversations 50 --turns 3 --json
    .venv/bin/python bench/load.py --llm local --turns 2         # the embedded SmolLM2

With ``--workers 1,2`` it measures ``recagents serve --workers N`` instead: for each N a real
server process (N replicas behind one port, sharing the home's SQLite memory or ``--memory-url``)
is started on the trained home, warmed up, loaded the same way, and stopped; one row per N:

    .venv/bin/python bench/load.py --home /tmp/servehome --workers 1,2
    .venv/bin/python bench/load.py --home /tmp/servehome --workers 1,2 --start-postgres

With a chat model it also counts where the top pick's reason came from (``reason_source``:
``llm``, ``template`` when the phrasing failed a check or timed out, ``template-busy`` when the
model was busy with other turns beyond ``--llm-wait`` seconds and the template answered at once).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recagents.env import ensure_offline  # noqa: E402  (light: no library imports)

ensure_offline()

import httpx  # noqa: E402

TURNS = (
    "I loved {title}",
    "more please",
    "something from the 90s",
    "why the first one?",
    "not that one",
    "any comedies?",
    "more please",
)


def conversation(
    url: str, index: int, anchor: dict[str, Any], turns: int, user: str | None, k: int
) -> dict[str, Any]:
    """One person: ``turns`` messages in their own thread; latency of each."""
    thread_id = f"load-{index}-{uuid.uuid4().hex[:8]}"
    sent, latencies, errors, sources = [], [], [], []
    with httpx.Client(base_url=url, timeout=120) as client:
        for turn in range(turns):
            message = TURNS[turn % len(TURNS)].format(title=anchor["title"])
            body: dict[str, Any] = {"message": message, "thread_id": thread_id, "k": k}
            if user:
                body["user_id"] = user
            began = time.perf_counter()
            response = client.post("/api/v1/chat", json=body)
            latencies.append(time.perf_counter() - began)
            sent.append(message)
            if response.status_code != 200 or response.json().get("thread_id") != thread_id:
                errors.append(f"turn {turn}: {response.status_code} {response.text[:200]}")
            elif response.json().get("items"):
                sources.append(str(response.json()["items"][0].get("reason_source")))
    return {
        "index": index,
        "thread_id": thread_id,
        "anchor": anchor["id"],
        "sent": sent,
        "latencies": latencies,
        "errors": errors,
        "sources": sources,
    }


def check_isolation(url: str, results: list[dict[str, Any]]) -> list[str]:
    """Every thread's stored state holds exactly its own turns (and only its own liked item)."""
    problems = []
    anchors = {r["anchor"] for r in results}
    with httpx.Client(base_url=url, timeout=60) as client:
        for result in results:
            view = client.get(f"/api/v1/threads/{result['thread_id']}").json()
            said = [m["text"] for m in view["messages"] if m["role"] == "user"]
            answers = [m for m in view["messages"] if m["role"] == "assistant"]
            if said != result["sent"]:
                problems.append(f"{result['thread_id']}: user messages {said} != {result['sent']}")
            if len(answers) != len(result["sent"]):
                problems.append(f"{result['thread_id']}: {len(answers)} answers")
            foreign = (set(view["liked"]) & anchors) - {result["anchor"]}
            if foreign or result["anchor"] not in view["liked"]:
                problems.append(f"{result['thread_id']}: liked {view['liked']}")
    return problems


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def run(url: str, anchors: list[dict[str, Any]], users: list[str], args: Any) -> dict[str, Any]:
    """All conversations at once; summary numbers."""
    began = time.perf_counter()
    with ThreadPoolExecutor(args.conversations) as pool:
        futures = [
            pool.submit(
                conversation,
                url,
                i,
                anchors[i],
                args.turns,
                users[i] if i % 2 else None,  # half known MovieLens users, half new users
                args.k,
            )
            for i in range(args.conversations)
        ]
        results = [f.result() for f in futures]
    wall = time.perf_counter() - began
    latencies = [x for r in results for x in r["latencies"]]
    return {
        "conversations": args.conversations,
        "turns_each": args.turns,
        "turns": len(latencies),
        "wall_s": round(wall, 2),
        "throughput_turns_per_s": round(len(latencies) / wall, 2),
        "p50_s": round(statistics.median(latencies), 3),
        "p95_s": round(percentile(latencies, 95), 3),
        "max_s": round(max(latencies), 3),
        "errors": [e for r in results for e in r["errors"]],
        "top_reason_sources": dict(Counter(s for r in results for s in r["sources"])),
        "cross_talk": check_isolation(url, results),
    }


@contextlib.contextmanager
def served(home: Path | None, workers: int, args: Any, log: Path) -> Iterator[str]:
    """``recagents serve --workers N`` on a free loopback port; its URL once all are ready."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    command = [sys.executable, "-m", "recagents.ui.cli"]
    command += ["--home", str(home)] if home else []
    command += ["--memory-url", args.memory_url] if args.memory_url else []
    command += ["serve", "--port", str(port), "--llm", args.llm, "--workers", str(workers)]
    with log.open("w") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=os.environ)
    url = f"http://127.0.0.1:{port}"
    try:
        began = time.monotonic()
        while log.read_text().count("recagents.ui.server: ready:") < workers:
            if server.poll() is not None or time.monotonic() - began > 1800:
                raise SystemExit(f"serve --workers {workers} did not start:\n{log.read_text()}")
            time.sleep(1)
        yield url
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()


def run_workers(args: Any) -> int:
    """One real server per worker count; one conversation alone, then all at once, each."""
    rows = []
    for workers in [int(w) for w in str(args.workers).split(",") if w.strip()]:
        log = Path(f"/tmp/recagents-load-w{workers}-{os.getpid()}.log")
        began = time.perf_counter()
        with served(args.home, workers, args, log) as url:
            started = time.perf_counter() - began
            with httpx.Client(base_url=url, timeout=120) as client:
                anchors = client.get(
                    "/api/v1/items", params={"limit": max(args.conversations, 1) * 2}
                ).json()["items"][1::2][: args.conversations]
                for anchor in anchors:
                    year = f" ({anchor['year']})" if anchor.get("year") else ""
                    anchor["title"] = f"{anchor['title']}{year}"

            # Every replica warm: fresh connections at once (one keep-alive client would reach
            # one replica only; the kernel hands each new connection to a waiting replica).
            def warm(index: int) -> None:
                body = {"message": "I loved Heat", "thread_id": f"warm-{index}"}
                httpx.post(f"{url}/api/v1/chat", json=body, timeout=120)

            with ThreadPoolExecutor(4 * workers) as pool:
                list(pool.map(warm, range(8 * workers)))
            users = [str(u) for u in range(1, args.conversations + 1)]
            one = run(url, anchors, users, argparse.Namespace(**{**vars(args), "conversations": 1}))
            many = run(url, anchors, users, args)
        rows.append({"workers": workers, "start_s": round(started, 1), "one": one, "load": many})
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(
            "| workers | turns | wall s | turns/s | p50 s | p95 s | max s | errors | cross-talk |"
            " 1 conversation p50 s |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        for row in rows:
            many = row["load"]
            print(
                f"| {row['workers']} | {many['turns']} | {many['wall_s']} | "
                f"{many['throughput_turns_per_s']} | {many['p50_s']} | {many['p95_s']} | "
                f"{many['max_s']} | {len(many['errors'])} | {len(many['cross_talk'])} | "
                f"{row['one']['p50_s']} |"
            )
    bad = [r for r in rows if r["load"]["errors"] or r["load"]["cross_talk"] or r["one"]["errors"]]
    for row in bad:
        print(row["load"]["errors"][:3], row["load"]["cross_talk"][:3], file=sys.stderr)
    return 1 if bad else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="recagents home (default: RECAGENTS_HOME/~)")
    parser.add_argument("--conversations", type=int, default=20)
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--llm", default="none", help="none (default), local or a spec")
    parser.add_argument("--checkpointer", default="sqlite", choices=["sqlite", "memory"])
    parser.add_argument(
        "--workers",
        help="comma-separated replica counts (e.g. 1,2): measure `recagents serve --workers N` "
        "as a separate process for each, instead of the in-process app",
    )
    parser.add_argument("--memory-url", help="with --workers: the replicas' shared memory")
    parser.add_argument(
        "--start-postgres",
        action="store_true",
        help="with --workers: start a throwaway Postgres on 127.0.0.1 (tests.support.postgres) "
        "and use it as the memory",
    )
    parser.add_argument(
        "--llm-wait",
        type=float,
        default=None,
        help="longest wait (s) for a busy chat model before the template answers "
        "(default: the llm_wait_s setting, RECAGENTS_LLM_WAIT_S)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.workers and args.start_postgres:
        from tests.support.postgres import running_postgres

        with running_postgres() as postgres:
            args.memory_url = postgres.url
            return run_workers(args)
    if args.workers:
        return run_workers(args)

    import torch

    from recagents.config import Settings
    from recagents.ui.app import create_app
    from recagents.ui.facade import Recommender
    from tests.support.server import BackgroundServer

    settings = Settings.load(home=args.home, llm_wait_s=args.llm_wait)
    torch.set_num_threads(settings.threads)
    began = time.perf_counter()
    recommender = Recommender.load(
        settings, llm=args.llm, checkpointer=args.checkpointer, progress=True
    )
    print(f"loaded {recommender.dataset.name} in {time.perf_counter() - began:.1f} s")
    app = create_app(recommender)
    service = app.state.service
    anchors = service.search("", max(args.conversations, 1) * 2)[1::2][: args.conversations]
    for anchor in anchors:  # the title as the parser knows it best: "Heat (1995)"
        anchor["title"] = service.display_title(anchor["id"])
    users = service.users(args.conversations)
    with BackgroundServer(app) as server:
        with httpx.Client(base_url=server.url, timeout=120) as client:  # warm-up, not measured
            client.post("/api/v1/chat", json={"message": "I loved Heat", "thread_id": "warm"})
        one = run(
            server.url, anchors, users, argparse.Namespace(**{**vars(args), "conversations": 1})
        )
        many = run(server.url, anchors, users, args)
    summary = {
        "dataset": recommender.dataset.name,
        "llm": args.llm,
        "llm_wait_s": settings.llm_wait_s,
        "sequential": one,
        "load": many,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        for name, result in (("1 conversation", one), (f"{args.conversations} at once", many)):
            print(
                f"{name:>16}: {result['turns']} turns in {result['wall_s']} s -> "
                f"{result['throughput_turns_per_s']} turns/s; latency p50 {result['p50_s']} s, "
                f"p95 {result['p95_s']} s, max {result['max_s']} s; errors "
                f"{len(result['errors'])}; top reasons {result['top_reason_sources']}; "
                f"cross-talk {'none' if not result['cross_talk'] else result['cross_talk']}"
            )
    ok = not many["errors"] and not many["cross_talk"] and not one["errors"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
