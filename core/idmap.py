"""The one place that maps external ids to dense indices and back.

External ids are always strings (MovieLens ids, SKUs, e-mail hashes...); indices are what models,
matrices and the vector store rows use. Every layer converts through an :class:`IdMap`, so an id
never silently changes meaning between the data, the agents and the API.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from recagents.errors import UnknownEntityError


class IdMap:
    """Bidirectional, append-only map between external string ids and ``0..n-1``."""

    def __init__(self, ids: Iterable[object] = (), *, kind: str = "entity") -> None:
        self.kind = kind
        self._ids: list[str] = []
        self._index: dict[str, int] = {}
        for ext in ids:
            self.add(ext)

    def add(self, ext: object) -> int:
        """Index of ``ext``, appending it when new (how a dataset's maps are built).

        Serving never appends: an unknown user or item raises :class:`UnknownEntityError` from
        :meth:`index`, which the ranking path turns into its cold-start route.
        """
        key = str(ext)
        found = self._index.get(key)
        if found is not None:
            return found
        self._index[key] = len(self._ids)
        self._ids.append(key)
        return len(self._ids) - 1

    def index(self, ext: object) -> int:
        """Index of a known id.

        Raises:
            UnknownEntityError: The id was never added.
        """
        try:
            return self._index[str(ext)]
        except KeyError:
            raise UnknownEntityError(self.kind, ext) from None

    def indices(self, exts: Iterable[object]) -> np.ndarray:
        """Indices of many known ids, as an int64 array."""
        return np.fromiter((self.index(e) for e in exts), dtype=np.int64)

    def external(self, idx: int) -> str:
        """External id at ``idx``."""
        if not 0 <= int(idx) < len(self._ids):
            raise UnknownEntityError(self.kind, f"index {idx}")
        return self._ids[int(idx)]

    def externals(self, idxs: Iterable[int]) -> list[str]:
        """External ids of many indices."""
        return [self.external(i) for i in idxs]

    @property
    def ids(self) -> Sequence[str]:
        """All external ids, in index order."""
        return tuple(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, ext: object) -> bool:
        return str(ext) in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdMap) and self._ids == other._ids and self.kind == other.kind

    def __repr__(self) -> str:
        return f"IdMap(kind={self.kind!r}, n={len(self)})"
