"""A catalog's split joined with dialogue corpora: each dialogue becomes a user of the train part.

``recagents train --with-dialogues N`` trains the agents on the union of the catalog's train
interactions and an ingested dialogue corpus (:mod:`recagents.data.dialogues`). The union is
built here, once, so every agent sees the same dialogue users in the collaborative rounds:

- every dialogue is a user (``corpus.user_id(dialogue)``) appended after the catalog's users, so
  the catalog's user indices, and its valid and test parts, are unchanged: round selection and
  the catalog's test metrics stay on the catalog's own users;
- its interactions (train part only) are the films mentioned in it that the seeker did not turn
  down (``mentioned`` minus ``disliked``): films named together in one conversation go together,
  which is what a recommender suggests next;
- the last suggestion the seeker accepted (``accepted``) is flagged ``holdout``: the ranking
  agent learns on it (which suggestion was taken, given the rest of the conversation) instead of
  a random tenth; the towers and the item-item model learn from the other films;
- its text (``said``) is the seeker's words, so the user-profile agent's text seed for that user
  is what the seeker asked for;
- a weight per user (:func:`user_weights`): a dialogue names five or six films where a MovieLens
  user rated a hundred, so an unweighted union would drown the dialogues. Every agent reads the
  weights from its training context (the towers' and the ranker's losses, the ranker's item-item
  model and popularity).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np
import pandas as pd

from recagents.data.splits import Split
from recagents.errors import DataError, UnknownEntityError
from recagents.idmap import IdMap

#: Weight of a dialogue user next to a catalog user (1.0) in every agent's training; chosen on
#: ReDial train with movielens-small by ``bench/redial.py`` (inner split: dialogues 400-499 of
#: train.jsonl scored through the product path, the other 393 in the corpus): Recall@10 0.130 /
#: 0.152 / 0.134 at weights 0.5 / 2 / 10 (MovieLens valid NDCG@10 0.2075 / 0.2059 / 0.2013,
#: 0.2071 without dialogues).
DIALOGUE_WEIGHT = 2.0
#: Column of the train frame that marks rows the ranking agent must learn on (accepted
#: suggestions); absent for catalog-only splits.
HOLDOUT_COLUMN = "holdout"
#: A dialogue holds out its last accepted suggestion for the ranking agent only when it names at
#: least this many films (the others stay in the towers' training).
MIN_FILMS_TO_HOLD = 3
#: The seeker's words kept as a dialogue user's text (characters; the encoder reads ~256 tokens).
MAX_SAID_CHARS = 1500


class DialogueLike(Protocol):
    """What the union reads of a dialogue (:class:`recagents.data.dialogues.Dialogue`)."""

    @property
    def seeker_text(self) -> str:  # pragma: no cover - protocol
        """The seeker's messages."""
        ...

    @property
    def mentioned(self) -> tuple[str, ...]:  # pragma: no cover - protocol
        """Every mapped film, in order of first mention."""
        ...

    @property
    def disliked(self) -> tuple[str, ...]:  # pragma: no cover - protocol
        """Films the seeker did not like."""
        ...

    @property
    def accepted(self) -> tuple[str, ...]:  # pragma: no cover - protocol
        """Suggestions the seeker took."""
        ...


class CorpusLike(Protocol):
    """What the union reads of a corpus (:class:`recagents.data.dialogues.DialogueCorpus`)."""

    name: str
    catalog: str
    dialogues: Any  # a sequence of DialogueLike

    def user_id(self, dialogue: Any) -> str:  # pragma: no cover - protocol
        """The id the dialogue has as a user of the union."""
        ...


@dataclass(frozen=True)
class UnionInfo:
    """What a union added, recorded with the run (``metrics.json``'s ``dialogues``)."""

    corpora: tuple[str, ...]
    weight: float
    users: int
    interactions: int
    accepted: int

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "corpora": list(self.corpora),
            "weight": self.weight,
            "users": self.users,
            "interactions": self.interactions,
            "accepted_holdout": self.accepted,
        }


