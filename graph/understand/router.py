"""Semantic routing: a turn's action from the nearest labelled example turns.

Keyword rules break on phrasings nobody listed ("which would you pick?" has no "best", "how long
is it?" no cue word). The sentence encoder that embeds the catalog already knows that these are
questions about a shown film, so each turn is embedded and compared with labelled exemplars
(``words/exemplars.toml``); the label whose closest exemplars are nearest decides, but only when
it wins clearly (its score is high enough and ahead of the runner-up by a margin). Otherwise the
rules decide: they are the fallback, and they still fill every field (titles, genres, years...).

Exemplar embeddings are computed once per encoder and process (and kept in the encoder's cache
on disk when it has one); a turn then costs one short encoding, a few milliseconds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from recagents.graph.understand.vocabulary import _toml

#: Nearest exemplars per label averaged into the label's score.
TOP_K = 2
#: Lowest label score (cosine) the router acts on.
MIN_SCORE = 0.42
#: Lead over the runner-up label the router needs to act.
MIN_MARGIN = 0.08

Encode = Callable[[Sequence[str]], np.ndarray]


@dataclass(frozen=True, slots=True)
class RouteChoice:
    """The router's answer for one turn.

    Attributes:
        label: The best label (an action name).
        score: Its score: mean cosine similarity of its ``TOP_K`` nearest exemplars.
        margin: Its lead over the runner-up label.
        confident: Whether it clears :data:`MIN_SCORE` and :data:`MIN_MARGIN`.
    """

    label: str
    score: float
    margin: float
    confident: bool


def default_exemplars() -> dict[str, list[str]]:
    """The shipped exemplars, label -> turns."""
    return {label: list(texts) for label, texts in _toml("exemplars.toml").items()}


class SemanticRouter:
    """Nearest-exemplar intent routing over a sentence encoder.

    Args:
        encode: Texts -> L2-normalised embeddings (``TextEncoder.encode``), for the exemplars.
        encode_query: The same for one turn (default ``encode``); the graph passes an uncached
            one, so chat messages are never written to the embedding cache on disk.
        exemplars: label -> example turns (default: ``words/exemplars.toml``).
        min_score: See :data:`MIN_SCORE`.
        min_margin: See :data:`MIN_MARGIN`.
    """

    def __init__(
        self,
        encode: Encode,
        exemplars: Mapping[str, Sequence[str]] | None = None,
        *,
        encode_query: Encode | None = None,
        min_score: float = MIN_SCORE,
        min_margin: float = MIN_MARGIN,
    ) -> None:
        self._encode = encode
        self._encode_query = encode_query or encode
        self.exemplars = {k: list(v) for k, v in (exemplars or default_exemplars()).items()}
        self.labels = sorted(self.exemplars)
        self.min_score = min_score
        self.min_margin = min_margin
        self._matrix: np.ndarray | None = None
        self._owner: np.ndarray | None = None
        self._lock = threading.Lock()

    def _prepare(self) -> tuple[np.ndarray, np.ndarray]:
        """Exemplar embeddings and their label index, computed on first use."""
        with self._lock:
            if self._matrix is None or self._owner is None:
                texts = [t for label in self.labels for t in self.exemplars[label]]
                owner = [k for k, label in enumerate(self.labels) for _ in self.exemplars[label]]
                self._matrix = np.asarray(self._encode(texts), dtype=np.float32)
                self._owner = np.asarray(owner, dtype=np.int64)
            return self._matrix, self._owner

    def route(self, text: str) -> RouteChoice | None:
        """The label for ``text``, or None for text with nothing to embed."""
        text = " ".join(str(text or "").split())[:500]
        if not text:
            return None
        matrix, owner = self._prepare()
        query = np.asarray(self._encode_query([text]), dtype=np.float32)[0]
        sims = matrix @ query
        scores = []
        for k in range(len(self.labels)):
            mine = np.sort(sims[owner == k])[::-1][:TOP_K]
            scores.append(float(mine.mean()) if len(mine) else -1.0)
        order = np.argsort(scores)[::-1]
        best, second = int(order[0]), int(order[1]) if len(order) > 1 else int(order[0])
        margin = scores[best] - scores[second] if best != second else 1.0
        confident = scores[best] >= self.min_score and margin >= self.min_margin
        return RouteChoice(self.labels[best], scores[best], margin, confident)


_SHARED: dict[str, SemanticRouter] = {}
_SHARED_LOCK = threading.Lock()


def shared_router(key: str, encode: Encode, encode_query: Encode | None = None) -> SemanticRouter:
    """One router per encoder model for the whole process (exemplars embedded once)."""
    with _SHARED_LOCK:
        router = _SHARED.get(key)
        if router is None:
            router = SemanticRouter(encode, encode_query=encode_query)
            _SHARED[key] = router
        return router
