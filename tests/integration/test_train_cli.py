"""End to end through the CLI on a small ingested catalog: real encoder, real embedded ChromaDB."""

from __future__ import annotations

import json

import pytest

from recagents.ui.cli import main

pytestmark = pytest.mark.slow

GENRES = ["Drama", "Comedy", "Horror", "Western"]


def _write_catalog(folder, name=""):  # type: ignore[no-untyped-def]
    items = ["item_id,title,year,genres,plot"]
    for i in range(32):
        genre = GENRES[i // 8]
        items.append(f"m{i},{genre} Story {i},{1990 + i},{genre},A {genre.lower()} film number {i}")
    inter = ["user_id,item_id,rating,timestamp"]
    for u in range(40):
        block = u % 4
        for i in range(block * 8, block * 8 + 8):
            if (i + u) % 5:  # each user misses a few of their block's films
                inter.append(f"u{u},m{i},{1 + (i + u) % 5},{1_000_000 + u * 100 + i}")
    (folder / f"items{name}.csv").write_text("\n".join(items) + "\n")
    (folder / f"ratings{name}.csv").write_text("\n".join(inter) + "\n")


def test_ingest_train_resume_and_recommend(tmp_path, capsys):
    _write_catalog(tmp_path)
    home = ["--home", str(tmp_path / "home")]
    assert (
        main(
            [
                *home,
                "ingest",
                "--interactions",
                str(tmp_path / "ratings.csv"),
                "--items",
                str(tmp_path / "items.csv"),
                "--name",
                "blocks",
            ]
        )
        == 0
    )
    assert "saved dataset 'blocks'" in capsys.readouterr().out

    args = [*home, "train", "--dataset", "blocks", "--rounds", "2", "--patience", "2"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "<- chosen" in out and "test ndcg@10" in out
    run = tmp_path / "home" / "runs" / "blocks-s2020-default"
    metrics = json.loads((run / "metrics.json").read_text())
    assert [r["round"] for r in metrics["rounds"]] == [0, 1, 2]
    assert (run / "rounds.png").exists() and (run / "final" / "ranking.safetensors").exists()

    # resume with more rounds continues after round 2 instead of starting over
    assert main([*args[:-4], "--rounds", "3", "--patience", "5", "--resume"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert [r["round"] for r in metrics["rounds"]] == [0, 1, 2, 3]
    capsys.readouterr()

    assert main([*home, "recommend", "--dataset", "blocks", "--user", "u1", "--k", "3"]) == 0
    out = capsys.readouterr().out
    # u1 is in the Comedy block: recommendations come from the films of that block it missed
    lines = [line for line in out.splitlines() if line.strip()[:2].strip().rstrip(".").isdigit()]
    assert len(lines) == 3 and all("Comedy" in line for line in lines), out
    assert "because you watched" in out


def test_train_refuses_bad_options(tmp_path, capsys):
    home = ["--home", str(tmp_path)]
    rc = main([*home, "train", "--roles", "user_profile,critic", "--rounds", "1"])
    assert rc == 2 and "unknown agent role 'critic'" in capsys.readouterr().err
    rc = main([*home, "train", "--rounds", "0"])
    assert rc == 2 and "--rounds and --patience must be at least 1" in capsys.readouterr().err
    for flag, name in (("--user-shards", "user_shards"), ("--item-shards", "item_shards")):
        rc = main([*home, "train", flag, "0"])
        err = capsys.readouterr().err
        assert rc == 2 and f"setting '{name}': bad value 0 (must be at least 1)" in err
