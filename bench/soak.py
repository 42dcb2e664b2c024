"""Soak test: N clients for M minutes on a real in-process server: memory, latency, lost updates.

Starts the app ``recagents serve`` runs (``create_app``) on a free 127.0.0.1 port over the trained
MovieLens-100K agents (as ``bench/load.py`` does), then runs ``--clients`` clients for
``--minutes`` minutes. Each client loops: a chat turn or a 👍 (``/feedback``), on its own thread
or on one of ``--shared`` threads that every client writes to, so concurrent writes to one thread
happen all the time. Every turn carries a unique tag, and only additive actions are sent (no
"not that one", no 👎), so at the end every turn and every like the server acknowledged (200) must
be in the thread's stored state: the ones missing are **lost updates**, counted per kind.

Per minute it prints turns and likes done, turn and like latency (p50/p95), errors, the process
RSS (server and clients share the process: the clients' share is small and flat) and the size of
the SQLite checkpoint file (with its WAL).

    V/bin/python bench/soak.py --home /tmp/servehome --clients 8 --minutes 5
    V/bin/python bench/soak.py --clients 4 --minutes 1 --llm local --json
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recagents.env import ensure_offline  # noqa: E402  (light: no library imports)

ensure_offline()

import httpx  # noqa: E402

# Additive turns only: none of them rejects or dislikes, so every like must survive to the end.
TURNS = (
    "I loved {title}",
    "more please",
    "something from the 90s",
    "any comedies?",
    "why the first one?",
)


@dataclass
class Event:
    """One request a client made."""

    kind: str  # "turn" or "like"
    thread_id: str
    at: float  # seconds since the start
    latency: float
    status: int
    payload: str  # the tagged message, or the liked item id


@dataclass
class Client:
    """What one client sent and saw."""

    index: int
    events: list[Event] = field(default_factory=list)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def rss_mb() -> float:
    """This process's resident memory (the server and the clients), in MB."""
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def file_mb(path: Path) -> float:
    """Size of a SQLite file with its WAL, in MB."""
    total = 0
    for suffix in ("", "-wal", "-shm"):
        candidate = path.with_name(path.name + suffix)
        if candidate.exists():
            total += candidate.stat().st_size
    return total / 2**20


def client_loop(
    url: str,
    index: int,
    shared: list[str],
    anchors: list[dict[str, Any]],
    began: float,
    deadline: float,
    args: argparse.Namespace,
) -> Client:
    """One client until the deadline: turns and likes on its own thread and the shared ones."""
    rng = random.Random(args.seed * 1000 + index)
    own = f"soak-{index}-{uuid.uuid4().hex[:6]}"
    client = Client(index)
    last_items: dict[str, list[str]] = {}
    counter = 0
    with httpx.Client(base_url=url, timeout=args.timeout) as http:
        while time.perf_counter() < deadline:
            thread_id = rng.choice(shared) if shared and rng.random() < args.shared_share else own
            counter += 1
            like = rng.random() < args.like_share and last_items.get(thread_id)
            start = time.perf_counter()
            if like:
                item_id = rng.choice(last_items[thread_id])
                try:
                    response = http.post(
                        "/api/v1/feedback",
                        json={"thread_id": thread_id, "item_id": item_id, "liked": True},
                    )
                    status = response.status_code
                except httpx.HTTPError:
                    status = 0
                kind, payload = "like", item_id
            else:
                anchor = rng.choice(anchors)
                text = rng.choice(TURNS).format(title=anchor["title"])
                payload = f"{text} (#{index}-{counter})"
                body = {"message": payload, "thread_id": thread_id, "k": args.k}
                try:
                    response = http.post("/api/v1/chat", json=body)
                    status = response.status_code
                except httpx.HTTPError:
                    status = 0
                if status == 200:
                    last_items[thread_id] = [item["id"] for item in response.json()["items"]]
                kind = "turn"
            end = time.perf_counter()
            client.events.append(
                Event(kind, thread_id, end - began, end - start, status, str(payload))
            )
    return client


