"""The HTTP API under ``/api/v1``: chat (plain and SSE), recommendations, feedback, catalog, agents.

Every error a caller can cause comes back as a 4xx with one JSON shape,
``{"error": {"type": ..., "message": ...}}``, whose message says what to change: a 500 means a bug
on our side, never a caller's mistake. When the server is exposed beyond loopback, every endpoint
but ``/health`` requires ``Authorization: Bearer <RECAGENTS_API_TOKEN>``.

The endpoints live on one module-level :data:`router`; what they work on comes from the app they
are mounted in, through FastAPI dependencies: :func:`get_service` reads ``app.state.service`` and
:func:`require_token` ``app.state.auth_token``, both set by
:func:`~recagents.ui.app.create_app`. So the routes are defined once, at import, and two apps in
one process (tests, benchmarks) never share a recommender or a token.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import sqlite3
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.routing import Match

from recagents.errors import (
    ConfigError,
    DataError,
    RecagentsError,
    UnknownEntityError,
)
from recagents.graph.generation import caller_scope
from recagents.types import Recommendation
from recagents.ui.guard import CLOSE, redact, too_large_message
from recagents.ui.schemas import (
    ERRORS,
    MAX_ID_CHARS,
    MAX_THREAD_ID_CHARS,
    THREAD_ID_PATTERN,
    TOO_LARGE,
    AgentsResponse,
    ChatRequest,
    ChatResponse,
    FeedbackRequest,
    FeedbackResponse,
    ForgetResponse,
    HealthResponse,
    ItemsResponse,
    RecommendationsResponse,
    ThreadResponse,
)
from recagents.ui.service import Service, jsonable

logger = logging.getLogger(__name__)

PREFIX = "/api/v1"

# -- errors -------------------------------------------------------------------------------------


def error_response(
    status: int, kind: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """The one error shape of the API."""
    body: dict[str, Any] = {"error": {"type": kind, "message": message, **extra}}
    return JSONResponse(jsonable(body), status_code=status, headers=headers)


#: What a caller learns of a bug; the traceback goes to the server log.
INTERNAL_MESSAGE = "unexpected server error; the details are in the server log"


#: What a caller learns of a dependency's failure (store unreachable, model failed): the
#: message names the store's URL or the home folder, which tell an outsider where to aim and
#: never help the caller; the full message goes to the server log.
UNAVAILABLE_MESSAGE = (
    "the recommender cannot answer right now ({kind}); retry later. The details are in the "
    "server log"
)

#: Largest request bodies, in bytes, refused with 413 before they are read. A chat body holds
#: up to 20,000 characters, which JSON may escape to 12 bytes each (an emoji as two ``\\uXXXX``);
#: 256 KiB admits the longest valid message however it is encoded.
CHAT_BODY_LIMIT = 256 * 1024
FEEDBACK_BODY_LIMIT = 16 * 1024
#: Every other API route (none reads a body today).
API_BODY_LIMIT = 64 * 1024


def error_body(exc: Exception) -> dict[str, Any]:
    """The API's error shape for ``exc``: the package's errors say what is wrong, bugs do not.

    A caller's mistake (4xx) is explained; a failure on the server's side (5xx) names only its
    kind, never paths or addresses.
    """
    if isinstance(exc, RecagentsError):
        kind = type(exc).__name__
        if status_of(exc) >= 500:
            return {"error": {"type": kind, "message": UNAVAILABLE_MESSAGE.format(kind=kind)}}
        return {"error": {"type": kind, "message": redact(str(exc))}}
    return {"error": {"type": "InternalError", "message": INTERNAL_MESSAGE}}


def status_of(exc: RecagentsError) -> int:
    """HTTP status for an error of the package's tree."""
    if isinstance(exc, UnknownEntityError):
        return 404
    if isinstance(exc, DataError):
        return 422
    if isinstance(exc, ConfigError):
        return 400
    return 503  # store unreachable, model failed: not the caller's fault, but not a crash either


