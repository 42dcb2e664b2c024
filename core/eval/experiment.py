"""Fit a named model on a split and report RecBole-comparable metrics.

This is what ``recagents evaluate`` and ``bench/accuracy.py`` call, so the CLI and the benchmark
can never disagree on the protocol.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from recagents.config import Settings
from recagents.data import Dataset
from recagents.data.splits import Split
from recagents.data.texts import item_texts
from recagents.encoder import encoder_from_settings
from recagents.errors import ConfigError
from recagents.eval.baselines import BASELINES, FitContext, ScoringModel
from recagents.eval.metrics import evaluate_ranking

logger = logging.getLogger(__name__)

#: Builds a model from the settings (``evaluate --model NAME`` looks NAME up in such a table).
ModelFactory = Callable[[Settings], ScoringModel]

#: The baselines as a model table. Higher layers compose their own explicit tables on top (the
#: agents' is :data:`recagents.agents.trainer.MODELS`); nothing registers itself here on import.
BASELINE_MODELS: dict[str, ModelFactory] = {
    name: (lambda _settings, f=factory: f()) for name, factory in BASELINES.items()
}


def make_model(
    name: str, settings: Settings, models: Mapping[str, ModelFactory] | None = None
) -> ScoringModel:
    """Instantiate a model by name from ``models`` (default: the baselines).

    Raises:
        ConfigError: Unknown name (the message lists the known ones).
    """
    table = BASELINE_MODELS if models is None else models
    try:
        factory = table[name]
    except KeyError:
        raise ConfigError(
            f"unknown model {name!r}; choose one of {', '.join(sorted(table))}"
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
    models: Mapping[str, ModelFactory] | None = None,
) -> dict[str, Any]:
    """Train ``model_name`` on ``split.train``, report valid and test metrics.

    Test excludes each user's train and valid items; valid excludes train items. Valid interactions
    are never model input. ``model_name`` is looked up in ``models`` (default: the baselines).
    """
    train, valid, test = split.matrix("train"), split.matrix("valid"), split.matrix("test")
    context = FitContext(
        train=train,
        valid=valid,
        item_vectors=item_vectors_fn(split.dataset, settings),
        seed=settings.seed,
        extras={"split": split, "settings": settings, **(extras or {})},
    )
    model = make_model(model_name, settings, models)
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