def count_lost(url: str, clients: list[Client]) -> dict[str, Any]:
    """Acknowledged turns and likes missing from the threads' stored state.

    A thread keeps its last ``THREAD_CAPS.messages`` messages (the last 100 turns): in a thread
    with more acknowledged turns than that, the window must be full of acknowledged turns and
    only the ones missing from it count as lost (``windowed_threads`` says how many such threads
    there were; a loss older than the window cannot be seen). Likes are checked whole while a
    thread has no more than ``THREAD_CAPS.profile`` of them.
    """
    from recagents.graph.state import THREAD_CAPS

    window = THREAD_CAPS.messages // 2
    sent_turns: dict[str, list[str]] = defaultdict(list)
    sent_likes: dict[str, set[str]] = defaultdict(set)
    for client in clients:
        for event in client.events:
            if event.status != 200:
                continue
            if event.kind == "turn":
                sent_turns[event.thread_id].append(event.payload)
            else:
                sent_likes[event.thread_id].add(event.payload)
    lost_turns = lost_likes = unanswered = windowed = 0
    examples: list[str] = []
    with httpx.Client(base_url=url, timeout=120) as http:
        for thread_id in sorted(set(sent_turns) | set(sent_likes)):
            view = http.get(f"/api/v1/threads/{thread_id}").json()
            said = Counter(m["text"] for m in view.get("messages", []) if m["role"] == "user")
            answers = sum(1 for m in view.get("messages", []) if m["role"] == "assistant")
            missing = Counter(sent_turns[thread_id]) - said
            if len(sent_turns[thread_id]) > window:  # the oldest turns were dropped by design
                windowed += 1
                kept = sum((Counter(sent_turns[thread_id]) & said).values())
                missing = Counter({"(inside the window)": max(0, window - kept)}) + Counter()
            gone = sent_likes[thread_id] - set(view.get("liked") or [])
            lost_turns += sum(missing.values())
            lost_likes += len(gone)
            unanswered += max(0, sum(said.values()) - answers)
            if (missing or gone) and len(examples) < 5:
                examples.append(
                    f"{thread_id}: {sum(missing.values())} of {len(sent_turns[thread_id])} "
                    f"turns and {len(gone)} of {len(sent_likes[thread_id])} likes missing"
                )
    return {
        "turns_acknowledged": sum(len(v) for v in sent_turns.values()),
        "likes_acknowledged": sum(len(v) for v in sent_likes.values()),
        "lost_turns": lost_turns,
        "lost_likes": lost_likes,
        "messages_without_reply": unanswered,
        "windowed_threads": windowed,
        "examples": examples,
    }


