"""What stands between the network and the app: allowed hosts, auth backoff, methods, redaction.

Each guard is a small ASGI middleware that answers in the API's one error shape
(``{"error": {"type", "message"}}``), so a refused request reads like any other 4xx:

- :class:`AllowedHosts`: only the configured ``Host`` names. A loopback server without a token
  is otherwise open to DNS rebinding: a web page on ``evil.example`` whose name resolves to
  127.0.0.1 can call the API from the visitor's browser, with ``Host: evil.example``.
- :class:`AuthBackoff`: per-client backoff after repeated wrong credentials (API token or UI
  login): a long token cannot be guessed, but without a brake a script may try as fast as the
  server answers, and nobody would know; each failure is logged (never the token).
- :class:`RefuseMethods`: TRACE and CONNECT are a 405 everywhere (the UI mounted at ``/`` would
  answer them with its own 404).
- :func:`redact`: keeps file paths and service URLs out of texts a client sees.

Request body limits are not here: FastAPI's ``max_body_size`` (per app and per route) refuses a
body over the limit before reading it (see :mod:`recagents.ui.routes`).
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

logger = logging.getLogger(__name__)

Scope = dict[str, Any]

#: Host names a loopback server answers to when nothing else is configured.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")

#: Shortest access token ``serve`` and ``create_app`` accept.
MIN_TOKEN_CHARS = 32
#: Fewest distinct characters a token must hold: 32 characters of ``secrets`` output hold 14
#: or more (hex) and about 30 (URL-safe base64); "aaaa..." or a repeated word hold a handful.
MIN_TOKEN_DISTINCT = 10
#: The one command the refusal names.
MAKE_TOKEN = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'


def check_token(token: str) -> str:
    """Return ``token`` if it is long and random-looking enough to guard a server.

    A token is the only secret between the network and the conversations, so a short or
    patterned one (guessable in a few thousand tries) is refused at start, not discovered later.

    Raises:
        ConfigError: Fewer than :data:`MIN_TOKEN_CHARS` characters, too few distinct ones, or
            one short piece repeated; the message says how to make a good one.
    """
    from recagents.errors import ConfigError

    problem = None
    if len(token) < MIN_TOKEN_CHARS:
        problem = f"has {len(token)} characters; at least {MIN_TOKEN_CHARS} are needed"
    elif len(set(token)) < MIN_TOKEN_DISTINCT or _periodic(token):
        problem = "is not random (too few distinct characters, or one piece repeated)"
    if problem is not None:
        raise ConfigError(
            f"the access token (RECAGENTS_API_TOKEN) {problem}: make one with {MAKE_TOKEN}"
        )
    return token


def _periodic(text: str) -> bool:
    """Whether ``text`` is one piece of at most half its length, repeated."""
    return any(
        text == (text[:period] * (len(text) // period + 1))[: len(text)]
        for period in range(1, len(text) // 2 + 1)
    )


# -- the error shape, for middleware that answer before FastAPI does -----------------------------


async def send_error(
    send: Any, status: int, kind: str, message: str, headers: dict[str, str] | None = None
) -> None:
    """Send ``{"error": {"type", "message"}}`` with ``status`` (raw ASGI)."""
    body = json.dumps({"error": {"type": kind, "message": message}}).encode()
    raw = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode(), v.encode()) for k, v in (headers or {}).items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return value.decode("latin-1")
    return None


# -- hosts --------------------------------------------------------------------------------------

_HOST = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[^:\[\]/\s@]+)(?::(?P<port>\d{1,5}))?")


def host_name(header: str | None) -> str | None:
    """The host of a ``Host`` header, lower case, IPv6 in brackets; ``None`` if malformed."""
    if not header:
        return None
    match = _HOST.fullmatch(header.strip())
    return match["host"].lower() if match else None


def normalise_host(name: str) -> str:
    """A configured host as :func:`host_name` reports it (``::1`` becomes ``[::1]``)."""
    name = name.strip().lower()
    if ":" in name and not name.startswith("["):
        return f"[{name}]"
    return name


class AllowedHosts:
    """Answer only requests whose ``Host`` is one of ``hosts`` (400 otherwise).

    ``hosts`` holds names (``localhost``), addresses (``127.0.0.1``, ``::1``), ``*.example.org``
    for a domain's subdomains, or ``*`` for any host (behind a proxy that checks it).
    """

    def __init__(self, app: Any, hosts: Iterable[str] = LOOPBACK_HOSTS) -> None:
        self.app = app
        self.hosts = {normalise_host(h) for h in hosts if h.strip()}
        self.any = "*" in self.hosts

    def allows(self, host: str | None) -> bool:
        """Whether a request with this ``Host`` header's host is answered."""
        if self.any:
            return True
        if host is None:
            return False
        return host in self.hosts or any(
            h.startswith("*.") and host.endswith(h[1:]) for h in self.hosts
        )

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        """Pass allowed requests on; refuse the others with a JSON 400."""
        if scope["type"] not in ("http", "websocket") or self.any:
            await self.app(scope, receive, send)
            return
        header = _header(scope, b"host")
        host = host_name(header)
        if self.allows(host):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        logger.warning("refused a request for host %r (allowed: %s)", header, sorted(self.hosts))
        await send_error(
            send,
            400,
            "InvalidHost",
            f"this server does not answer to the host {header!r}; the operator can allow it "
            "with `recagents serve --allowed-hosts NAME`",
        )


# -- body limits --------------------------------------------------------------------------------


#: Sent with every 413: the server closes the connection rather than drain (and discard) the
#: rest of a body it refused, which uvicorn would otherwise read to keep the connection alive.
CLOSE = {"Connection": "close"}


