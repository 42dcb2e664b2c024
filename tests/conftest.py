"""Shared fixtures. The offline switches are set before any test imports HF, Chroma or Gradio."""

from __future__ import annotations

import os

from recagents.env import OFFLINE_ENV

os.environ.update(OFFLINE_ENV)  # forced, not setdefault: a developer's shell must not go online

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from recagents.config import Settings  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's RECAGENTS_* settings or writes to their cache."""
    for key in list(os.environ):
        if key.startswith("RECAGENTS_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One encoder cache per test session, so the catalog is encoded at most once."""
    return tmp_path_factory.mktemp("encoder-cache")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings whose home is a fresh temporary folder."""
    return Settings.load(home=tmp_path / "home")


@pytest.fixture(scope="session")
def ml100k():  # type: ignore[no-untyped-def]
    """MovieLens-100K from the recbole wheel, enriched (loaded once per session)."""
    from recagents.data import load_dataset

    return load_dataset("movielens-100k")


@pytest.fixture(scope="session")
def torch_one_thread() -> None:
    """Two busy cores: one torch thread was 2x faster than two."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def ml100k_engine(ml100k, tmp_path_factory, torch_one_thread):  # type: ignore[no-untyped-def]
    """Agents trained on ML-100K's RS split, one round (the text encoding dominates the cost).

    Shared by every test that needs the real catalog with trained agents and a real embedded
    ChromaDB, so the catalog is encoded and trained once per session.
    """
    from recagents.agents.trainer import train_agents
    from recagents.data.splits import rs_split

    home = tmp_path_factory.mktemp("ml100k-home")
    settings = Settings.load(home=home)
    # The ~2,600 ML-100K texts take ~45 s to encode. Their embeddings are kept between runs in
    # pytest's cache folder (keyed by model and text, like any text cache), so a warm `make
    # test` skips that; a clean clone encodes them for real. The encoder itself is tested on
    # cold caches in tests/integration/test_encoder.py.
    kept = _kept_text_cache()
    mine = settings.cache_dir / "text-embeddings.sqlite"
    if kept.exists():
        _copy_sqlite(kept, mine)
    engine = train_agents(
        rs_split(ml100k, settings.seed), settings, max_rounds=1, patience=1, progress=False
    )
    if mine.exists():
        _copy_sqlite(mine, kept)
    return engine


def _kept_text_cache() -> Path:
    return Path(__file__).resolve().parents[1] / ".pytest_cache/recagents/text-embeddings.sqlite"


def _copy_sqlite(source: Path, target: Path) -> None:
    """Copy a SQLite database with its backup API (safe while it is open), atomically."""
    import sqlite3
    from contextlib import closing

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(target.name + ".tmp")
    staging.unlink(missing_ok=True)
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(staging)) as dst:
        src.backup(dst)
    staging.replace(target)