def per_minute(
    clients: list[Client], samples: list[tuple[float, float, float]], minutes: float
) -> list[dict[str, Any]]:
    """One row per minute: requests done, latency, errors, peak RSS and checkpoint size."""
    events = [e for c in clients for e in c.events]
    rows = []
    for minute in range(max(1, int(-(-minutes // 1)))):
        low, high = minute * 60.0, (minute + 1) * 60.0
        inside = [e for e in events if low <= e.at < high]
        turns = [e.latency for e in inside if e.kind == "turn" and e.status == 200]
        likes = [e.latency for e in inside if e.kind == "like" and e.status == 200]
        during = [s for s in samples if low <= s[0] < high] or samples[-1:]
        rows.append(
            {
                "minute": minute + 1,
                "turns": len(turns),
                "likes": len(likes),
                "turn_p50_s": round(statistics.median(turns), 3) if turns else None,
                "turn_p95_s": round(percentile(turns, 95), 3) if turns else None,
                "like_p50_s": round(statistics.median(likes), 3) if likes else None,
                "errors": sum(1 for e in inside if e.status != 200),
                "rss_mb": round(max(s[1] for s in during), 1) if during else None,
                "checkpoint_mb": round(max(s[2] for s in during), 1) if during else None,
            }
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="recagents home (default: RECAGENTS_HOME/~)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--shared", type=int, default=2, help="threads every client writes to")
    parser.add_argument("--shared-share", type=float, default=0.3, help="requests to shared ones")
    parser.add_argument("--like-share", type=float, default=0.3, help="requests that are a 👍")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--llm", default="none", help="none (default), local or a spec")
    parser.add_argument("--checkpointer", default="sqlite", choices=["sqlite", "memory"])
    parser.add_argument("--timeout", type=float, default=120.0, help="per request, seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import torch

    from recagents.config import Settings
    from recagents.ui.app import create_app
    from recagents.ui.facade import Recommender
    from tests.support.server import BackgroundServer

    settings = Settings.load(home=args.home)
    torch.set_num_threads(settings.threads)
    loaded = time.perf_counter()
    recommender = Recommender.load(
        settings, llm=args.llm, checkpointer=args.checkpointer, progress=True
    )
    print(f"loaded {recommender.dataset.name} in {time.perf_counter() - loaded:.1f} s")
    app = create_app(recommender)
    service = app.state.service
    anchors = service.search("", 40)
    for anchor in anchors:  # the title as the parser knows it best: "Heat (1995)"
        anchor["title"] = service.display_title(anchor["id"])
    database = Path(settings.home) / "conversations.sqlite"
    shared = [f"soak-shared-{i}-{uuid.uuid4().hex[:6]}" for i in range(args.shared)]
    samples: list[tuple[float, float, float]] = []
    stop = threading.Event()

    with BackgroundServer(app) as server:
        with httpx.Client(base_url=server.url, timeout=120) as http:  # warm-up, not measured
            http.post("/api/v1/chat", json={"message": "I loved Heat", "thread_id": "soak-warm"})
        began = time.perf_counter()
        deadline = began + args.minutes * 60.0

        def sample() -> None:
            while not stop.is_set():
                samples.append((time.perf_counter() - began, rss_mb(), file_mb(database)))
                stop.wait(5.0)

        sampler = threading.Thread(target=sample, name="soak-sampler", daemon=True)
        sampler.start()
        with ThreadPoolExecutor(args.clients) as pool:
            futures = [
                pool.submit(client_loop, server.url, i, shared, anchors, began, deadline, args)
                for i in range(args.clients)
            ]
            clients = [f.result() for f in futures]
        stop.set()
        sampler.join()
        samples.append((time.perf_counter() - began, rss_mb(), file_mb(database)))
        lost = count_lost(server.url, clients)

    rows = per_minute(clients, samples, args.minutes)
    statuses = Counter(e.status for c in clients for e in c.events)
    summary = {
        "dataset": recommender.dataset.name,
        "llm": args.llm,
        "checkpointer": args.checkpointer,
        "clients": args.clients,
        "minutes": args.minutes,
        "shared_threads": args.shared,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "rss_start_mb": round(samples[0][1], 1),
        "rss_end_mb": round(samples[-1][1], 1),
        "checkpoint_start_mb": round(samples[0][2], 1),
        "checkpoint_end_mb": round(samples[-1][2], 1),
        "per_minute": rows,
        **lost,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(
            f"{args.clients} clients x {args.minutes:g} min, llm {args.llm}, "
            f"{args.shared} shared threads; statuses {summary['statuses']}; RSS "
            f"{summary['rss_start_mb']} -> {summary['rss_end_mb']} MB; checkpoint file "
            f"{summary['checkpoint_start_mb']} -> {summary['checkpoint_end_mb']} MB"
        )
        print(
            "| minute | turns | likes | turn p50 s | turn p95 s | like p50 s | errors "
            "| RSS MB | checkpoint MB |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for row in rows:
            print(
                f"| {row['minute']} | {row['turns']} | {row['likes']} | {row['turn_p50_s']} "
                f"| {row['turn_p95_s']} | {row['like_p50_s']} | {row['errors']} "
                f"| {row['rss_mb']} | {row['checkpoint_mb']} |"
            )
        print(
            f"lost updates: {lost['lost_turns']} of {lost['turns_acknowledged']} turns, "
            f"{lost['lost_likes']} of {lost['likes_acknowledged']} likes; messages without a "
            f"reply: {lost['messages_without_reply']}; threads past the kept window: "
            f"{lost['windowed_threads']}"
        )
        for example in lost["examples"]:
            print(f"  {example}")
    clean = not lost["lost_turns"] and not lost["lost_likes"] and set(statuses) == {200}
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
