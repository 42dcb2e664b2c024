"""Train/valid/test splits, named and reproducible so numbers compare with RecBole's tables.

``rs`` is RecBole's "RS" protocol (``eval_args: {split: {RS: [0.8, 0.1, 0.1]}, group_by: user,
order: RO}``): every user's interactions are shuffled and cut 8:1:1 with RecBole's own rounding
(``Dataset._calcu_split_ids``), so a user with few interactions still gets a valid and test item
when possible.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recagents.data import Dataset, interaction_matrix
from recagents.errors import DataError, UnknownEntityError

SPLIT_FILES = ("train", "valid", "test")
SPLIT_HEADER = ("user_id", "item_id", "rating", "timestamp")


@dataclass
class Split:
    """Three disjoint interaction frames over one :class:`Dataset`'s indices."""

    dataset: Dataset
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    protocol: str = "rs"
    seed: int | None = None

    def matrix(self, part: str) -> sp.csr_matrix:
        """Binary user x item matrix of ``train``, ``valid`` or ``test``."""
        frame = getattr(self, part)
        return interaction_matrix(frame, self.dataset.n_users, self.dataset.n_items)

    def describe(self) -> dict[str, object]:
        """Sizes and protocol, for reports and ``--json``."""
        return {
            "protocol": self.protocol,
            "seed": self.seed,
            "train": len(self.train),
            "valid": len(self.valid),
            "test": len(self.test),
        }


def split_counts(total: int, ratios: tuple[float, ...] = (0.8, 0.1, 0.1)) -> list[int]:
    """How many of ``total`` interactions go to each part, with RecBole's rounding."""
    counts = [int(r * total) for r in ratios]
    counts[0] = total - sum(counts[1:])
    for i in range(1, len(ratios)):
        if counts[0] <= 1:
            break
        if 0 < ratios[-i] * total < 1:
            counts[-i] += 1
            counts[0] -= 1
    return counts


def rs_split(
    dataset: Dataset, seed: int, ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
) -> Split:
    """RecBole's RS split: per user, random order, cut by ``ratios``."""
    if abs(sum(ratios) - 1.0) > 1e-9 or any(r < 0 for r in ratios):
        raise DataError(f"split ratios must be non-negative and sum to 1, got {ratios}")
    frame = dataset.interactions
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(frame))
    shuffled = frame.iloc[order]
    users = shuffled["user"].to_numpy()
    # stable sort by user keeps the random order inside each user's group
    grouped = shuffled.iloc[np.argsort(users, kind="stable")]
    parts: list[list[np.ndarray]] = [[], [], []]
    positions = np.arange(len(grouped))
    boundaries = np.flatnonzero(np.diff(grouped["user"].to_numpy())) + 1
    for group in np.split(positions, boundaries):
        counts = split_counts(len(group), ratios)
        cuts = np.cumsum(counts)[:-1]
        for part, chunk in zip(parts, np.split(group, cuts), strict=True):
            part.append(chunk)
    frames = [grouped.iloc[np.concatenate(p)].reset_index(drop=True) for p in parts]
    return Split(dataset, *frames, protocol="rs", seed=seed)


def save_split(split: Split, folder: Path) -> None:
    """Write ``train/valid/test.tsv`` with external ids (the ``--split DIR`` format)."""
    folder.mkdir(parents=True, exist_ok=True)
    users, items = split.dataset.user_map, split.dataset.item_map
    for part in SPLIT_FILES:
        frame = getattr(split, part)
        with (folder / f"{part}.tsv").open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
            writer.writerow(SPLIT_HEADER)
            for user, item, rating, ts in frame[["user", "item", "rating", "timestamp"]].itertuples(
                index=False
            ):
                rating_text = "" if np.isnan(rating) else f"{rating:g}"
                writer.writerow((users.external(user), items.external(item), rating_text, ts))


def load_split(folder: Path, dataset: Dataset) -> Split:
    """Read a split written by :func:`save_split` (or by hand / RecBole export) for ``dataset``.

    Raises:
        DataError: A file is missing or malformed, or names ids the dataset does not have.
    """
    frames = []
    for part in SPLIT_FILES:
        path = folder / f"{part}.tsv"
        if not path.exists():
            raise DataError(f"split folder {folder} lacks {part}.tsv (needs train, valid, test)")
        try:
            frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: not a tab-separated UTF-8 file ({exc})") from exc
        missing = [c for c in ("user_id", "item_id") if c not in frame.columns]
        if missing:
            raise DataError(
                f"{path}: missing column(s) {missing}; header must be {' '.join(SPLIT_HEADER)} "
                f"(tab-separated), found {list(frame.columns)}"
            )
        try:
            users = dataset.user_map.indices(frame["user_id"])
            items = dataset.item_map.indices(frame["item_id"])
        except UnknownEntityError as exc:
            raise DataError(f"{path}: {exc} (is this split of {dataset.name}?)") from exc
        rating = pd.to_numeric(frame.get("rating", pd.Series(dtype=str)), errors="coerce")
        timestamp = pd.to_numeric(frame.get("timestamp", pd.Series(dtype=str)), errors="coerce")
        frames.append(
            pd.DataFrame(
                {
                    "user": users,
                    "item": items,
                    "rating": rating.reindex(frame.index).to_numpy(dtype=np.float32),
                    "timestamp": timestamp.reindex(frame.index).fillna(0).to_numpy(dtype=np.int64),
                }
            )
        )
    return Split(dataset, *frames, protocol=f"dir:{folder}")
