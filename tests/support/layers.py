"""Check the import layers (``ui -> graph -> agents -> vectorstore -> core``) with import-linter.

The source folders are mapped onto ``recagents.*`` by setuptools ``package-dir``, and an editable
install only maps them at import time: import-linter (grimp) walks the root package's folder and
would see ``core/`` alone. So the package is first installed, as a wheel would lay it out, into a
scratch folder (no dependencies, no network), and import-linter reads that tree.

Run ``python -m tests.support.layers`` (``make lint`` does).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


#: What a build of the package reads (copied, so no stale ``build/`` folder leaks into the tree).
SOURCES = ("pyproject.toml", "README.md", "core", "agents", "graph", "vectorstore", "ui", "prompts")


def build_tree(target: Path) -> Path:
    """Install the package's files (not its dependencies) under ``target``; return ``target``."""
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "src"
        for name in SOURCES:
            path = ROOT / name
            if path.is_dir():
                shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                source.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, source / name)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--no-build-isolation",
                "--no-index",
                "--target",
                str(target),
                str(source),
            ],
            check=True,
            cwd=scratch,
            capture_output=True,
            text=True,
            env={**os.environ, "PIP_NO_INPUT": "1"},
        )
    return target


def lint(tree: Path) -> subprocess.CompletedProcess[str]:
    """Run import-linter with the contracts in pyproject.toml over the installed ``tree``."""
    command = "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())"
    return subprocess.run(
        [sys.executable, "-c", command, "--no-cache", str(ROOT / "pyproject.toml")],
        cwd=tree,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(tree)},
    )


def main() -> int:
    """Build the tree in a temporary folder and lint it; print import-linter's report."""
    with tempfile.TemporaryDirectory() as folder:
        result = lint(build_tree(Path(folder)))
    print(result.stdout[-4000:], result.stderr[-2000:], sep="\n")  # noqa: T201
    return result.returncode


if __name__ == "__main__":
    raise SystemExit(main())
