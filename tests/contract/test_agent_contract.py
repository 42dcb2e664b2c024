"""Every registered role, present and future, passes the same contract."""

from __future__ import annotations

import numpy as np
import pytest

import recagents.agents  # noqa: F401  (registers the built-in roles)
from recagents.agents.base import ITEM, USER
from recagents.agents.registry import registry
from recagents.agents.towers import seed_user_vectors
from recagents.errors import ModelFitError
from tests.agent_fixtures import block_context

ROLES = registry.names()


def _peers(context) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    return {USER: seed_user_vectors(context), ITEM: context.item_text}


def _state_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.allclose(a[k], b[k]) for k in a)


def test_the_built_in_roles_are_registered_in_training_order():
    assert ROLES[:3] == ["user_profile", "item", "ranking"]


@pytest.mark.parametrize("role", ROLES)
def test_fit_returns_finite_metrics_and_well_shaped_vectors(role):
    context = block_context()
    agent = registry.create(role)
    metrics = agent.fit(context, _peers(context))
    assert np.isfinite(metrics["loss"])
    vectors = agent.vectors()
    if agent.publishes is None:
        assert vectors is None
    else:
        n = context.n_users if agent.publishes == USER else context.n_items
        assert vectors.shape == (n, context.dim) and np.isfinite(vectors).all()


@pytest.mark.parametrize("role", ROLES)
def test_partial_fit_changes_the_model(role):
    context = block_context()
    agent = registry.create(role)
    agent.setup(context)
    before = {k: v.copy() for k, v in agent.state().items()}
    agent.partial_fit(context, _peers(context))
    assert not _state_equal(before, agent.state())
    assert agent.rounds_trained == 1


@pytest.mark.parametrize("role", ROLES)
def test_save_load_round_trip(role, tmp_path):
    context = block_context()
    agent = registry.create(role)
    agent.fit(context, _peers(context))
    agent.save(tmp_path)
    assert (tmp_path / f"{role}.safetensors").exists() and (tmp_path / f"{role}.json").exists()
    assert not list(tmp_path.glob("*.pkl"))
    clone = registry.create(role)
    clone.load(tmp_path, context)
    assert _state_equal(agent.state(), clone.state())
    assert clone.rounds_trained == agent.rounds_trained
    if agent.scores:
        users = np.arange(context.n_users)
        assert np.allclose(
            agent.score(users, _peers(context), context.train),
            clone.score(users, _peers(context), context.train),
        )


@pytest.mark.parametrize("role", ROLES)
def test_deterministic_under_a_seed(role):
    runs = []
    for _ in range(2):
        context = block_context(seed=3)
        agent = registry.create(role)
        agent.fit(context, _peers(context))
        runs.append(agent.state())
    assert _state_equal(*runs)


def test_nan_loss_raises_model_fit_error():
    context = block_context()
    agent = registry.create("user_profile", {"lr": 1e30})
    with pytest.raises(ModelFitError, match="lower its learning rate"):
        agent.fit(context, _peers(context))