def _location(loc: Any) -> str:
    parts = [str(p) for p in loc if p not in ("body",)] or ["body"]
    return ".".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    """Map every error to ``{"error": {...}}`` with a 4xx for anything the caller can fix."""

    @app.exception_handler(RecagentsError)
    async def _recagents(request: Request, exc: RecagentsError) -> JSONResponse:
        status = status_of(exc)
        if status >= 500:
            logger.error("%s on %s: %s", type(exc).__name__, request.url.path, exc)
        headers = {"Retry-After": "5"} if status == 503 else None
        return JSONResponse(jsonable(error_body(exc)), status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {
                "field": _location(e.get("loc", ())),
                "message": str(e.get("msg", "")),
                "kind": str(e.get("type", "")),
            }
            for e in exc.errors()
        ]
        message = "; ".join(f"{d['field']}: {d['message']}" for d in details) or "invalid request"
        return error_response(422, "ValidationError", message, details=details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {
            401: "Unauthorized",
            404: "NotFound",
            405: "MethodNotAllowed",
            413: "PayloadTooLarge",
        }.get(exc.status_code, "HTTPError")
        headers = dict(exc.headers) if exc.headers else None
        message = str(exc.detail)
        if exc.status_code == 413:
            limit = request.scope.get(MAX_BODY_SIZE_SCOPE_KEY)
            message = too_large_message(limit, request.url.path)
            headers = {**(headers or {}), **CLOSE}
        return error_response(exc.status_code, kind, message, headers=headers)

    @app.exception_handler(sqlite3.DatabaseError)
    async def _memory(request: Request, exc: sqlite3.DatabaseError) -> JSONResponse:
        # the conversation memory failed under a running server (disk full, file damaged):
        # not the caller's fault and not a bug, so a 503 that says so, the cause in the log
        logger.error("conversation memory failed on %s: %s", request.url.path, exc)
        message = "the conversation memory cannot be read or written; try again later"
        return error_response(503, "MemoryUnavailable", message, headers={"Retry-After": "30"})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error on %s", request.url.path)
        return JSONResponse(error_body(exc), status_code=500)


# -- dependencies -------------------------------------------------------------------------------


def get_service(request: Request) -> Service:
    """The app's shared :class:`Service`: read per request, so a "train" swap is seen at once."""
    return request.app.state.service


def get_auth_token(request: Request) -> str | None:
    """The app's access token, or ``None`` when the API is open (loopback without a token).

    Read strictly: an app that never set ``app.state.auth_token`` fails loudly rather than
    serving an API that was meant to be guarded.
    """
    return request.app.state.auth_token


ServiceDep = Annotated[Service, Depends(get_service)]
AuthTokenDep = Annotated[str | None, Depends(get_auth_token)]

#: Documents the scheme in OpenAPI; the check itself is :func:`require_token`'s, so a missing
#: header is our JSON 401 rather than FastAPI's 403.
bearer = HTTPBearer(auto_error=False, description="RECAGENTS_API_TOKEN (when exposed)")


def require_token(
    auth_token: AuthTokenDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """Refuse a request without the app's bearer token, when one is set.

    The comparison is constant-time (:func:`hmac.compare_digest`), so response times do not leak
    how much of a guessed token was right.

    Raises:
        HTTPException: 401 with ``WWW-Authenticate: Bearer`` on a missing or wrong token.
    """
    if auth_token is None:
        return
    given = credentials.credentials if credentials is not None else ""
    if not hmac.compare_digest(given.encode(), auth_token.encode()):
        raise HTTPException(
            401,
            "missing or wrong access token: send 'Authorization: Bearer <token>' with the "
            "server's RECAGENTS_API_TOKEN",
            headers={"WWW-Authenticate": "Bearer"},
        )


# -- helpers ------------------------------------------------------------------------------------


def _items(reply_items: list[Recommendation]) -> list[dict[str, Any]]:
    return [jsonable(item.to_public()) for item in reply_items]


def _recommendation_item(rec: Recommendation) -> dict[str, Any]:
    from recagents.graph.explain import template_reason

    return jsonable(replace(rec, reason=template_reason(rec)).to_public())


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(jsonable(data), ensure_ascii=False)}\n\n"


def _new_thread_id() -> str:
    return f"api-{uuid.uuid4().hex}"


async def _sse_events(
    first: tuple[str, Any] | None, turns: Iterator[tuple[str, Any]], thread_id: str
) -> AsyncIterator[str]:
    """The SSE body of a streamed turn: [``draft`` [``token``...]] ``items`` ``done``.

    ``token`` events carry the chat model's words as it writes them (``"draft": true``: not yet
    checked); the verified reply is ``done``'s. ``first`` was computed before the response began
    (so bad input got a JSON 4xx); a failure after that can only be reported in-band, as an
    ``error`` event.
    """
    event = first
    try:
        while event is not None:
            kind, reply = event
            if kind == "draft":
                yield _sse("draft", {"reply": reply.text, "items": _items(reply.items)})
            elif kind == "token":
                yield _sse("token", {"text": reply, "draft": True})
                await asyncio.sleep(0)
            else:
                yield _sse("items", {"items": _items(reply.items)})
                yield _sse("done", {"thread_id": reply.thread_id, "reply": reply.text})
            try:
                event = await run_in_threadpool(next, turns, None)
            except Exception as exc:  # the response has begun: report in-band
                logger.exception("chat stream failed (thread %s)", thread_id)
                yield _sse("error", error_body(exc))
                return
    finally:
        _abandon(turns)


def _abandon(turns: Iterator[tuple[str, Any]]) -> None:
    """Close a turn's iterator (a client gone mid-stream): the turn rolls back, the thread frees.

    If a worker thread is inside ``next(turns)`` right now, closing raises ``ValueError``; the
    iterator is then closed when that call returns and its last reference goes (CPython closes
    a generator when it is freed), which does the same.
    """
    close = getattr(turns, "close", None)
    if close is not None:
        with contextlib.suppress(ValueError):
            close()


# -- the routes ---------------------------------------------------------------------------------

#: The whole API, one router: ``app.include_router(router)`` after setting ``app.state.service``
#: and ``app.state.auth_token`` (:func:`~recagents.ui.app.create_app` does both). Flat, not
#: nested: :func:`add_not_found` reads its routes to tell a wrong method from a wrong path.
router = APIRouter(prefix=PREFIX, max_body_size=API_BODY_LIMIT)

#: How ``/chat/stream`` documents its 200: the events, in order.
SSE_RESPONSE: dict[str, Any] = {
    "description": "Server-sent events. With a chat model configured, `draft` first "
    '(data `{"reply", "items"}`: the picks with template reasons, as soon as they '
    'are ranked), then `token` events (data `{"text", "draft": true}`: the model\'s '
    "words for the top pick as it writes them, not yet checked). Always one `items` "
    '(data `{"items": [...]}`) and `done` (data `{"thread_id", "reply"}`: the final, '
    "verified reply; the model's phrasing only where it passed the checks). A failure "
    'after the stream began is an `error` event (data `{"error": {"type", "message"}}`).',
    "content": {"text/event-stream": {}},
}


def _guarded(responses: dict[int | str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Route options of every endpoint but ``/health``: the token, the tag, the error bodies."""
    return {
        "dependencies": [Depends(require_token)],
        "tags": ["recommender"],
        "responses": {**ERRORS, **(responses or {})},
    }


@router.get(
    "/health",
    response_model=HealthResponse,
    tags=["service"],
    responses={503: {"model": HealthResponse, "description": "a part is failing (see parts)"}},
)
def health(service: ServiceDep, auth_token: AuthTokenDep) -> Any:
    """Readiness: each part a turn needs (``parts``), what is served, whether a token is needed.

    200 when every part is ok; 503 naming the failing parts otherwise, so a load balancer stops
    sending turns that would fail. No token needed; no paths or internal URLs in the answer.
    """
    from recagents import __version__

    dataset = service.recommender.dataset
    parts = service.readiness()
    failing = [name for name, part in parts.items() if part["status"] != "ok"]
    body = {
        "status": "unavailable" if failing else "ok",
        "version": __version__,
        "dataset": dataset.name,
        "users": dataset.n_users,
        "items": dataset.n_items,
        "auth": auth_token is not None,
        "training": service.training.state,
        "parts": parts,
    }
    if failing:
        message = "not ready: " + "; ".join(f"{n} ({parts[n]['detail']})" for n in failing)
        body["error"] = {"type": "NotReady", "message": message}
        return JSONResponse(jsonable(body), status_code=503, headers={"Retry-After": "5"})
    return body


#: How often a plain chat turn checks whether its client is still connected (seconds).
DISCONNECT_POLL_S = 0.25


@router.post(
    "/chat", response_model=ChatResponse, max_body_size=CHAT_BODY_LIMIT, **_guarded(TOO_LARGE)
)
async def chat(body: ChatRequest, service: ServiceDep, request: Request) -> dict[str, Any]:
    """Answer one message in a thread (memory per ``thread_id``).

    ``message`` holds 1 to 20,000 characters; a longer or blank message is a 422.
    """
    thread_id = body.thread_id or _new_thread_id()
    gone = threading.Event()

    def turn() -> Any:
        with caller_scope(gone):
            return service.recommender.chat(body.message, thread_id, body.user_id, k=body.k)

    # The turn runs in a worker thread while this coroutine watches the client: once it has
    # hung up, the chat model's work for this turn is cancelled (the template reasons are used
    # and the turn still commits, so the thread loses nothing; recagents.graph.generation).
    task = asyncio.ensure_future(run_in_threadpool(turn))
    while not (await asyncio.wait({task}, timeout=DISCONNECT_POLL_S))[0]:
        if not gone.is_set() and await request.is_disconnected():
            logger.info("client gone during a turn on %s: model work cancelled", thread_id)
            gone.set()
    reply = task.result()
    return {"reply": reply.text, "items": _items(reply.items), "thread_id": reply.thread_id}


@router.post(
    "/chat/stream",
    response_class=StreamingResponse,
    max_body_size=CHAT_BODY_LIMIT,
    **_guarded({200: SSE_RESPONSE, **TOO_LARGE}),
)
async def chat_stream(body: ChatRequest, service: ServiceDep) -> StreamingResponse:
    """The same turn as ``/chat``, streamed as SSE: [``draft`` ``token``...] ``items`` ``done``.

    The first event is computed before the response starts, so bad input still gets a JSON
    4xx; the draft arrives in tens of milliseconds while the chat model phrases the top pick.
    """
    thread_id = body.thread_id or _new_thread_id()
    turns = await run_in_threadpool(
        service.recommender.chat_stream,
        body.message,
        thread_id,
        body.user_id,
        k=body.k,
        tokens=True,
    )
    first = await run_in_threadpool(next, turns, None)
    return StreamingResponse(
        _sse_events(first, turns, thread_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/recommendations/{user_id}", response_model=RecommendationsResponse, **_guarded())
def recommendations(
    service: ServiceDep,
    user_id: str = Path(max_length=MAX_ID_CHARS, description="known or new user id"),
    k: int = Query(10, ge=1, le=100, description="how many"),
    genre: list[str] = Query(  # noqa: B008
        default_factory=list, description="only these genres (repeat for several)"
    ),
    exclude_genre: list[str] = Query(  # noqa: B008
        default_factory=list, description="never these genres"
    ),
    year_from: int | None = Query(None, ge=1800, le=2100, description="released from"),
    year_to: int | None = Query(
        None, ge=1800, le=2100, description="released up to (not before year_from: else 400)"
    ),
    liked: list[str] = Query(  # noqa: B008
        default_factory=list,
        description="extra liked item ids (a new user's only profile)",
    ),
) -> dict[str, Any]:
    """Top-k for a user with hard filters; an unknown id takes the cold-start route.

    An empty value (``genre=``) is no filter, as an absent one: the spec allows it, and a form
    that leaves a field blank means "any".
    """
    genre, exclude_genre, liked = (
        [v for v in values if v.strip()] for values in (genre, exclude_genre, liked)
    )
    if year_from is not None and year_to is not None and year_from > year_to:
        raise ConfigError(f"year_from ({year_from}) is after year_to ({year_to})")
    filters = {
        "genres_include": [service.check_genre(g) for g in genre] or None,
        "genres_exclude": [service.check_genre(g) for g in exclude_genre] or None,
        "year_from": year_from,
        "year_to": year_to,
    }
    recs = service.recommender.recommend(user_id, k, filters, liked=liked)
    return {
        "user_id": user_id,
        "known_user": service.is_known_user(user_id),
        "items": [_recommendation_item(r) for r in recs],
    }


@router.post(
    "/feedback",
    response_model=FeedbackResponse,
    max_body_size=FEEDBACK_BODY_LIMIT,
    **_guarded(TOO_LARGE),
)
def feedback(body: FeedbackRequest, service: ServiceDep) -> dict[str, Any]:
    """👍/👎 on an item: the user-profile agent uses it from the thread's next turn."""
    # The lists as this feedback left them (read under the thread's lock, not after it).
    lists = service.recommender.feedback(body.thread_id, body.item_id, body.liked)
    return {
        "thread_id": body.thread_id,
        "item_id": body.item_id,
        "liked": body.liked,
        "liked_items": list(lists["liked"]),
        "disliked_items": list(lists["disliked"]),
    }


@router.get("/items", response_model=ItemsResponse, **_guarded())
def items(
    service: ServiceDep,
    q: str = Query("", max_length=200, description="title text (typos tolerated)"),
    limit: int = Query(20, ge=1, le=100),
) -> dict[str, Any]:
    """Catalog search by title; without ``q``, the most popular items."""
    return {"query": q, "items": service.search(q, limit)}


@router.get("/agents", response_model=AgentsResponse, **_guarded())
def agents(service: ServiceDep) -> dict[str, Any]:
    """Registered roles, each with its last round's metrics, and the run's summary."""
    return service.agents()


@router.get("/threads/{thread_id}", response_model=ThreadResponse, **_guarded())
def thread(
    service: ServiceDep,
    thread_id: str = Path(min_length=1, max_length=MAX_THREAD_ID_CHARS, pattern=THREAD_ID_PATTERN),
) -> dict[str, Any]:
    """A thread's messages and what it learned (liked, disliked, seen, shown...)."""
    view = service.thread(thread_id)
    if not view["messages"] and not view["liked"] and not view["disliked"]:
        raise UnknownEntityError("thread", thread_id, "no message was sent in it yet")
    return view


@router.delete("/threads/{thread_id}", response_model=ForgetResponse, **_guarded())
def forget_thread(
    service: ServiceDep,
    thread_id: str = Path(min_length=1, max_length=MAX_THREAD_ID_CHARS, pattern=THREAD_ID_PATTERN),
) -> dict[str, Any]:
    """Forget a thread: its memory (every checkpoint) and its interaction-log entries.

    Done under the thread's lock, so a turn running on it finishes first and is forgotten
    with it; a later turn on the same id starts a fresh thread. 404 for a thread never used.
    """
    removed = service.forget(thread_id)
    if removed is None:
        raise UnknownEntityError("thread", thread_id, "nothing was said in it, or it was forgotten")
    return {"thread_id": thread_id, "forgotten": True, "log_entries": removed}


def add_not_found(app: FastAPI, routers: list[APIRouter]) -> Callable[..., Any]:
    """JSON 404/405 for anything else under ``/api`` (the UI mounted at ``/`` would answer HTML).

    Args:
        app: The app to add the catch-all route to (after the API's own routes).
        routers: The API routers, to tell a wrong method (405) from a wrong path (404).
    """
    routes = [route for router in routers for route in router.routes]

    @app.api_route(
        "/api/{rest:path}",
        methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE"],
        include_in_schema=False,
    )
    async def _fallback(request: Request, rest: str) -> JSONResponse:
        allowed = sorted(
            {
                method
                for route in routes
                if route.matches(request.scope)[0] is Match.PARTIAL
                for method in (getattr(route, "methods", None) or ())
            }
            - {"HEAD"}
        )
        if allowed:
            return error_response(
                405,
                "MethodNotAllowed",
                f"{request.method} is not allowed on {request.url.path}; use {', '.join(allowed)}",
                headers={"Allow": ", ".join(allowed)},
            )
        return error_response(
            404, "NotFound", f"no endpoint {request.url.path}; see /docs for the API"
        )

    return _fallback
