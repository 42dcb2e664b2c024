"""``recagents serve``: the chat UI and the HTTP API in one uvicorn server.

Binds 127.0.0.1 unless told otherwise. Listening on any other address exposes conversations and a
training button to the network, so it refuses to start without ``RECAGENTS_API_TOKEN``; with a
token the API wants ``Authorization: Bearer <token>`` and the UI a login (user ``recagents``,
password the token).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import ipaddress
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recagents.config import Settings
from recagents.errors import ConfigError, DataError, RecagentsError

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

    A token given (argument or ``RECAGENTS_API_TOKEN``) is enforced on any host, and must be
    long and random (:func:`~recagents.ui.guard.check_token`).

    Raises:
        ConfigError: ``host`` is not loopback and there is no token, or the token is weak.
    """
    from recagents.ui.guard import check_token

    token = token if token is not None else os.environ.get(TOKEN_ENV)
    token = token.strip() if token else None
    if token:
        return check_token(token)
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


def allowed_hosts(host: str, extra: str | Sequence[str] | None = None) -> list[str]:
    """The ``Host`` names ``serve`` answers to: loopback names, the bound address, ``extra``.

    A wildcard address (``0.0.0.0``, ``::``) is no name a client uses, so it adds nothing:
    an exposed server names the hosts people reach it by with ``--allowed-hosts``.

    Args:
        host: The address bound.
        extra: More names (a comma-separated string or a list); ``*`` answers any host.
    """
    from recagents.ui.guard import LOOPBACK_HOSTS, normalise_host

    names = list(LOOPBACK_HOSTS)
    bound = host.strip().strip("[]")
    if isinstance(extra, str):
        extra = extra.split(",")
    wildcard = bound in ("", "0.0.0.0", "::")
    for name in [*([] if wildcard else [bound]), *(extra or ())]:
        if name.strip() and normalise_host(name) not in names:
            names.append(normalise_host(name))
    return names


def serving_pointer(settings: Settings, dataset_name: str) -> Path:
    """The version pointer of a dataset's served run: ``runs/SERVING-<dataset>-s<seed>.json``.

    Why a file: replicas are separate processes (maybe on other machines sharing the home), so
    an in-process swap after training reaches only the replica that trained. Training writes
    the run first, then replaces this file atomically; every replica checks its ``stat`` before
    each request (:class:`ServingWatcher`) and reloads when it changed.
    """
    return settings.runs_dir / f"SERVING-{dataset_name}-s{settings.seed}.json"


