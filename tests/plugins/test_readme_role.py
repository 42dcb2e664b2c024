"""The README's "Adding a role" sample is real: it trains, joins a chat turn, and keeps evidence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from langgraph.checkpoint.memory import InMemorySaver

import recagents.agents
from recagents.agents.rounds import DEFAULT_ROLES
from recagents.agents.trainer import TrainedAgents
from recagents.config import Settings
from recagents.ui.facade import Recommender
from tests.agent_fixtures import block_context, block_coordinator
from tests.support.registries import isolated_registry

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_sample() -> str:
    """The python block of the README's "Adding a role" section, as written there."""
    section = README.read_text(encoding="utf-8").split("### Adding a role\n", 1)[1]
    section = section.split("\n## ", 1)[0]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_readme_role_joins_after_the_ranker_and_keeps_its_evidence(monkeypatch, tmp_path):
    fresh = isolated_registry()
    # the sample's @register goes to this test's registry, not the process-wide one
    monkeypatch.setattr(recagents.agents, "register", fresh.register)
    exec(compile(readme_sample(), str(README), "exec"), {"__name__": "readme_sample"})
    assert "discovery" in fresh.names() and "discovery" not in fresh.defaults()

    context = block_context()
    coordinator = block_coordinator(
        context,
        namespace="readme",
        registry=fresh,
        roles=[*DEFAULT_ROLES, "discovery"],
        max_rounds=1,
        patience=1,
    )
    engine = TrainedAgents(coordinator, coordinator.run(), context, 0.0)
    discovery = coordinator.agents[-1]
    assert discovery.name == "discovery"
    assert engine.report.rounds[1].agents["discovery"]["known_items"] == context.n_items
    assert discovery.rounds_trained == engine.report.best_round  # restored with the others
    assert coordinator.ranker is not None and coordinator.ranker.name == "ranking"
    top = engine.recommend("u1", k=3)[0]
    assert top.evidence.because_of and "history" in top.evidence.agent_scores

    rec = Recommender(engine, Settings.load(home=tmp_path), checkpointer=InMemorySaver())
    reply = rec.chat("I loved Film 9", thread_id="t", k=5)
    picked = rec.state("t")["role_outputs"]["discovery"]["discovery"]
    shown = [i.id for i in reply.items]
    assert shown[1] == picked  # moved up to second place
    counts = np.asarray(context.fit.sum(axis=0)).ravel()
    index = context.dataset.item_map.index
    assert counts[index(picked)] == min(counts[index(i)] for i in shown[1:])
    assert reply.items[0].evidence.because_of  # the ranker's evidence survives the reorder
