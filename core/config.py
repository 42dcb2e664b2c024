"""Settings, with one precedence rule everywhere.

explicit argument > per-run context > environment (``RECAGENTS_*``) > settings file > defaults.

Environment variables only fill what the caller left unset; they never override a value passed in
code (a pitfall of several LangGraph templates).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from recagents.errors import ConfigError

ENV_PREFIX = "RECAGENTS_"


def default_home() -> Path:
    """Where prepared data, caches, checkpoints and vector stores live unless told otherwise."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "recagents"


#: Where training rounds run (``Settings.engine``).
ENGINES = ("local", "ray")


@dataclass(frozen=True)
class Settings:
    """Process-wide settings.

    Attributes:
        home: Root folder for caches, checkpoints and the embedded ChromaDB.
        dataset: Default dataset name (``movielens-100k``, ``movielens-small``) or a folder made by
            ``recagents ingest``.
        encoder: ``bundled`` (the packaged all-MiniLM-L6-v2) or a sentence-transformers model path.
        chroma_url: ``http://host:port`` of a ChromaDB server; empty means an embedded store under
            ``home``.
        seed: Seed for splits and training.
        batch_size: Encoder batch size (16 was fastest on 2 cores for short item texts).
        threads: Torch intra-op threads (each Ray actor's too); on two busy cores one thread
            was 2x faster than two.
        llm_wait_s: Longest wait (seconds) for a chat model busy with another reply before a
            turn answers with template reasons (``RECAGENTS_LLM_WAIT_S``).
        engine: Where training rounds run: ``local`` (this process) or ``ray`` (each agent an
            actor on a Ray cluster; needs ``chroma_url``).
        ray_address: The Ray cluster to join (``auto``, ``host:port``); empty starts a private
            one on this machine.
        user_shards: Replicas of the user-profile agent, each owning ``user % N == k``.
        item_shards: Replicas of the item agent, each owning ``item % M == k``.
        run_dir: The folder that holds every run's checkpoints, ``metrics.json`` and the serving
            pointer (``RECAGENTS_RUN_DIR``, ``--run-dir``); empty for ``home/runs``. On a Ray
            cluster every node must see it (a shared filesystem): the actors write their
            checkpoints there.
        memory_url: Where conversation threads live (``RECAGENTS_MEMORY_URL``): empty for
            ``home/conversations.sqlite``, ``sqlite:///abs/path`` or ``postgresql://...`` so
            that server replicas on several machines share them.
    """

    home: Path = field(default_factory=default_home)
    dataset: str = "movielens-100k"
    encoder: str = "bundled"
    chroma_url: str = ""
    seed: int = 2020
    batch_size: int = 16
    threads: int = 1
    llm_wait_s: float = 1.0
    engine: str = "local"
    ray_address: str = ""
    user_shards: int = 1
    item_shards: int = 1
    run_dir: str = ""
    memory_url: str = ""

    @classmethod
    def load(cls, config_file: str | Path | None = None, **overrides: Any) -> Settings:
        """Build settings from defaults, then a TOML file, then the environment, then overrides.

        Args:
            config_file: Optional TOML file with a ``[recagents]`` table (or top-level keys).
            **overrides: Explicit values; ``None`` means "not given".

        Raises:
            ConfigError: Unknown keys, unreadable files or values of the wrong type.
        """
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        if config_file is None and os.environ.get(ENV_PREFIX + "CONFIG"):
            config_file = os.environ[ENV_PREFIX + "CONFIG"]
        if config_file is not None:
            values.update(_read_toml(Path(config_file), known))
        for name in known:
            env = os.environ.get(ENV_PREFIX + name.upper())
            if env is not None and env != "":
                values[name] = env
        for name, value in overrides.items():
            if name not in known:
                raise ConfigError(
                    f"unknown setting {name!r}; known settings: {', '.join(sorted(known))}"
                )
            if value is not None:
                values[name] = value
        return cls(**{k: _coerce(k, v, known[k]) for k, v in values.items()})

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed (``None`` values are ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    @property
    def cache_dir(self) -> Path:
        """Encoder cache and prepared datasets."""
        return self.home / "cache"

    @property
    def runs_dir(self) -> Path:
        """Training checkpoints and metrics: ``run_dir`` when set, else ``home/runs``."""
        return Path(self.run_dir).expanduser() if self.run_dir else self.home / "runs"

    @property
    def chroma_path(self) -> Path:
        """Embedded ChromaDB folder (used when ``chroma_url`` is empty)."""
        return self.home / "chroma"


def _read_toml(path: Path, known: dict[str, dataclasses.Field[Any]]) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    table = data.get("recagents", data)
    if not isinstance(table, dict):
        raise ConfigError(f"config file {path}: [recagents] must be a table")
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ConfigError(
            f"config file {path}: unknown keys {unknown}; known keys: {', '.join(sorted(known))}"
        )
    return dict(table)


def _coerce(name: str, value: Any, spec: dataclasses.Field[Any]) -> Any:
    kind = spec.type if isinstance(spec.type, str) else getattr(spec.type, "__name__", "")
    try:
        if kind == "Path":
            return Path(value).expanduser()
        if kind == "int":
            if isinstance(value, bool):
                raise ValueError("a boolean is not a number")
            number = int(value)
            if name in {"batch_size", "threads", "user_shards", "item_shards"} and number < 1:
                raise ValueError("must be at least 1")
            return number
        if kind == "float":
            if isinstance(value, bool):
                raise ValueError("a boolean is not a number")
            number = float(value)
            if not number >= 0 or number == float("inf"):
                raise ValueError("must be a finite number of at least 0")
            return number
        if kind == "str":
            if not isinstance(value, str):
                raise ValueError(f"expected text, got {type(value).__name__}")
            if name == "engine" and value not in ENGINES:
                raise ValueError(f"one of {', '.join(ENGINES)}")
            return value
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name!r}: bad value {value!r} ({exc})") from exc
    return value