def read_serving(settings: Settings, dataset_name: str) -> dict[str, Any] | None:
    """The pointer's ``{"run", "time", "token"}``; None when there is none or it is unreadable."""
    try:
        data = json.loads(serving_pointer(settings, dataset_name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("run"), str) else None


def write_serving(
    settings: Settings, dataset_name: str, run_name: str, *, token: str | None = None
) -> dict[str, Any]:
    """Point every replica at ``run_name`` (written to a temporary file, then renamed over).

    The rename is atomic, so a replica reads the old pointer or the new one, never half of one.
    ``token`` tells two pointers to the same run apart (a run trained again in place).
    """
    path = serving_pointer(settings, dataset_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"run": run_name, "time": time.time(), "token": token or uuid.uuid4().hex}
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
    temporary.write_text(json.dumps(record), encoding="utf-8")
    os.replace(temporary, path)
    logger.info("version pointer %s: serve run '%s'", path.name, run_name)
    return record


def latest_run(settings: Settings, dataset_name: str) -> str:
    """The run ``serve`` loads: the version pointer's, else the latest of :data:`RUN_NAMES`.

    The pointer counts when its run finished; else the run whose ``metrics.json`` was written
    last; else ``default``.
    """
    pointer = read_serving(settings, dataset_name)
    if pointer is not None:
        run = settings.runs_dir / f"{dataset_name}-s{settings.seed}-{pointer['run']}"
        if (run / "metrics.json").exists():
            return str(pointer["run"])
    best, best_time = RUN_NAMES[0], -1.0
    for name in RUN_NAMES:
        metrics = settings.runs_dir / f"{dataset_name}-s{settings.seed}-{name}" / "metrics.json"
        if metrics.exists() and metrics.stat().st_mtime > best_time:
            best, best_time = name, metrics.stat().st_mtime
    return best


@contextlib.contextmanager
def home_lock(settings: Settings, name: str, *, wait: bool = True) -> Iterator[bool]:
    """An exclusive ``flock`` on ``runs/.<name>.lock``, shared by every process using the home.

    ``prepare``: replicas load (and on first use train) one at a time, as the embedded ChromaDB
    folder takes one writer; ``train``: one training run at a time whichever replica's button
    started it. With ``wait=False`` it yields ``False`` at once when another process holds it.
    """
    settings.runs_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(settings.runs_dir / f".{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


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


def feedback_corpora(settings: Settings, catalog: str, corpora: Sequence[str]) -> list[str]:
    """The dialogue corpora a feedback round trains on: ``corpora`` and the log as it is now.

    The log is saved as a new corpus ``feedback-<time>-<random>`` (each thread a user;
    :func:`~recagents.data.feedback.snapshot_feedback`), which the new run records, so a served
    home reloads exactly the users it was trained with. An earlier snapshot among ``corpora`` is
    replaced: the log holds everything it held, minus forgotten threads.

    Raises:
        DataError: The log has no thread that named a film of ``catalog`` yet.
    """
    from recagents.data.feedback import FEEDBACK_PREFIX, FeedbackLog, snapshot_feedback

    kept = [c for c in corpora if not c.startswith(FEEDBACK_PREFIX)]
    snapshot = snapshot_feedback(settings.home, catalog)
    if snapshot is None:
        raise DataError(
            f"the interaction log {FeedbackLog.in_home(settings.home).path} holds no thread that "
            f"named a film of {catalog}: chat first, or train without the feedback option"
        )
    logger.info("feedback round: the interaction log's threads saved as corpus %s", snapshot)
    return [*kept, snapshot]


def feedback_round_source(
    split: Any, settings: Settings, run_name: str, *, roles: list[str] | None = None
) -> Any:
    """The finished run ``run_name`` loaded as it serves (nothing trained): a warm start.

    Raises:
        ConfigError: The run has no finished round to start from.
    """
    from recagents.agents.trainer import recorded_dialogues, run_dir_for, train_agents

    run_dir = run_dir_for(settings, split.dataset.name, run_name)
    metrics = run_dir / "metrics.json"
    if not metrics.exists():
        raise ConfigError(
            f"no finished run '{run_name}' to continue with feedback: train it first "
            f"(recagents train --run {run_name}), or drop --resume"
        )
    rounds = json.loads(metrics.read_text(encoding="utf-8")).get("rounds") or []
    last = max((int(r["round"]) for r in rounds), default=0)
    recorded = recorded_dialogues(run_dir) or {}
    return train_agents(
        split,
        settings,
        roles=roles,
        run_name=run_name,
        resume=True,
        max_rounds=max(1, last),  # its own rounds only: loading trains nothing more
        progress=False,
        dialogues=list(recorded.get("corpora") or []) or None,
    )


def make_trainer(
    settings: Settings,
    current: Callable[[], Any],
    *,
    max_rounds: int = 8,
    patience: int = 2,
    published: Callable[[dict[str, Any]], None] | None = None,
) -> Callable[[Callable[[float, str], None]], Any]:
    """The UI's "train" button: fresh collaborative rounds, then a new recommender.

    With ``with_feedback=True`` (the Learning tab's option) it is a feedback round: the
    interaction log's threads join the rounds as users (:func:`feedback_corpora`) and round 0
    starts from the served model's weights instead of the text seeds.

    The new run goes to whichever of :data:`RUN_NAMES` is not being served, so chats keep
    working on the old vectors until the swap; threads, chat model and settings carry over.
    ``train(progress, dialogues=[...])`` learns from those ingested dialogue corpora with the
    catalog (``None``: the ones the serving model learned from);
    ``train(progress, with_feedback=True)`` adds the interaction log (a feedback round).

    Replicas: the finished run is announced through the version pointer
    (:func:`write_serving`), which every replica picks up; an in-process swap alone would
    reach only this one. One training at a time per home (:func:`home_lock` ``train``): a
    click on another replica meanwhile fails at once with a message, instead of two runs
    writing the same folder.

    Args:
        settings: Settings of the served recommender.
        current: Returns the recommender serving now.
        max_rounds: Most rounds after round 0.
        patience: Rounds without valid improvement before stopping.
        published: Called with the pointer written (this replica's watcher then knows it
            serves it already).
    """
    lock = threading.Lock()

    def train(
        progress: Callable[[float, str], None],
        dialogues: Sequence[str] | None = None,
        with_feedback: bool = False,
    ) -> Any:
        from recagents.agents.trainer import train_agents
        from recagents.data import load_dataset
        from recagents.data.splits import rs_split
        from recagents.ui.facade import Recommender

        with lock, home_lock(settings, "train", wait=False) as mine:
            if not mine:
                raise ConfigError(
                    "another replica of this server is training now: wait for it to finish "
                    "(every replica serves its run when it does)"
                )
            old = current()
            serving = old.engine.namespace
            run_name = RUN_NAMES[1] if not serving.endswith(f"-{RUN_NAMES[1]}") else RUN_NAMES[0]
            progress(0.02, "loading the dataset")
            split = rs_split(load_dataset(settings.dataset, home=settings.home), settings.seed)
            if dialogues is None:  # keep what the serving model learned from
                dialogues = list((old.engine.trained.dialogues or {}).get("corpora") or [])
            warm = None
            if with_feedback:  # the live threads join as users; the served model continues
                dialogues = feedback_corpora(settings, split.dataset.name, dialogues)
                warm = old.engine.trained
                progress(0.05, f"feedback round: the interaction log as corpus {dialogues[-1]}")
            with_talk = f" with dialogues {', '.join(dialogues)}" if dialogues else ""
            progress(0.08, f"encoding texts (cached) and training run '{run_name}'{with_talk}")
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
                    dialogues=dialogues,
                    warm_start=warm,
                )
            finally:
                source.removeHandler(handler)
                source.setLevel(level)
            progress(0.97, "loading the new model")
            token = uuid.uuid4().hex
            if published is not None:  # first: this replica swaps itself, it must not reload
                published({"run": run_name, "token": token})
            write_serving(settings, split.dataset.name, run_name, token=token)
            return Recommender(
                engine,
                settings,
                chat_model=old.deps.chat_model,
                checkpointer=old.checkpointer,
                structured_understanding=old.deps.structured_understanding,
                locks=old.locks,  # same threads, same locks: no race across the swap
            )

    return train


@dataclass
class Preparation:
    """Where ``serve``'s start-up stands while the port already answers.

    Loading (and on first use training) takes from seconds to minutes; the server listens at once
    and shows this instead of a closed port: the page as a progress bar, the API as a 503.
    """

    state: str = "preparing"  # preparing | ready | failed
    progress: float = 0.0
    message: str = "starting"
    error: str | None = None
    started: float = field(default_factory=time.monotonic)

    def update(self, fraction: float, message: str) -> None:
        """Move the bar (never backwards) and say what is happening."""
        self.progress = max(self.progress, min(1.0, max(0.0, float(fraction))))
        self.message = str(message)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the 503 body's ``preparing`` field)."""
        return {
            "state": self.state,
            "progress": round(self.progress, 3),
            "message": self.message,
            "seconds": round(time.monotonic() - self.started, 1),
            **({"error": self.error} if self.error else {}),
        }


class _PreparationLog(logging.Handler):
    """The package's INFO log lines (encoding, rounds...) as the preparation's message."""

    def __init__(self, preparation: Preparation, max_rounds: int = 8) -> None:
        super().__init__(logging.INFO)
        self.preparation = preparation
        self.max_rounds = max_rounds

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        fraction = self.preparation.progress
        if message.startswith("round "):
            try:
                number = int(message.split()[1].rstrip(":"))
            except (IndexError, ValueError):
                number = None
            if number is not None:
                fraction = 0.15 + 0.8 * number / (self.max_rounds + 1)
        elif message.startswith("encoding"):
            fraction = max(fraction, 0.05)
        self.preparation.update(fraction, message[:300])


PREPARING_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="2">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>recagents: preparing</title>
<style>body{{font-family:system-ui,sans-serif;max-width:560px;margin:10vh auto;padding:0 16px}}
.bar{{height:12px;background:#e5e7eb;border-radius:6px;overflow:hidden}}
.fill{{height:100%;background:#4f7cff;width:{percent}%}}</style></head>
<body id="preparing"><h2>🎬 recagents is getting ready</h2>
<p>{what}</p><div class="bar"><div class="fill"></div></div>
<p><b>{percent}%</b> · <span id="step">{message}</span> · {seconds} s</p>
<p>This page reloads itself and becomes the chat as soon as the agents are ready.</p>
</body></html>"""


def preparing_app(preparation: Preparation) -> Any:
    """What answers while the recommender loads: a progress page, and 503 JSON under ``/api``."""
    import html

    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse
    from starlette.routing import Route

    from recagents.ui.guard import redact

    async def answer(request: Request) -> Any:
        status = preparation.to_dict()
        failed = preparation.state == "failed"
        if request.url.path.startswith("/api"):
            message = (
                "the server failed to start; the reason is in the server log"
                if failed
                else f"the recommender is preparing ({round(100 * preparation.progress)}%: "
                f"{redact(preparation.message)}); retry in a few seconds"
            )
            status.pop("error", None)
            status["message"] = redact(str(status["message"]))
            body = {
                "error": {"type": "Preparing", "message": message},
                "status": "failed" if failed else "preparing",
                "preparing": status,
            }
            return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})
        page = PREPARING_PAGE.format(
            what=html.escape(
                "Starting failed: " + redact(str(preparation.error))
                if failed
                else "Loading the catalog and the agents (training them on first use)."
            ),
            percent=round(100 * preparation.progress),
            message=html.escape(redact(preparation.message)),
            seconds=status["seconds"],
        )
        return HTMLResponse(page, status_code=503, headers={"Retry-After": "2"})

    from starlette.applications import Starlette

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    return Starlette(routes=[Route("/{path:path}", answer, methods=methods)])


class SwitchApp:
    """An ASGI app that answers with one app until :meth:`switch` hands it the real one.

    Uvicorn runs the lifespan of the app it was given once, at start; the real app (FastAPI with
    Gradio mounted, whose queue starts in its lifespan) arrives later, so this runs the real app's
    lifespan itself, on the first request after the switch, and shuts it down with the server.
    """

    def __init__(self, waiting: Any) -> None:
        self.waiting = waiting
        self.ready: Any = None
        self._started = False
        self._lock: asyncio.Lock | None = None
        self._inbox: asyncio.Queue[dict[str, Any]] | None = None
        self._outbox: asyncio.Queue[dict[str, Any]] | None = None
        self._task: asyncio.Task[Any] | None = None

    def switch(self, app: Any) -> None:
        """Serve ``app`` from the next request on (called from the loading thread)."""
        self.ready = app

    async def _start_ready(self, app: Any) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._started:
                return
            self._inbox, self._outbox = asyncio.Queue(), asyncio.Queue()
            scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
            self._task = asyncio.create_task(app(scope, self._inbox.get, self._outbox.put))
            await self._inbox.put({"type": "lifespan.startup"})
            reply = await self._outbox.get()
            if reply.get("type") != "lifespan.startup.complete":
                raise RuntimeError(f"the app failed to start: {reply.get('message', reply)}")
            self._started = True

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._started and self._inbox is not None and self._outbox is not None:
                    await self._inbox.put({"type": "lifespan.shutdown"})
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._outbox.get(), 10)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Lifespan here; requests to the waiting app, or to the ready one once it is there."""
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        app = self.ready
        if app is None:
            await self.waiting(scope, receive, send)
            return
        if not self._started:
            await self._start_ready(app)
        await app(scope, receive, send)


def load_recommender(
    settings: Settings, *, llm: str | None, run_name: str, preparation: Preparation
) -> Any:
    """Load the run ``serve`` serves, training it first when needed, reporting progress.

    A run trained with other roles (a role installed or removed since) cannot be resumed; rather
    than leave the server unable to start, it is trained again with the roles installed now,
    and the log says so and names the command that does the same by hand.
    """
    from recagents.ui.facade import Recommender

    handler = _PreparationLog(preparation)
    source = logging.getLogger("recagents")
    level = source.level
    if source.getEffectiveLevel() > logging.INFO:
        source.setLevel(logging.INFO)
    source.addHandler(handler)
    try:
        preparation.update(0.01, "loading the catalog")
        try:
            return Recommender.load(settings, llm=llm, progress=True, run_name=run_name)
        except ConfigError as exc:
            if "trained with roles" not in str(exc):
                raise
            command = f"recagents --home {settings.home} train --run {run_name}"
            logger.warning(
                "%s. The installed roles differ, so the run is trained again now (what `%s` "
                "does); the server answers 503 until it is ready.",
                exc,
                command,
            )
            preparation.update(0.02, "the agents were trained with other roles: training again")
            from recagents.agents.trainer import train_agents
            from recagents.data import load_dataset
            from recagents.data.splits import rs_split

            dataset = load_dataset(settings.dataset, home=settings.home)
            train_agents(rs_split(dataset, settings.seed), settings, run_name=run_name)
            return Recommender.load(settings, llm=llm, progress=True, run_name=run_name)
    finally:
        source.removeHandler(handler)
        source.setLevel(level)


class ServingWatcher:
    """Reloads this replica's recommender when the version pointer names another run.

    :meth:`poll` runs before every request: one ``stat`` of the pointer (microseconds), and
    only a changed file is read. The new run loads in a background thread while the old one
    keeps answering, then :meth:`Service.swap <recagents.ui.service.Service.swap>` serves it
    from the next request on: a turn never waits seconds for a reload, and the thread
    memory (checkpointer, locks) and the chat model carry over.

    Args:
        settings: The served settings.
        dataset_name: Whose pointer to watch.
        service: Returns the :class:`~recagents.ui.service.Service` to swap.
        seen: The pointer's token being served now (``None``: whatever the pointer says now).
    """

    def __init__(
        self,
        settings: Settings,
        dataset_name: str,
        service: Callable[[], Any],
        seen: str | None = None,
    ) -> None:
        self.settings = settings
        self.dataset_name = dataset_name
        self.path = serving_pointer(settings, dataset_name)
        self.service = service
        self.seen = (
            seen if seen is not None else (read_serving(settings, dataset_name) or {}).get("token")
        )
        # Not the pointer's stamp now: a pointer replaced while this replica was loading must
        # still be read once (the first poll compares its token with ``seen``).
        self._stat: tuple[int, int, int] | None = (-1, -1, -1)
        self._guard = threading.Lock()
        self._loading: threading.Thread | None = None

    def _stamp(self) -> tuple[int, int, int] | None:
        try:
            info = self.path.stat()
        except OSError:
            return None
        return (info.st_mtime_ns, info.st_ino, info.st_size)

    def published(self, pointer: dict[str, Any]) -> None:
        """This replica trained and swaps to ``pointer``'s run itself: do not reload it."""
        self.seen = str(pointer.get("token"))

    def poll(self) -> None:
        """Start a reload when the pointer changed to a run this replica does not serve."""
        stamp = self._stamp()
        if stamp == self._stat:
            return
        with self._guard:
            if self._loading is not None and self._loading.is_alive():
                return  # the change is looked at again once this load is done
            self._stat = stamp
            pointer = read_serving(self.settings, self.dataset_name)
            if pointer is None or pointer.get("token") == self.seen:
                return
            self._loading = threading.Thread(
                target=self._reload, args=(pointer,), name="recagents-reload", daemon=True
            )
            self._loading.start()

    def _reload(self, pointer: dict[str, Any]) -> None:
        from recagents.graph.engine import Engine
        from recagents.ui.facade import Recommender

        run = str(pointer["run"])
        began = time.monotonic()
        metrics = self.settings.runs_dir / f"{self.dataset_name}-s{self.settings.seed}-{run}"
        if not (metrics / "metrics.json").exists():  # never train here: only finished runs
            logger.warning("version pointer names run '%s', which has not finished", run)
            self.seen = str(pointer.get("token"))
            return
        try:
            old = self.service().recommender
            rounds = json.loads((metrics / "metrics.json").read_text(encoding="utf-8"))
            last = max((int(r["round"]) for r in rounds.get("rounds") or []), default=0)
            with home_lock(self.settings, "prepare"):
                # its own rounds only: resuming with the default max_rounds would train on,
                # in a serving process, writing the folder the other replicas read
                engine = Engine.load(
                    self.settings, progress=False, run_name=run, max_rounds=max(1, last)
                )
            new = Recommender(
                engine,
                self.settings,
                chat_model=old.deps.chat_model,
                checkpointer=old.checkpointer,
                structured_understanding=old.deps.structured_understanding,
                locks=old.locks,
            )
        except Exception:  # noqa: BLE001 - the old run keeps serving; a new pointer retries
            logger.exception("version pointer: run '%s' could not be loaded; still serving", run)
            self.seen = str(pointer.get("token"))
            return
        self.service().swap(new)
        self.seen = str(pointer.get("token"))
        logger.info(
            "version pointer: now serving run '%s' (loaded in %.1f s)",
            run,
            time.monotonic() - began,
        )


class WatchPointer:
    """ASGI wrapper that polls a :class:`ServingWatcher` before each HTTP request."""

    def __init__(self, app: Any, watcher: ServingWatcher) -> None:
        self.app = app
        self.watcher = watcher

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Poll (a ``stat``), then pass the request on."""
        if scope["type"] == "http":
            self.watcher.poll()
        await self.app(scope, receive, send)


#: Headers that describe one connection, not the request: never forwarded.
HOP_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)
#: The original client's address on a request another replica forwarded.
FORWARDED_FOR = "x-recagents-forwarded-for"


class ForwardUI:
    """On replicas other than 0: forward every request outside ``/api/`` to replica 0.

    Why: Gradio keeps a browser session's queue and state in the memory of the process that
    served it (a ``/queue/join`` on one replica and its event stream on another fail:
    measured, 4 of 12 ``gradio_client`` calls cancelled with two replicas on one port). The
    shared socket gives no session affinity, so the UI is served by one replica, replica 0,
    and the others pass its requests on over loopback, streaming the answer (event streams
    included). The HTTP API, which keeps nothing in process memory, is served by every
    replica. The ``Host`` header is passed unchanged (replica 0 checks it again) and the
    client's address goes in :data:`FORWARDED_FOR`, which replica 0 trusts only on its
    internal port (:class:`TrustForwarded`), so its login backoff still tells clients apart.
    """

    def __init__(self, app: Any, port: int) -> None:
        self.app = app
        self.port = port
        self._client: Any = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """The API here; everything else through replica 0."""
        if scope["type"] != "http" or scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        import httpx

        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{self.port}", timeout=None, follow_redirects=False
            )
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in scope["headers"]
            if k.decode("latin-1").lower() not in HOP_HEADERS | {FORWARDED_FOR}
        ]
        headers.append((FORWARDED_FOR, str((scope.get("client") or ("unknown", 0))[0])))
        target = scope.get("raw_path") or scope["path"].encode()
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]
        request = self._client.build_request(
            scope["method"], target.decode("latin-1"), headers=headers, content=bytes(body)
        )
        try:
            response = await self._client.send(request, stream=True)
        except httpx.TransportError:
            await send(
                {
                    "type": "http.response.start",
                    "status": 502,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8")],
                }
            )
            await send({"type": "http.response.body", "body": b"the UI replica is not reachable"})
            return
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": [
                        (k.encode("latin-1"), v.encode("latin-1"))
                        for k, v in response.headers.multi_items()
                        if k.lower() not in HOP_HEADERS - {"content-length"}
                    ],
                }
            )
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await response.aclose()


class TrustForwarded:
    """Replica 0: on its internal port only, the client address :class:`ForwardUI` sent."""

    def __init__(self, app: Any, port: int) -> None:
        self.app = app
        self.port = port

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Rewrite ``scope["client"]`` for forwarded requests; drop the header elsewhere."""
        if scope["type"] == "http":
            forwarded = [v for k, v in scope["headers"] if k.lower() == FORWARDED_FOR.encode()]
            internal = (scope.get("server") or ("", 0))[1] == self.port
            if forwarded and internal:
                scope = {**scope, "client": (forwarded[-1].decode("latin-1"), 0)}
            elif forwarded:  # nobody outside may claim an address
                scope = {
                    **scope,
                    "headers": [
                        h for h in scope["headers"] if h[0].lower() != FORWARDED_FOR.encode()
                    ],
                }
        await self.app(scope, receive, send)


@dataclass(frozen=True)
class ServeOptions:
    """What each replica needs besides the settings and the socket (picklable: spawned)."""

    host: str
    port: int
    llm: str | None
    auth_token: str | None
    log_level: str
    answered: tuple[str, ...]
    replica: int = 0
    replicas: int = 1
    ui_port: int = 0  # replicas > 1: replica 0's loopback port for the forwarded UI requests


def serve(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    llm: str | None = None,
    token: str | None = None,
    log_level: str = "info",
    hosts: str | Sequence[str] | None = None,
    workers: int = 1,
) -> int:
    """Listen at once, load (training on first use) in the background, then serve until stopped.

    Until the recommender is ready the page shows the preparation's progress and the API answers
    503 with a ``preparing`` status, instead of a closed port for minutes. A failure while
    loading stops the server and is raised here, as it was before it listened.

    ``hosts`` adds ``Host`` names to answer (:func:`allowed_hosts`); any other name gets a 400,
    while preparing too.

    ``workers`` > 1 runs that many replica processes on the one socket bound here (the kernel
    spreads connections over them), each loading the run itself; see :func:`_run_replicas`
    for why processes and not threads or Ray Serve. Replicas share the chat memory through
    ``settings.memory_url`` (SQLite on one machine, Postgres across machines) with a per-thread
    database lock, and a new run through the version pointer (:func:`write_serving`).

    Raises:
        ConfigError: Exposed without a token, weak token, bad or busy port, ``workers`` < 1, a
            bad or unreachable memory URL (all checked before loading).
    """
    from recagents.env import ensure_offline
    from recagents.ui.memory import MemorySpec, open_memory

    if int(workers) < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    ensure_offline()
    auth_token = resolve_token(host, token)
    answered = allowed_hosts(host, hosts)
    spec = MemorySpec.parse(settings.memory_url, settings)  # a bad URL: one line, now
    if spec.kind == "postgres":  # unreachable: one line now, not N replicas failing later
        open_memory(spec.target, settings, max_connections=1).close()
    # (a SQLite file is opened only after ui.preflight has checked it: opening a damaged one
    # here would rewrite its header before the check could refuse it untouched)
    sock = bind(host, port)
    options = ServeOptions(
        host, int(port), llm, auth_token, log_level, tuple(answered), 0, int(workers)
    )
    try:
        if int(workers) == 1:
            return _serve_on([sock], settings, options)
        return _run_replicas(sock, settings, options)
    finally:
        sock.close()


def _run_replicas(sock: socket.socket, settings: Settings, options: ServeOptions) -> int:
    """Start ``options.replicas`` processes serving ``sock``; stop them all when one stops.

    Why processes on one pre-bound socket (not uvicorn's ``workers=``, gunicorn or Ray Serve):
    a chat turn is CPU-bound Python (graph, scoring, the embedded model) that threads cannot
    spread over cores, so replicas must be processes; binding here first keeps a busy port a
    one-line error before anything loads, and each replica keeps the preparation page while
    it loads. uvicorn's ``workers=`` wants an import string and rebuilds the settings from the
    environment in each worker (losing explicit options' precedence); gunicorn is one more
    server to configure; Ray Serve would add a cluster runtime while the state replicas share
    already lives in databases (ChromaDB, the checkpointer). Replicas are *spawned*, not
    forked: the parent has imported torch and may hold threads, which ``fork`` does not copy.

    The chat UI is served by replica 0 only, the others forwarding it (:class:`ForwardUI`):
    Gradio sessions live in one process's memory. So the UI does not scale with replicas;
    the HTTP API does.

    A replica that stops (a crash, or a failed start) stops the others: a half-sized server
    that still looks healthy is worse than one a supervisor (systemd, Kubernetes) restarts.
    """
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    # Replica 0 also listens here, on loopback, for the UI requests the others forward.
    internal = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    internal.bind(("127.0.0.1", 0))
    options = ServeOptions(**{**options.__dict__, "ui_port": int(internal.getsockname()[1])})
    processes = []
    for index in range(options.replicas):
        replica = ServeOptions(**{**options.__dict__, "replica": index})
        sockets = [sock, internal] if index == 0 else [sock]
        process = context.Process(
            target=_replica_main,
            args=(sockets, settings, replica),
            name=f"recagents-replica-{index}",
        )
        process.start()
        processes.append(process)
    logger.info(
        "%d replicas on one socket: %s", len(processes), ", ".join(str(p.pid) for p in processes)
    )
    stopping = threading.Event()

    def stop(signum: int, _frame: Any) -> None:
        stopping.set()
        for process in processes:
            if process.is_alive() and process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = 0
        while all(p.is_alive() for p in processes):
            processes[0].join(0.5)
        first = next(p for p in processes if not p.is_alive())
        code = first.exitcode or 0
        if not stopping.is_set():
            logger.log(
                logging.ERROR if code else logging.INFO,
                "replica %s stopped (exit %s): stopping the others",
                first.name,
                code,
            )
        stop(signal.SIGTERM, None)
        for process in processes:
            process.join(30)
            if process.is_alive():
                process.kill()
                process.join(5)
        return 2 if code and code > 0 else 0
    finally:
        internal.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _replica_main(sockets: list[socket.socket], settings: Settings, options: ServeOptions) -> None:
    """A spawned replica: the parent's logging format, then :func:`_serve_on`; exit status.

    On Linux it asks to be sent SIGTERM when its parent dies (``PR_SET_PDEATHSIG``), so a
    ``kill -9`` of ``serve`` leaves no replica serving on without its supervisor.
    """
    with contextlib.suppress(Exception):  # Linux only; elsewhere replicas outlive a killed parent
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:  # the parent died before the request took effect
            sys.exit(0)
    logging.basicConfig(
        level=options.log_level.upper(),
        format=f"%(asctime)s %(levelname)s [replica {options.replica}] %(name)s: %(message)s",
    )
    for noisy in ("httpx", "urllib3", "sentence_transformers", "chromadb"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        import torch

        torch.set_num_threads(settings.threads)
        code = _serve_on(sockets, settings, options)
    except RecagentsError as exc:
        sys.stderr.write(f"error: replica {options.replica}: {exc}\n")
        code = 2
    except KeyboardInterrupt:
        code = 0
    sys.exit(code)


def _serve_on(sockets: list[socket.socket], settings: Settings, options: ServeOptions) -> int:
    """One replica: the preparation page at once, the recommender when loaded, until stopped."""
    import uvicorn

    from recagents.data import load_dataset
    from recagents.ui.app import create_app
    from recagents.ui.guard import AllowedHosts, RefuseMethods
    from recagents.ui.preflight import check_home

    host, port, auth_token, answered = (
        options.host,
        options.port,
        options.auth_token,
        list(options.answered),
    )
    preparation = Preparation()
    app = SwitchApp(preparing_app(preparation))
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}"
    if options.replica == 0:
        # The one line a person running `make run` needs, on stdout whatever the log level;
        # nothing is opened (no browser is launched).
        sys.stdout.write(
            f"recagents: open {url}/ in your browser (HTTP API at {url}/api/v1, docs at "
            f"{url}/docs{'; token required' if auth_token else ''}). Until the agents are ready "
            "the page shows the progress and the API answers 503.\n"
        )
        sys.stdout.flush()
        if "*" not in answered:
            logger.info("answering requests for hosts %s only", ", ".join(answered))
    served: Any = app
    if options.replicas > 1 and options.replica > 0:
        served = ForwardUI(app, options.ui_port)
    guarded: Any = AllowedHosts(RefuseMethods(served), answered)
    if options.replicas > 1 and options.replica == 0:
        guarded = TrustForwarded(guarded, options.ui_port)
    config = uvicorn.Config(guarded, log_level=options.log_level.lower(), lifespan="on")
    server = uvicorn.Server(config)
    failure: list[BaseException] = []

    def prepare() -> None:
        try:
            dataset = load_dataset(settings.dataset, home=settings.home)
            if options.replicas > 1:
                preparation.update(0.01, "waiting for the other replicas to finish loading")
            # One loader at a time per home: the first replica trains on first use, the others
            # then load what it wrote (the embedded ChromaDB folder takes one writer).
            with home_lock(settings, "prepare"):
                pointer = read_serving(settings, dataset.name)
                run_name = latest_run(settings, dataset.name)
                preparation.update(0.01, "checking the saved files")
                # damaged files: repaired from a good copy, or a one-line refusal (ui.preflight)
                check_home(
                    settings, settings.runs_dir / f"{dataset.name}-s{settings.seed}-{run_name}"
                )
                logger.info(
                    "loading run '%s' of %s (training on first use)", run_name, dataset.name
                )
                recommender = load_recommender(
                    settings, llm=options.llm, run_name=run_name, preparation=preparation
                )
            preparation.update(0.99, "building the chat UI")
            ready: Any = None
            watcher = ServingWatcher(
                settings,
                dataset.name,
                lambda: ready.state.service,
                seen=(pointer or {}).get("token")
                if pointer is not None and pointer.get("run") == run_name
                else "",
            )
            ready = create_app(
                recommender,
                auth_token=auth_token,
                allowed_hosts=answered,
                trainer=make_trainer(
                    settings,
                    lambda: ready.state.service.recommender,
                    published=watcher.published,
                ),
            )
            app.switch(WatchPointer(ready, watcher))
            preparation.state = "ready"
            preparation.update(1.0, "ready")
            logger.info("ready: chat UI at %s/ , HTTP API at %s/api/v1", url, url)
        except BaseException as exc:  # noqa: BLE001 - reported by serve() after the server stops
            if not isinstance(exc, RecagentsError):  # ours: main() prints the one line
                logger.error("the server could not start: %s", exc)
            preparation.state = "failed"
            preparation.error = str(exc)
            failure.append(exc)
            server.should_exit = True

    threading.Thread(target=prepare, name="recagents-prepare", daemon=True).start()
    server.run(sockets=sockets)
    if failure:
        raise failure[0]
    return 0
