"""The one-way layers contract holds, and an upward import would break it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.layers import build_tree, lint


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tree(tmp_path_factory.mktemp("layers") / "site")


def test_the_layers_contract_is_kept(tree: Path) -> None:
    result = lint(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_the_tree_holds_every_layer(tree: Path) -> None:
    package = tree / "recagents"
    for layer in ("ui", "graph", "agents", "vectorstore", "data", "eval", "prompts"):
        assert (package / layer / "__init__.py").exists(), layer


@pytest.mark.parametrize(
    ("module", "upward"),
    [
        ("vectorstore/base.py", "recagents.agents.base"),
        ("agents/base.py", "recagents.graph.state"),
        ("config.py", "recagents.vectorstore.schema"),
        ("graph/state.py", "recagents.ui.facade"),
    ],
)
def test_an_upward_import_breaks_the_contract(
    tree: Path, tmp_path: Path, module: str, upward: str
) -> None:
    broken = shutil.copytree(tree, tmp_path / "site")
    path = broken / "recagents" / module
    path.write_text(path.read_text(encoding="utf-8") + f"\nimport {upward}  # noqa\n")
    result = lint(broken)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout
    assert upward in result.stdout
