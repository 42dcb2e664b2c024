"""Fit a named model on a split and report RecBole-comparable metrics.

This is what ``recagents evaluate`` and ``bench/accuracy.py`` call, so the CLI and the benchmark
can never disagree on the protocol.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from recagents.baselines import BASELINES, FitContext, ScoringModel
from recagents.config import Settings
from recagents.data import Dataset
from recagents.encoder import encoder_from_settings
from recagents.errors import ConfigError
from recagents.evaluation import evaluate_ranking
from recagents.splits import Split
from recagents.texts import item_texts

logger = logging.getLogger(__name__)

#: Extra model factories registered by other modules (the agents add ``agents`` here).
MODEL_FACTORIES: dict[str, Callable[[Settings], ScoringModel]] = {
    name: (lambda _settings, f=factory: f()) for name, factory in BASELINES.items()
}


def model_names() -> list[str]:
    """Every name ``evaluate --model`` accepts."""
    _load_plugins()
    return sorted(MODEL_FACTORIES)


def _load_plugins() -> None:
    try:  # the agents package registers its trainer; optional until it exists
        import recagents.agents.trainer  # noqa: F401
    except ImportError:
        pass


def make_model(name: str, settings: Settings) -> ScoringModel:
    """Instantiate a model by name.

    Raises:
        ConfigError: Unknown name (the message lists the known ones).
    """
    _load_plugins()
    try:
        factory = MODEL_FACTORIES[name]
    except KeyError:
        raise ConfigError(
            f"unknown model {name!r}; choose one of {', '.join(model_names())}"
        ) from None
    return factory(settings)


def item_vectors_fn(dataset: Dataset, settings: Settings) -> Callable[[], np.ndarray]:
    """Lazy, memoised item text embeddings (the encoder loads only if a model asks)."""
    cache: dict[str, np.ndarray] = {}

    def get() -> np.ndarray:
        if "v" not in cache:
            cache["v"] = encoder_from_settings(settings).encode(item_texts(dataset), progress=True)
        return cache["v"]

    return get


def fit_and_evaluate(
    split: Split,
    model_name: str,
    settings: Settings,
    *,
    ks: Sequence[int] = (10,),
    extras: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train ``model_name`` on ``split.train``, report valid and test metrics.

    Test excludes each user's train and valid items; valid excludes train items. Valid interactions
    are never model input.
    """
    train, valid, test = split.matrix("train"), split.matrix("valid"), split.matrix("test")
    context = FitContext(
        train=train,
        valid=valid,
        item_vectors=item_vectors_fn(split.dataset, settings),
        seed=settings.seed,
        extras={"split": split, "settings": settings, **(extras or {})},
    )
    model = make_model(model_name, settings)
    start = time.perf_counter()
    model.fit(context)
    seconds = time.perf_counter() - start
    logger.info("fitted %s in %.1f s", model_name, seconds)
    valid_metrics = evaluate_ranking(model.score, valid, train, ks=ks)
    test_metrics = evaluate_ranking(model.score, test, train + valid, ks=ks)
    info = getattr(model, "info", None)
    return {
        "dataset": split.dataset.name,
        "model": model_name,
        "split": split.describe(),
        "metrics": {k: round(v, 6) for k, v in test_metrics.items() if "@" in k},
        "valid_metrics": {k: round(v, 6) for k, v in valid_metrics.items() if "@" in k},
        "users": int(test_metrics["users"]),
        "train_seconds": round(seconds, 3),
        "model_info": info() if callable(info) else {},
    }
