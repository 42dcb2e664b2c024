"""What the HTTP API and the Gradio UI share: the live recommender, catalog look-ups, training.

Both front ends talk to one :class:`Service`, so the API and the chat see the same threads, the
same catalog and the same model, and a "train" click swaps the recommender for both at once.
Nothing here imports Gradio or FastAPI.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import PurePath
from typing import Any

import numpy as np

from recagents.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

#: ``progress(fraction in [0, 1], message)``: how a trainer reports where it is.
ProgressFn = Callable[[float, str], None]
#: Trains (or reloads) and returns a new :class:`~recagents.ui.facade.Recommender`.
#: ``trainer(progress)`` or ``trainer(progress, dialogues=[...])``: trains and returns a new
#: recommender (``dialogues``: the ingested corpora to learn from with the catalog).
Trainer = Callable[..., Any]


def jsonable(value: Any) -> Any:
    """Plain JSON values: numpy scalars unwrapped, NaN/inf -> None, tuples -> lists."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass
class TrainingStatus:
    """Where the UI's "train" run stands (one at a time)."""

    state: str = "idle"  # idle | running | done | failed
    progress: float = 0.0
    message: str = ""
    started: float | None = None
    finished: float | None = None
    error: str | None = None
    runs: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass
class _Catalog:
    """Per-recommender catalog indexes, rebuilt when the recommender is swapped."""

    owner: int
    titles: list[str]
    folded: list[str]
    popularity: np.ndarray
    genres: list[str]


def _dialogues(engine: Any) -> dict[str, Any] | None:
    """What the serving run records about its dialogue corpora (``None``: catalog only)."""
    return getattr(getattr(engine, "trained", None), "dialogues", None)


