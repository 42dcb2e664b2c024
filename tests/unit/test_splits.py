import numpy as np
import pandas as pd
import pytest

from recagents.data import build_dataset
from recagents.data.splits import load_split, rs_split, save_split, split_counts
from recagents.errors import DataError


@pytest.mark.parametrize(
    ("total", "expected"),
    [
        (10, [8, 1, 1]),
        (20, [16, 2, 2]),
        (5, [3, 1, 1]),
        (3, [1, 1, 1]),
        (2, [1, 0, 1]),
        (1, [1, 0, 0]),
        (25, [21, 2, 2]),
    ],
)
def test_split_counts_follow_recbole_rounding(total, expected):
    assert split_counts(total) == expected


def _toy(n_users: int = 30, n_items: int = 50, seed: int = 0):
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        for i in rng.choice(n_items, size=rng.integers(3, 40), replace=False):
            rows.append((f"u{u}", f"i{i}", float(rng.integers(1, 6)), int(rng.integers(1e9))))
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    items = pd.DataFrame(
        {
            "item_id": [f"i{i}" for i in range(n_items)],
            "title": [f"Film {i}" for i in range(n_items)],
        }
    )
    return build_dataset("toy", inter, items)


def test_rs_split_is_a_per_user_partition_with_recbole_counts():
    dataset = _toy()
    split = rs_split(dataset, seed=7)
    parts = [split.train, split.valid, split.test]
    assert sum(len(p) for p in parts) == len(dataset.interactions)
    keys = [set(zip(p["user"], p["item"], strict=True)) for p in parts]
    assert not (keys[0] & keys[1]) and not (keys[0] & keys[2]) and not (keys[1] & keys[2])
    sizes = dataset.interactions.groupby("user").size()
    for user, total in sizes.items():
        got = [int((p["user"] == user).sum()) for p in parts]
        assert got == split_counts(int(total))


def test_rs_split_is_deterministic_under_a_seed_and_changes_with_it():
    dataset = _toy()
    a, b, c = rs_split(dataset, 1), rs_split(dataset, 1), rs_split(dataset, 2)
    assert a.test.equals(b.test)
    assert not a.test.equals(c.test)


def test_save_and_load_split_round_trip(tmp_path):
    dataset = _toy()
    split = rs_split(dataset, 3)
    save_split(split, tmp_path)
    header = (tmp_path / "train.tsv").read_text().splitlines()[0]
    assert header == "user_id\titem_id\trating\ttimestamp"
    loaded = load_split(tmp_path, dataset)
    for part in ("train", "valid", "test"):
        assert (loaded.matrix(part) != split.matrix(part)).nnz == 0


def test_load_split_errors_are_clear(tmp_path):
    dataset = _toy()
    with pytest.raises(DataError, match="lacks train.tsv"):
        load_split(tmp_path, dataset)
    save_split(rs_split(dataset, 3), tmp_path)
    (tmp_path / "test.tsv").write_text("user_id\titem_id\nu1\tnot-an-item\n")
    with pytest.raises(DataError, match="unknown item id 'not-an-item'"):
        load_split(tmp_path, dataset)
    (tmp_path / "test.tsv").write_text("user,item\nu1,i1\n")
    with pytest.raises(DataError, match="missing column"):
        load_split(tmp_path, dataset)


def test_bad_ratios_are_refused():
    with pytest.raises(DataError, match="sum to 1"):
        rs_split(_toy(), 1, (0.5, 0.1, 0.1))
