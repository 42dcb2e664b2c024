"""Fixtures shared by the conversation tests on real MovieLens-100K."""

from __future__ import annotations

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from recagents.config import Settings
from recagents.ui.facade import Recommender


@pytest.fixture(scope="module")
def engine(ml100k_engine):  # type: ignore[no-untyped-def]
    """The trained ML-100K engine (trained once per session in tests/conftest.py)."""
    return ml100k_engine


@pytest.fixture
def rec(engine, tmp_path):  # type: ignore[no-untyped-def]
    """A fresh Recommender on that engine: in-memory threads, its own home."""
    return Recommender(engine, Settings.load(home=tmp_path), checkpointer=InMemorySaver())
