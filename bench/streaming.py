"""When a person sees words: the chat turn streamed through ``/api/v1/chat/stream`` (SSE).

Serves the 32-film block catalog (the tests' fast agents, trained in seconds) with the embedded
SmolLM2 (``--llm local``, the default) or no chat model (``--llm none``) on a free 127.0.0.1 port,
sends T first turns ("I loved Film N", each in a new thread) and times, per turn, from the request:
the ``draft`` event (picks with template reasons), the first ``token`` (the model's first word),
and ``done`` (the checked reply). Before real token streaming the page got the model's words only
at ``done`` and then replayed the finished reply word by word (~1 s more, with or without a
model); now the words arrive as the model writes them and a template reply is shown at once.

    .venv/bin/python bench/streaming.py                 # 8 turns, local SmolLM2
    .venv/bin/python bench/streaming.py --llm none
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recagents.env import ensure_offline  # noqa: E402  (light: no library imports)

ensure_offline()

import httpx  # noqa: E402


def turn(client: httpx.Client, message: str) -> dict[str, float | None]:
    """Seconds from the request to the draft, the first model token and ``done``."""
    began = time.perf_counter()
    marks: dict[str, float | None] = {"draft": None, "token": None, "done": None}
    with client.stream("POST", "/api/v1/chat/stream", json={"message": message}) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line.startswith("event: "):
                kind = line[len("event: ") :]
                if kind in marks and marks[kind] is None:
                    marks[kind] = time.perf_counter() - began
    return marks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm", default="local", help="local (default) or none")
    parser.add_argument("--turns", type=int, default=8)
    parser.add_argument("--home", type=Path, help="cache folder (default: a temporary one)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    from recagents.config import Settings
    from recagents.graph.llm import LLMSpec, load_chat_model
    from recagents.ui.app import create_app
    from tests.api.server import block_recommender
    from tests.support.server import BackgroundServer

    home = args.home or Path(tempfile.mkdtemp(prefix="bench-streaming-"))
    model = load_chat_model(LLMSpec.parse(args.llm), Settings.load(home=home))
    app = create_app(block_recommender(home, chat_model=model))
    rows: list[dict[str, Any]] = []
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url, timeout=120) as client:
        turn(client, "I loved Film 1")  # warm-up: first graph run, first generation
        for i in range(args.turns):
            rows.append(turn(client, f"I loved Film {(i * 5 + 2) % 32}"))

    def median(key: str) -> float | None:
        values = [r[key] for r in rows if r[key] is not None]
        return round(statistics.median(values), 3) if values else None

    summary = {
        "llm": args.llm,
        "turns": len(rows),
        "median_s": {key: median(key) for key in ("draft", "token", "done")},
        "turns_with_tokens": sum(r["token"] is not None for r in rows),
    }
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"chat/stream over the block catalog, llm {args.llm}, {len(rows)} turns (median s)")
    print(f"{'draft (picks)':>16} {'first word':>12} {'done (checked)':>16}")
    m = summary["median_s"]
    cells = [f"{m[k]:.3f}" if m[k] is not None else "—" for k in ("draft", "token", "done")]
    print(f"{cells[0]:>16} {cells[1]:>12} {cells[2]:>16}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
