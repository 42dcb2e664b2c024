"""An ASGI app served by uvicorn in a background thread: the live server of tests and bench/load.

Not part of the product: ``recagents serve`` runs uvicorn in the foreground (recagents.ui.server).
"""

from __future__ import annotations

import socket
import threading
from typing import Any


class BackgroundServer:
    """An ASGI app served by uvicorn in a background thread on a free 127.0.0.1 port.

    For code that needs the real HTTP stack in the same process: the test suite's live servers
    and ``bench/load.py``. ``start()`` returns once ``/api/v1/health`` answers; also a context
    manager.
    """

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.app = app
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="on", ws="none")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def start(self, timeout: float = 60.0) -> BackgroundServer:
        """Start serving; wait until the health endpoint answers."""
        import time

        import httpx

        self.thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server on {self.url} did not start in {timeout} s")

    def stop(self) -> None:
        """Ask uvicorn to exit and wait for its thread."""
        self.server.should_exit = True
        self.thread.join(15)
        self.sock.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
