"""``make test``'s Chromium check: present -> nothing; missing -> apt-get it, or one clear line.

The script runs for real under bash, with ``PATH`` holding only stand-ins for ``id``, ``sudo`` and
``apt-get`` (no package is installed and nothing needs root).
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "support" / "ensure_chromium.sh"
BASH = "/bin/bash"


def _tool(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!{BASH}\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def _run(tmp_path: Path, chromium: Path, **tools: str) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, body in tools.items():
        _tool(bin_dir, name.replace("_", "-"), body)
    env = {"PATH": str(bin_dir), "RECAGENTS_CHROMIUM": str(chromium), "HOME": str(tmp_path)}
    return subprocess.run(
        [BASH, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30, check=False
    )


def test_present_chromium_needs_nothing(tmp_path: Path) -> None:
    chromium = tmp_path / "chromium"
    _tool(tmp_path, "chromium", "exit 0")
    result = _run(tmp_path, chromium, apt_get=f"echo called >> {tmp_path}/apt.log; exit 1")
    assert result.returncode == 0 and result.stderr == ""
    assert not (tmp_path / "apt.log").exists()


def test_missing_chromium_is_installed_with_apt_get_as_root(tmp_path: Path) -> None:
    chromium = tmp_path / "chromium"
    result = _run(
        tmp_path,
        chromium,
        id="echo 0",
        apt_get=(
            f'echo "$*" >> {tmp_path}/apt.log\n'
            f'if [ "$1" = install ]; then printf "#!{BASH}\\n" > {chromium}; '
            f"/bin/chmod +x {chromium}; fi"
        ),
    )
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "apt.log").read_text().splitlines()
    assert calls == ["update -qq", "install -y -qq chromium"]
    assert os.access(chromium, os.X_OK)


def test_missing_chromium_uses_sudo_when_not_root(tmp_path: Path) -> None:
    chromium = tmp_path / "chromium"
    result = _run(
        tmp_path,
        chromium,
        id="echo 1000",
        sudo=f'echo "sudo $*" >> {tmp_path}/sudo.log; [ "$2" = true ] && exit 0; shift; "$@"',
        apt_get=(
            f'if [ "$1" = install ]; then printf "#!{BASH}\\n" > {chromium}; '
            f"/bin/chmod +x {chromium}; fi"
        ),
    )
    assert result.returncode == 0, result.stderr
    assert "sudo -n apt-get install -y -qq chromium" in (tmp_path / "sudo.log").read_text()


def test_without_root_or_sudo_it_stops_with_one_clear_line(tmp_path: Path) -> None:
    result = _run(tmp_path, tmp_path / "chromium", id="echo 1000", apt_get="exit 0")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Chromium is missing" in lines[0] and "needs root" in lines[0]
    assert "apt-get install -y chromium" in lines[0]


def test_a_failed_install_stops_the_run(tmp_path: Path) -> None:
    result = _run(tmp_path, tmp_path / "chromium", id="echo 0", apt_get="exit 100")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("make test: Chromium is missing")
    assert "failed" in result.stderr


def test_no_apt_get_stops_with_one_clear_line(tmp_path: Path) -> None:
    result = _run(tmp_path, tmp_path / "chromium", id="echo 0")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "no apt-get" in result.stderr


def test_make_test_runs_the_check_and_never_skips_the_browser_tests() -> None:
    makefile = (SCRIPT.parents[2] / "Makefile").read_text()
    recipe = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "tests/support/ensure_chromium.sh" in recipe
    assert "CI=true" in recipe  # the browser fixture fails, never skips, without Chromium
