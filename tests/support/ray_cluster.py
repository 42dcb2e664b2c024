"""A real multi-node Ray cluster on this machine, on loopback only, stopped by PID.

Ray binds the machine's external address unless ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``; in that
mode every socket binds 127.0.0.1 (measured with ``ss -ltnp``), but ``ray start --address`` then
refuses to add a second node ("Multi-node Ray clusters are not supported on Windows and OSX"),
and with the variable unset it rewrites 127.0.0.1 to the external address and the GCS listens on
every interface. So the worker node is started by ``python -m tests.support.ray_cluster start
...``: Ray's own ``ray start`` with that one refusal lifted and 127.0.0.1 kept as given. Both
nodes are real raylets with their own workers; the head's token authentication stays on (the
token is a file in the cluster's folder).

Never ``ray stop``: it ends every Ray process of the user. :meth:`RayCluster.stop` ends what this
cluster started: the processes whose command line names its folder or its GCS address, and their
children.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: The environment of every process of the cluster, the tests' driver included.
RAY_TEST_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "token",
}


#: One token for every cluster this process starts: Ray reads a driver's token once per process,
#: so a second cluster with another token could not be joined by the same test run.
_TOKEN = secrets.token_hex(32)


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _parents() -> dict[int, int]:
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                out[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    return out


class RayCluster:
    """``nodes`` Ray nodes of one CPU each on 127.0.0.1; ``address`` is the GCS."""

    def __init__(self, nodes: int = 2) -> None:
        # Short: Ray's socket paths live under it and must stay below 108 characters.
        self.folder = Path(tempfile.mkdtemp(prefix="rc", dir="/tmp"))
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        token = self.folder / "token"
        token.write_text(_TOKEN)
        self.env = {**os.environ, **RAY_TEST_ENV, "RAY_AUTH_TOKEN_PATH": str(token)}
        self.nodes = nodes
        self._started = False

    def _run(self, args: list[str]) -> None:
        done = subprocess.run(
            args, env=self.env, capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(args[:4])} failed:\n{done.stdout[-1500:]}{done.stderr[-1500:]}"
            )

    def start(self) -> RayCluster:
        """The head, then the other nodes; returns once every node is up."""
        ray = str(Path(sys.executable).parent / "ray")
        common = ["--node-ip-address=127.0.0.1", "--num-cpus", "1", "--disable-usage-stats"]
        self._started = True
        self._run(
            [
                ray, "start", "--head", "--port", str(self.port),
                "--temp-dir", str(self.folder / "t"), "--include-dashboard=false",
                "--ray-client-server-port", str(free_port()), *common,
            ]
        )  # fmt: skip
        for _ in range(self.nodes - 1):
            self._run(
                [sys.executable, "-m", "tests.support.ray_cluster", "start",
                 "--address", self.address, *common]
            )  # fmt: skip
        return self

    def pids(self) -> list[int]:
        """Every process of this cluster: the ones naming its folder or address, and children."""
        parents = _parents()
        marks = (str(self.folder), f"--address={self.address}", f"--gcs-address={self.address}")
        ours = {pid for pid in parents if any(m in _cmdline(pid) for m in marks)}
        ours.discard(os.getpid())
        grew = True
        while grew:
            children = {pid for pid, parent in parents.items() if parent in ours} - ours
            children.discard(os.getpid())
            grew = bool(children)
            ours |= children
        return sorted(ours)

    def kill_node(self, number: int) -> list[int]:
        """SIGKILL the raylet of node ``number`` (1: the first worker node) and its children."""
        parents = _parents()
        mark = f"{self.folder}/t/"
        socket_name = f"sockets/raylet.{number}" if number else "sockets/raylet "
        raylets = {
            pid
            for pid in parents
            if mark in (cmd := _cmdline(pid) + " ") and socket_name in cmd and "raylet" in cmd
        }
        doomed = set(raylets)
        grew = True
        while grew:
            children = {pid for pid, parent in parents.items() if parent in doomed} - doomed
            grew = bool(children)
            doomed |= children
        for pid in doomed:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return sorted(doomed)

    def listening(self) -> list[str]:
        """Local addresses this cluster's processes listen on (from ``ss -ltnp``)."""
        pids = set(self.pids())
        out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
        found = []
        for line in out.splitlines():
            if any(f"pid={pid}," in line for pid in pids):
                found.append(line.split()[3])
        return found

    def stop(self) -> list[int]:
        """End every process of this cluster by PID (TERM, then KILL); the ones still alive."""
        if not self._started:
            return []
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
            for pid in self.pids():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + wait
            while self.pids() and time.monotonic() < deadline:
                time.sleep(0.2)
            if not self.pids():
                break
        left = self.pids()
        if not left:
            shutil.rmtree(self.folder, ignore_errors=True)
        return left


def _start_node() -> None:
    """``ray start`` for a second node on this machine, on loopback (see the module docstring)."""
    import ray._private.ray_constants as constants
    import ray._private.services as services
    from ray.scripts.scripts import main

    constants.ENABLE_RAY_CLUSTER = True  # lift the refusal of a second node in loopback mode
    services.resolve_ip_for_localhost = lambda host: host  # keep 127.0.0.1 as given
    sys.argv = ["ray", *sys.argv[1:]]
    main()


if __name__ == "__main__":
    _start_node()
