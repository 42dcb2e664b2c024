import json
import subprocess
import sys
from pathlib import Path

import pytest

from recagents.ui.cli import build_parser, main

COMMANDS = ["prepare", "ingest", "split", "evaluate", "train", "recommend", "chat", "run"]


def test_every_command_has_help():
    exe = Path(sys.executable).parent / "recagents"
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=True).stdout
    for command in COMMANDS:
        assert command in out
    parser = build_parser()
    for command in COMMANDS:
        with pytest.raises(SystemExit) as info:
            parser.parse_args([command, "--help"])
        assert info.value.code == 0


def test_evaluate_json_pop_on_ml100k(tmp_path, capsys):
    rc = main(["--home", str(tmp_path), "evaluate", "--model", "pop", "--json", "--seed", "1"])
    assert rc == 0
    result = json.loads(capsys.readouterr().out)
    assert result["model"] == "pop" and result["users"] == 943
    assert set(result["metrics"]) == {"recall@10", "ndcg@10", "hit@10", "mrr@10", "precision@10"}
    assert 0.10 < result["metrics"]["ndcg@10"] < 0.20  # popularity on ML-100K, RecBole ~0.142


def test_evaluate_on_a_split_folder_matches_the_rs_split(tmp_path, capsys):
    folder = tmp_path / "split"
    assert main(["--home", str(tmp_path), "split", "--seed", "4", "--out", str(folder)]) == 0
    capsys.readouterr()
    main(["--home", str(tmp_path), "evaluate", "--model", "itemknn", "--json", "--seed", "4"])
    direct = json.loads(capsys.readouterr().out)
    main(
        [
            "--home",
            str(tmp_path),
            "evaluate",
            "--model",
            "itemknn",
            "--json",
            "--split",
            str(folder),
        ]
    )
    via_dir = json.loads(capsys.readouterr().out)
    assert via_dir["metrics"] == direct["metrics"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["evaluate", "--model", "nope"], "unknown model 'nope'"),
        (["recommend", "--user", "99999", "--model", "pop"], "unknown user id '99999'"),
        (["evaluate", "--dataset", "missing-set"], "unknown dataset"),
        (["evaluate", "--split", "/nonexistent"], "lacks train.tsv"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(tmp_path, capsys, argv, message):
    rc = main(["--home", str(tmp_path), *argv])
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err and "Traceback" not in err