class Service:
    """The live recommender plus the look-ups and the training run the front ends need.

    Args:
        recommender: A built :class:`~recagents.ui.facade.Recommender`.
        trainer: Optional callable that trains and returns a new recommender; the UI's
            "train" button and nothing else runs it, in a background thread.
    """

    def __init__(self, recommender: Any, trainer: Trainer | None = None) -> None:
        self._recommender = recommender
        self.trainer = trainer
        self.training = TrainingStatus()
        self._lock = threading.Lock()
        self._catalog: _Catalog | None = None
        self._thread: threading.Thread | None = None

    # -- the live recommender ------------------------------------------------------------------

    @property
    def recommender(self) -> Any:
        """The recommender serving now (read it once per request: a training run may swap it)."""
        return self._recommender

    def swap(self, recommender: Any) -> None:
        """Serve a new recommender from the next request on."""
        with self._lock:
            self._recommender = recommender
            self._catalog = None

    # -- catalog -------------------------------------------------------------------------------

    def _index(self) -> _Catalog:
        rec = self._recommender
        catalog = self._catalog
        if catalog is not None and catalog.owner == id(rec):
            return catalog
        items = rec.dataset.items
        titles = [str(t) for t in items["title"].tolist()]
        popularity = rec.engine.popularity
        genres = sorted(
            {g for value in items["genres"].tolist() for g in str(value).split("|") if g.strip()}
            - {"nan", "None"}
        )
        catalog = _Catalog(id(rec), titles, [t.casefold() for t in titles], popularity, genres)
        with self._lock:
            self._catalog = catalog
        return catalog

    @property
    def genres(self) -> list[str]:
        """Every genre in the catalog."""
        return self._index().genres

    def item_info(self, item_id: str) -> dict[str, Any]:
        """``id``, ``title`` (without year), ``year`` and ``genres`` of one catalog item.

        Raises:
            UnknownEntityError: ``item_id`` is not in the catalog.
        """
        dataset = self._recommender.dataset
        index = dataset.item_map.index(item_id)
        return self._info(index)

    def _info(self, index: int) -> dict[str, Any]:
        dataset = self._recommender.dataset
        row = dataset.items.iloc[int(index)]
        year = row.get("year")
        genres = str(row.get("genres") or "")
        return {
            "id": dataset.item_map.external(int(index)),
            "title": str(row["title"]),
            "year": None
            if year is None or (isinstance(year, float) and math.isnan(year))
            else int(year),
            "genres": [g for g in genres.split("|") if g and g != "nan"],
        }

    def display_title(self, item_id: str) -> str:
        """``Title (year)``, or the id itself for an id the catalog does not know."""
        dataset = self._recommender.dataset
        try:
            return str(dataset.item_title(dataset.item_map.index(item_id)))
        except Exception:  # a stale id in an old thread must not break the profile panel
            return str(item_id)

    def search(self, query: str, limit: int = 20) -> list[dict[str, Any]]:
        """Catalog search: title substring matches first (most popular first), then fuzzy ones.

        Raises:
            DataError: ``limit`` out of range or a query longer than 200 characters.
        """
        if not 1 <= int(limit) <= 100:
            raise DataError("limit must be between 1 and 100")
        query = (query or "").strip()
        if len(query) > 200:
            raise DataError("search text must be at most 200 characters")
        catalog = self._index()
        if not query:
            order = np.argsort(-catalog.popularity, kind="stable")[: int(limit)]
            return [self._info(int(i)) for i in order]
        folded = query.casefold()
        hits = [i for i, title in enumerate(catalog.folded) if folded in title]
        hits.sort(key=lambda i: -float(catalog.popularity[i]))
        # The chat's title matcher first: "the termintor", "lion kng" or "Godfather, The" find
        # what the chat would understand, so search and chat agree on a typed title.
        meant = self._meant(query)
        if meant is not None:
            hits = [meant, *(i for i in hits if i != meant)]
        picks = hits[: int(limit)]
        if len(picks) < int(limit) and len(query) >= 3:
            from rapidfuzz import fuzz, process

            taken = set(picks)
            for _, score, index in process.extract(
                folded, catalog.folded, scorer=fuzz.WRatio, limit=int(limit) * 2, score_cutoff=80
            ):
                if index not in taken and score >= 80:
                    picks.append(int(index))
                    taken.add(int(index))
                if len(picks) >= int(limit):
                    break
        return [self._info(i) for i in picks]

    def _meant(self, query: str) -> int | None:
        """The item index the chat's title matcher reads ``query`` as, or None."""
        parser = getattr(self._recommender, "parser", None)
        if parser is None:
            return None
        item_id = parser.matcher.find(query)
        if item_id is None:
            return None
        return int(self._recommender.dataset.item_map.index(item_id))

    def check_genre(self, genre: str) -> str:
        """The catalog's spelling of ``genre`` (case-insensitive).

        Raises:
            ConfigError: The catalog has no such genre (the message lists the known ones).
        """
        for known in self.genres:
            if known.casefold() == genre.strip().casefold():
                return known
        raise ConfigError(f"unknown genre {genre!r}; known genres: {', '.join(self.genres)}")

    def users(self, limit: int = 1000) -> list[str]:
        """Known user ids (the first ``limit``), for the UI's user picker."""
        ids = self._recommender.dataset.user_map.ids
        return [str(u) for u in list(ids)[:limit]]

    def is_known_user(self, user_id: str) -> bool:
        """Whether the catalog has this user (else the cold-start route serves them)."""
        return user_id in self._recommender.dataset.user_map

    # -- threads -------------------------------------------------------------------------------

    def thread(self, thread_id: str) -> dict[str, Any]:
        """A thread's memory as plain data: its messages and what it learned about the person."""
        from langchain_core.messages import HumanMessage

        state = self._recommender.state(thread_id)
        messages = [
            {
                "role": "user" if isinstance(m, HumanMessage) else "assistant",
                "text": str(getattr(m, "content", "")),
            }
            for m in state.get("messages") or []
        ]
        return {
            "thread_id": thread_id,
            "user_id": state.get("user_id"),
            "messages": messages,
            **{
                key: list(state.get(key) or [])
                for key in ("liked", "disliked", "seen", "rejected", "shown")
            },
        }

    def forget(self, thread_id: str) -> int | None:
        """Forget a thread (memory and log entries); entries removed, or None if unknown."""
        return self._recommender.forget(thread_id)  # type: ignore[no-any-return]

    # -- readiness -----------------------------------------------------------------------------

    def readiness(self) -> dict[str, dict[str, str]]:
        """Each part a chat turn needs, probed now: ``{"status": "ok" | "failing", "detail"}``.

        ``/health`` answers from this, so "ok" means a turn can be served, not only that the
        process is up. A probe is one cheap call on the real part (a count in the vector store,
        a checkpoint look-up in the conversation memory), never a scan. The details are fixed
        sentences: a probe's exception may hold a path or an internal URL, so it goes to the
        server log and not into the answer.
        """
        rec = self._recommender
        engine = rec.engine

        def probe(part: str, check: Callable[[], str], failing: str) -> dict[str, str]:
            try:
                return {"status": "ok", "detail": check()}
            except Exception:  # noqa: BLE001 - any failure of the part makes it not ready
                logger.exception("readiness: %s failing", part)
                return {"status": "failing", "detail": failing}

        def agents() -> str:
            if not engine.report.rounds or not engine.agents:
                raise RuntimeError("no trained round")
            return f"{len(engine.agents)} agents serving round {engine.report.best_round}"

        def store() -> str:
            if engine.store.count(engine.item_collection) <= 0:
                raise RuntimeError("the serving item collection is empty")
            return "the serving vectors answer"

        def memory() -> str:
            rec.checkpointer.get_tuple({"configurable": {"thread_id": "__readiness__"}})
            return "saved threads can be read"

        chat_model = getattr(rec.deps, "chat_model", None)
        return {
            "agents": probe("agents", agents, "no trained agents are loaded"),
            "store": probe("store", store, "the vector store cannot be read"),
            "memory": probe("memory", memory, "the conversation memory cannot be read"),
            "chat_model": {
                "status": "ok",
                "detail": "verified templates (no chat model configured)"
                if chat_model is None
                else "loaded; replies fall back to verified templates when it fails",
            },
        }

    # -- agents and training -------------------------------------------------------------------

    def agents(self) -> dict[str, Any]:
        """Registered roles with their last round's metrics, and the run's summary."""
        engine = self._recommender.engine
        report = engine.report
        rounds = list(report.rounds)
        last = rounds[-1] if rounds else None
        serving = next((r for r in rounds if r.round == report.best_round), last)
        agents = []
        for agent in engine.agents:
            metrics = dict((last.agents if last else {}).get(agent.instance) or {})
            serving_metrics = dict((serving.agents if serving else {}).get(agent.instance) or {})
            # The served weights are the best round's, so ``rounds_trained`` counts up to it;
            # the run may have gone on (and stopped on patience) after it.
            trained = int(getattr(agent, "rounds_trained", 0))
            if serving is None or last is None:
                status = "not trained"
            else:
                status = f"serving round {serving.round}" + (
                    " (text seeds)" if serving.round == 0 else ""
                )
                if last.round != serving.round:
                    status += (
                        f"; trained to round {last.round}, no later round did better on validation"
                    )
            agents.append(
                {
                    "name": agent.instance,
                    "role": agent.name,
                    "order": int(getattr(agent, "order", 0)),
                    "publishes": getattr(agent, "publishes", None),
                    "consumes": list(getattr(agent, "consumes", ()) or ()),
                    "scores": bool(getattr(agent, "scores", False)),
                    "rounds_trained": trained,
                    "status": status,
                    "last_round": last.round if last else None,
                    "metrics": metrics,
                    "serving_round": serving.round if serving else None,
                    "serving_metrics": serving_metrics,
                }
            )
        return jsonable(
            {
                "agents": agents,
                "run": {
                    "rounds": len(rounds),
                    "best_round": report.best_round,
                    "best_valid_ndcg@10": report.best_ndcg if rounds else None,
                    "stopped": report.stopped,
                    # The folder's name only: the absolute path tells a caller where the
                    # server keeps its files, which is none of a caller's business.
                    "run_dir": PurePath(report.run_dir).name if report.run_dir else "",
                    "last_valid": dict(last.valid) if last else {},
                    "dialogues": _dialogues(engine),
                },
                "training": self.training.to_dict(),
            }
        )

    def report(self) -> dict[str, Any]:
        """The last training run's report as plain data (what ``metrics.json`` holds)."""
        engine = self._recommender.engine
        report = engine.report
        return jsonable(
            {**report.to_dict(), "run_dir": report.run_dir, "dialogues": _dialogues(engine)}
        )

    def dialogue_options(self) -> tuple[list[str], list[str]]:
        """The home's ingested dialogue corpora, and those the serving model learned from.

        The interaction log's snapshots (``feedback-*``) are left out: the feedback option
        takes the log as it is now, so an old snapshot is never offered on its own.
        """
        from recagents.data.dialogues import dialogue_names
        from recagents.data.feedback import FEEDBACK_PREFIX

        rec = self._recommender
        settings = getattr(rec, "settings", None)
        names = dialogue_names(settings.home) if settings is not None else []
        trained = getattr(rec.engine, "trained", None)
        serving = list((getattr(trained, "dialogues", None) or {}).get("corpora") or [])
        names = [n for n in names if not n.startswith(FEEDBACK_PREFIX)]
        serving = [n for n in serving if not n.startswith(FEEDBACK_PREFIX)]
        return sorted(set(names) | set(serving)), serving

    def start_training(
        self, dialogues: Sequence[str] | None = None, *, with_feedback: bool = False
    ) -> bool:
        """Run the trainer in a background thread; ``False`` when one is already running.

        Args:
            dialogues: Ingested dialogue corpora to train on with the catalog; ``None``: the
                trainer's default (those the serving model learned from).
            with_feedback: A feedback round: the interaction log's threads join as users and
                the serving model's weights are round 0 (the trainer gets
                ``with_feedback=True``).

        Raises:
            ConfigError: No trainer was configured.
            DataError: A named corpus is not ingested in this home (checked before starting).
        """
        if self.trainer is None:
            raise ConfigError("training from the UI is not available: no trainer configured")
        if dialogues is not None:
            known = self.dialogue_options()[0]
            unknown = [d for d in dialogues if d not in known]
            if unknown:
                raise DataError(
                    f"unknown dialogue corpus {unknown[0]!r}: ingest it with `recagents ingest "
                    f"--dialogues FILE --name {unknown[0]}` (found: {', '.join(known) or 'none'})"
                )
        options: dict[str, Any] = {} if dialogues is None else {"dialogues": list(dialogues)}
        if with_feedback:
            options["with_feedback"] = True
        with self._lock:
            if self.training.state == "running":
                return False
            self.training = TrainingStatus(
                state="running",
                message="starting",
                started=time.time(),
                runs=self.training.runs,
            )
            self._thread = threading.Thread(
                target=self._train, args=(options,), name="recagents-train", daemon=True
            )
            self._thread.start()
        return True

    def _progress(self, fraction: float, message: str) -> None:
        self.training.progress = max(0.0, min(1.0, float(fraction)))
        self.training.message = str(message)

    def _train(self, options: dict[str, Any]) -> None:
        trainer = self.trainer
        assert trainer is not None
        try:
            recommender = trainer(self._progress, **options)
        except Exception as exc:  # reported in the UI; the old recommender keeps serving
            logger.exception("training failed")
            self.training.state = "failed"
            self.training.error = f"{type(exc).__name__}: {exc}"
            self.training.message = "training failed; the previous model keeps serving"
        else:
            self.swap(recommender)
            self.training.state = "done"
            self.training.progress = 1.0
            self.training.message = "done: the new model is serving"
            self.training.runs += 1
        finally:
            self.training.finished = time.time()

    def wait_training(self, timeout: float | None = None) -> TrainingStatus:
        """Block until the running training finishes (tests, CLI)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self.training