def too_large_message(limit: int | None, path: str) -> str:
    """What a 413 says: the route's limit and what to do."""
    allowed = f"the {limit} bytes allowed" if limit is not None else "the limit"
    return (
        f"the request body is over {allowed} on {path}; send less (a chat message holds at "
        "most 20,000 characters)"
    )


class ExplainTooLarge:
    """Give Starlette's plain-text 413 ("Content Too Large") the API's JSON error shape.

    FastAPI's ``max_body_size`` refuses a body whose ``Content-Length`` is over the route's
    limit before reading any of it, and answers in plain text whatever the app's handlers say;
    this rewrites that one answer, so every error a client gets reads alike.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        """Pass everything through; turn a plain-text 413 into JSON."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rewriting = False

        async def explain(message: dict[str, Any]) -> None:
            nonlocal rewriting
            if message["type"] == "http.response.start" and message["status"] == 413:
                types = [v for k, v in message.get("headers", ()) if k.lower() == b"content-type"]
                if types and types[0].startswith(b"text/plain"):
                    rewriting = True
                    from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY

                    limit = scope.get(MAX_BODY_SIZE_SCOPE_KEY)
                    await send_error(
                        send,
                        413,
                        "PayloadTooLarge",
                        too_large_message(limit, scope["path"]),
                        headers=CLOSE,
                    )
                    return
            if rewriting:
                return  # the plain-text body, replaced above
            await send(message)

        await self.app(scope, receive, explain)


# -- methods ------------------------------------------------------------------------------------


class RefuseMethods:
    """405 for TRACE and CONNECT on every path (nothing here implements them)."""

    METHODS = frozenset({"TRACE", "CONNECT"})

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        """Refuse the methods above; pass everything else on."""
        if scope["type"] == "http" and scope.get("method", "").upper() in self.METHODS:
            await send_error(
                send,
                405,
                "MethodNotAllowed",
                f"{scope['method']} is not allowed on this server",
                headers={"Allow": "GET, POST"},
            )
            return
        await self.app(scope, receive, send)


# -- auth backoff -------------------------------------------------------------------------------


class AuthBackoff:
    """Slow a client down after repeated wrong credentials; log every failure.

    A failure is a 401 from the API to a request that carried an ``Authorization`` header, or
    a refused UI login (``POST /login``). After ``limit`` failures within ``window`` seconds,
    the client (by address) is refused with 429 and ``Retry-After`` for ``base`` seconds,
    doubling with each further failure up to ``cap``; ``/api/v1/health`` stays open. Clients
    behind one proxy share an address, and so a backoff.
    """

    def __init__(
        self,
        app: Any,
        *,
        limit: int = 5,
        window: float = 60.0,
        base: float = 1.0,
        cap: float = 300.0,
        health_path: str = "/api/v1/health",
    ) -> None:
        self.app = app
        self.limit, self.window, self.base, self.cap = int(limit), window, base, cap
        self.health_path = health_path
        self._failures: dict[str, deque[float]] = {}
        self._blocked: dict[str, float] = {}
        self._lock = threading.Lock()

    def retry_after(self, client: str, now: float | None = None) -> float:
        """Seconds ``client`` must wait (0 when it may try now)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            return max(0.0, self._blocked.get(client, 0.0) - now)

    def failed(self, client: str, path: str, now: float | None = None) -> None:
        """Record (and log) a wrong credential from ``client``."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if len(self._failures) > 10_000:  # bounded: forget clients quiet for a window
                for key in [k for k, v in self._failures.items() if v[-1] < now - self.window]:
                    self._failures.pop(key, None)
                    self._blocked.pop(key, None)
            recent = self._failures.setdefault(client, deque())
            recent.append(now)
            while recent and recent[0] < now - self.window:
                recent.popleft()
            count = len(recent)
            if count >= self.limit:
                wait = min(self.cap, self.base * 2 ** (count - self.limit))
                self._blocked[client] = now + wait
        logger.warning(
            "wrong credentials from %s on %s (%d in the last %.0f s)%s",
            client,
            path,
            count,
            self.window,
            f"; refused for {wait:.0f} s" if count >= self.limit else "",
        )

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        """Refuse a client in backoff; watch the others' answers for refused credentials."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("unknown", 0))[0]
        path = scope.get("path", "")
        if path != self.health_path:
            wait = self.retry_after(client)
            if wait > 0:
                await send_error(
                    send,
                    429,
                    "TooManyRequests",
                    "too many wrong credentials from this address; retry after "
                    f"{math.ceil(wait)} s",
                    headers={"Retry-After": str(math.ceil(wait))},
                )
                return
        login = scope.get("method") == "POST" and path.rstrip("/").endswith("/login")
        presented = login or _header(scope, b"authorization") is not None

        async def watch(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and presented:
                status = int(message["status"])
                if status == 401 or (login and status in (400, 403)):
                    self.failed(client, path)
            await send(message)

        await self.app(scope, receive, watch)


# -- redaction ----------------------------------------------------------------------------------

_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>),;]*[^\s'\"<>),;:.]")
_PATH = re.compile(r"(?<![\w./:-])(?:~|/(?!api/|docs\b))(?:/?[\w.@+-]+)*/[\w.@+-]+")


def redact(text: str) -> str:
    """``text`` with URLs and file paths replaced by ``<url>`` and ``<path>``.

    For what a client sees of a server-side failure: the store's address or the home folder
    tell an outsider where to aim, and never help the caller fix anything.
    """
    return _PATH.sub("<path>", _URL.sub("<url>", text))
