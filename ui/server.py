"""``recagents serve``: the chat UI and the HTTP API in one uvicorn server.

Binds 127.0.0.1 unless told otherwise. Listening on any other address exposes conversations and a
training button to the network, so it refuses to start without ``RECAGENTS_API_TOKEN``; with a
token the API wants ``Authorization: Bearer <token>`` and the UI a login (user ``recagents``,
password the token).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import threading
from collections.abc import Callable
from typing import Any

from recagents.config import Settings
from recagents.errors import ConfigError

logger = logging.getLogger(__name__)

TOKEN_ENV = "RECAGENTS_API_TOKEN"
DEFAULT_PORT = 7860
#: The UI's "train" button alternates between these runs, so the run being served is never
#: reset while people chat with it; ``serve`` loads whichever finished last.
RUN_NAMES = ("default", "ui")


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_token(host: str, token: str | None = None) -> str | None:
    """The access token to enforce, or ``None`` for an unauthenticated loopback server.

    A token given (argument or ``RECAGENTS_API_TOKEN``) is enforced on any host.

    Raises:
        ConfigError: ``host`` is not loopback and there is no token.
    """
    token = token if token is not None else os.environ.get(TOKEN_ENV)
    token = token.strip() if token else None
    if token:
        return token
    if not is_loopback(host):
        raise ConfigError(
            f"--host {host} exposes the server beyond this machine: set {TOKEN_ENV} to a secret "
            "first (API clients send 'Authorization: Bearer <token>'; the UI asks for user "
            "'recagents' and the token as password), or bind 127.0.0.1"
        )
    return None


def bind(host: str, port: int) -> socket.socket:
    """Bind the port now, so a busy port fails in a second rather than after minutes of loading.

    Raises:
        ConfigError: Bad port, or the address is in use / not available.
    """
    if not 1 <= int(port) <= 65535:
        raise ConfigError(f"--port must be between 1 and 65535, got {port}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), int(port)))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}): pick another --port "
            "or stop the program using it"
        ) from None
    return sock


def latest_run(settings: Settings, dataset_name: str) -> str:
    """The run (of :data:`RUN_NAMES`) whose ``metrics.json`` was written last; else default."""
    best, best_time = RUN_NAMES[0], -1.0
    for name in RUN_NAMES:
        metrics = settings.runs_dir / f"{dataset_name}-s{settings.seed}-{name}" / "metrics.json"
        if metrics.exists() and metrics.stat().st_mtime > best_time:
            best, best_time = name, metrics.stat().st_mtime
    return best


class _RoundProgress(logging.Handler):
    """Turns the coordinator's "round N: ..." log lines into progress fractions."""

    def __init__(self, progress: Callable[[float, str], None], max_rounds: int) -> None:
        super().__init__(logging.INFO)
        self.progress = progress
        self.max_rounds = max_rounds

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("round "):
            try:
                number = int(message.split()[1].rstrip(":"))
            except (IndexError, ValueError):
                return
            self.progress(0.15 + 0.8 * number / (self.max_rounds + 1), message)


def make_trainer(
    settings: Settings,
    current: Callable[[], Any],
    *,
    max_rounds: int = 8,
    patience: int = 2,
) -> Callable[[Callable[[float, str], None]], Any]:
    """The UI's "train" button: fresh collaborative rounds, then a new recommender.

    The new run goes to whichever of :data:`RUN_NAMES` is not being served, so chats keep
    working on the old vectors until the swap; threads, chat model and settings carry over.

    Args:
        settings: Settings of the served recommender.
        current: Returns the recommender serving now.
        max_rounds: Most rounds after round 0.
        patience: Rounds without valid improvement before stopping.
    """
    lock = threading.Lock()

    def train(progress: Callable[[float, str], None]) -> Any:
        from recagents.agents.trainer import train_agents
        from recagents.data import load_dataset
        from recagents.data.splits import rs_split
        from recagents.ui.facade import Recommender

        with lock:
            old = current()
            serving = old.engine.namespace
            run_name = RUN_NAMES[1] if not serving.endswith(f"-{RUN_NAMES[1]}") else RUN_NAMES[0]
            progress(0.02, "loading the dataset")
            split = rs_split(load_dataset(settings.dataset, home=settings.home), settings.seed)
            progress(0.08, f"encoding texts (cached) and training run '{run_name}'")
            source = logging.getLogger("recagents.agents.rounds")
            handler = _RoundProgress(progress, max_rounds)
            level = source.level
            source.setLevel(logging.INFO)
            source.addHandler(handler)
            try:
                engine = train_agents(
                    split,
                    settings,
                    run_name=run_name,
                    resume=False,
                    progress=False,
                    max_rounds=max_rounds,
                    patience=patience,
                )
            finally:
                source.removeHandler(handler)
                source.setLevel(level)
            progress(0.97, "loading the new model")
            return Recommender(
                engine,
                settings,
                chat_model=old.deps.chat_model,
                checkpointer=old.checkpointer,
                structured_understanding=old.deps.structured_understanding,
            )

    return train


def serve(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    llm: str | None = None,
    token: str | None = None,
    log_level: str = "info",
) -> int:
    """Load (training on first use) and serve until interrupted.

    Raises:
        ConfigError: Exposed without a token, bad or busy port (checked before loading).
    """
    from recagents.env import ensure_offline

    ensure_offline()
    auth_token = resolve_token(host, token)
    sock = bind(host, port)
    try:
        import uvicorn

        from recagents.data import load_dataset
        from recagents.ui.app import create_app
        from recagents.ui.facade import Recommender

        dataset = load_dataset(settings.dataset, home=settings.home)
        run_name = latest_run(settings, dataset.name)
        logger.info("loading run '%s' of %s (training on first use)", run_name, dataset.name)
        recommender = Recommender.load(settings, llm=llm, progress=True, run_name=run_name)
        app: Any = None
        app = create_app(
            recommender,
            auth_token=auth_token,
            trainer=make_trainer(settings, lambda: app.state.service.recommender),
        )
        shown = f"[{host}]" if ":" in host else host
        url = f"http://{shown}:{port}"
        logger.info(
            "serving %s : chat UI at %s/ , HTTP API at %s/api/v1 , docs at %s/docs%s",
            dataset.name,
            url,
            url,
            url,
            " (token required)" if auth_token else "",
        )
        config = uvicorn.Config(app, log_level=log_level.lower(), lifespan="on")
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
    return 0