def dialogue_union(
    split: Split, corpora: Sequence[CorpusLike], weight: float = DIALOGUE_WEIGHT
) -> tuple[Split, np.ndarray, UnionInfo]:
    """The split with every dialogue of ``corpora`` as a train-only user.

    Args:
        split: The catalog's split (its dataset is the catalog the corpora were mapped to).
        corpora: Ingested dialogue corpora.
        weight: Each dialogue user's weight in training (catalog users weigh 1).

    Returns:
        The union split (valid and test unchanged), the per-user weights (catalog users first)
        and what was added.

    Raises:
        DataError: A corpus was mapped to another catalog, names a film the catalog lacks, or
            two corpora share a name; the weight is not positive.
    """
    dataset = split.dataset
    if not weight > 0:
        raise DataError(f"the dialogue weight must be positive, got {weight}")
    names = [c.name for c in corpora]
    if len(set(names)) != len(names):
        raise DataError(f"dialogue corpora named twice: {names}")
    user_ids: list[str] = []
    said: list[str] = []
    rows: list[tuple[int, int, bool]] = []
    accepted_rows = 0
    first = dataset.n_users
    for corpus in corpora:
        if corpus.catalog != dataset.name:
            raise DataError(
                f"dialogue corpus {corpus.name!r} is mapped to catalog {corpus.catalog!r}, not "
                f"{dataset.name!r}: ingest it again with --catalog {dataset.name}, or train "
                f"--dataset {corpus.catalog}"
            )
        for dialogue in corpus.dialogues:
            negative = set(dialogue.disliked)
            films = [f for f in dict.fromkeys(dialogue.mentioned) if f not in negative]
            if not films:
                continue
            try:
                items = dataset.item_map.indices(films)
            except UnknownEntityError as exc:  # the corpus is stale for this catalog
                raise DataError(
                    f"dialogue corpus {corpus.name!r}: {exc} (was the catalog {dataset.name!r} "
                    "changed since the corpus was ingested? ingest it again)"
                ) from exc
            user = first + len(user_ids)
            user_ids.append(corpus.user_id(dialogue))
            said.append(str(dialogue.seeker_text or "")[:MAX_SAID_CHARS])
            taken = [f for f in dialogue.accepted if f in set(films)]
            # the last suggestion taken is the ranking agent's to learn on, when at least two
            # other films stay in training (the towers and the item-item model learn from them)
            held = taken[-1] if taken and len(films) >= MIN_FILMS_TO_HOLD else None
            for film, item in zip(films, items, strict=True):
                accepted_rows += int(film == held)
                rows.append((user, int(item), film == held))
    if not user_ids:
        raise DataError(
            f"dialogue corpora {names} hold no dialogue with a film of {dataset.name!r} to learn"
        )
    clash = set(user_ids) & set(dataset.user_map.ids)
    if clash:
        raise DataError(f"dialogue user ids clash with catalog users: {sorted(clash)[:3]}")
    users = pd.concat(
        [
            dataset.users.assign(said=""),
            pd.DataFrame({"user_id": user_ids, "said": said}),
        ],
        ignore_index=True,
    )
    added = pd.DataFrame(
        {
            "user": np.array([r[0] for r in rows], dtype=np.int64),
            "item": np.array([r[1] for r in rows], dtype=np.int64),
            "rating": np.full(len(rows), np.nan, dtype=np.float32),
            "timestamp": np.zeros(len(rows), dtype=np.int64),
        }
    )
    union = replace(
        dataset,
        interactions=pd.concat([dataset.interactions, added], ignore_index=True),
        users=users,
        user_map=IdMap([*dataset.user_map.ids, *user_ids], kind="user"),
        info={**dataset.info, "dialogues": list(names)},
    )
    train = pd.concat(
        [
            split.train.assign(**{HOLDOUT_COLUMN: False}),
            added.assign(**{HOLDOUT_COLUMN: np.array([r[2] for r in rows], dtype=bool)}),
        ],
        ignore_index=True,
    )
    weights = np.ones(union.n_users, dtype=np.float32)
    weights[first:] = weight
    info = UnionInfo(tuple(names), float(weight), len(user_ids), len(rows), accepted_rows)
    return (
        Split(
            union,
            train,
            split.valid,
            split.test,
            protocol=f"{split.protocol}+dialogues",
            seed=split.seed,
        ),
        weights,
        info,
    )


__all__ = [
    "DIALOGUE_WEIGHT",
    "HOLDOUT_COLUMN",
    "CorpusLike",
    "DialogueLike",
    "UnionInfo",
    "dialogue_union",
]
