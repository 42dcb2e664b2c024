"""The HTTP API under ``/api/v1``: chat (plain and SSE), recommendations, feedback, catalog, agents.

Every error a caller can cause comes back as a 4xx with one JSON shape,
``{"error": {"type": ..., "message": ...}}``, whose message says what to change: a 500 means a bug
on our side, never a caller's mistake. When the server is exposed beyond loopback, every endpoint
but ``/health`` requires ``Authorization: Bearer <RECAGENTS_API_TOKEN>``.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from recagents.errors import (
    ConfigError,
    DataError,
    RecagentsError,
    UnknownEntityError,
)
from recagents.ui.formatting import MAX_MESSAGE_CHARS, stream_tokens
from recagents.ui.service import Service, jsonable

logger = logging.getLogger(__name__)

PREFIX = "/api/v1"
MAX_ID_CHARS = 200

# -- schemas ------------------------------------------------------------------------------------


class Contribution(BaseModel):
    """One of the person's items that pushed a recommendation up."""

    item_id: str
    title: str
    weight: float


class Evidence(BaseModel):
    """Why an item was recommended: the facts the reason was written from."""

    model_config = ConfigDict(extra="allow")

    because_of: list[Contribution] = Field(
        default_factory=list, description="liked items that drove the pick, strongest first"
    )
    shared_attributes: list[str] = Field(
        default_factory=list, description="e.g. 'genre: Crime', 'director: Bryan Singer'"
    )
    agent_scores: dict[str, float | None] = Field(
        default_factory=dict,
        description="each agent's score: tower, history, text, popularity, final",
    )


class Item(BaseModel):
    """A recommended item."""

    id: str = Field(description="catalog item id")
    title: str = Field(description="display title with year")
    score: float = Field(description="the ranking agent's final score (higher is better)")
    reason: str = Field(description="one-line reason built from the evidence")
    evidence: Evidence
    reason_source: Literal["llm", "template"] = Field(
        "template",
        description="llm: the chat model phrased the reason and it passed the checks; "
        "template: written by code from the evidence",
    )


class ChatRequest(BaseModel):
    """One chat message."""

    model_config = ConfigDict(extra="forbid")

    message: str = Field(
        min_length=1,
        max_length=MAX_MESSAGE_CHARS,
        description=f"what the person says (1 to {MAX_MESSAGE_CHARS} characters)",
        examples=["I loved Heat, something like it but funnier"],
    )
    thread_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_ID_CHARS,
        description="conversation id; memory is per thread. Omit it to start a new thread "
        "(the response carries the new id)",
    )
    user_id: str | None = Field(
        default=None,
        max_length=MAX_ID_CHARS,
        description="a known user id starts from that user's learned profile; omit for a new user",
    )
    k: int = Field(default=5, ge=1, le=50, description="how many items to recommend")

    @field_validator("message")
    @classmethod
    def _has_text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("message must contain some text, not only spaces")
        return value

    @field_validator("thread_id")
    @classmethod
    def _thread_has_text(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("thread_id must not be blank")
        return value


class ChatResponse(BaseModel):
    """A chat turn's answer."""

    reply: str = Field(description="the text answer")
    items: list[Item] = Field(description="recommendations of this turn (empty for other turns)")
    thread_id: str


class RecommendationsResponse(BaseModel):
    """Top-k for one user."""

    user_id: str
    known_user: bool = Field(
        description="false: the id is not in the catalog and the cold-start route served it"
    )
    items: list[Item]


class FeedbackRequest(BaseModel):
    """A thumbs up or down on an item in a thread."""

    model_config = ConfigDict(extra="forbid")

    thread_id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    item_id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    liked: bool = Field(description="true for 👍, false for 👎")


class FeedbackResponse(BaseModel):
    """The thread's profile after the feedback (used from the next turn on)."""

    thread_id: str
    item_id: str
    liked: bool
    liked_items: list[str]
    disliked_items: list[str]


class CatalogItem(BaseModel):
    """A catalog entry."""

    id: str
    title: str
    year: int | None
    genres: list[str]


class ItemsResponse(BaseModel):
    """Catalog search results."""

    query: str
    items: list[CatalogItem]


class AgentInfo(BaseModel):
    """One registered agent and its last round."""

    name: str = Field(description="instance name (replicas get a suffix)")
    role: str = Field(description="registered role name")
    order: int
    publishes: str | None
    consumes: list[str]
    scores: bool
    rounds_trained: int
    status: str
    last_round: int | None
    metrics: dict[str, Any] = Field(description="what the agent reported in the last round")
    serving_round: int | None = Field(description="the round whose weights are served (best)")
    serving_metrics: dict[str, Any] = Field(
        description="what the agent reported in the served round"
    )


class RunInfo(BaseModel):
    """The last training run."""

    rounds: int
    best_round: int
    best_valid_ndcg: float | None = Field(alias="best_valid_ndcg@10")
    stopped: str
    run_dir: str
    last_valid: dict[str, float | None]

    model_config = ConfigDict(populate_by_name=True)


class AgentsResponse(BaseModel):
    """Registered roles, their last round's metrics and the training status."""

    agents: list[AgentInfo]
    run: RunInfo
    training: dict[str, Any]


class Message(BaseModel):
    """One message of a thread."""

    role: str = Field(description="user or assistant")
    text: str


class ThreadResponse(BaseModel):
    """A thread's memory."""

    thread_id: str
    user_id: str | None
    messages: list[Message]
    liked: list[str]
    disliked: list[str]
    seen: list[str]
    rejected: list[str]
    shown: list[str]


class HealthResponse(BaseModel):
    """Liveness and what is served."""

    status: str
    version: str
    dataset: str
    users: int
    items: int
    auth: bool = Field(description="whether the API requires a bearer token")
    training: str


class ErrorBody(BaseModel):
    """What went wrong and what to do."""

    type: str
    message: str


class ErrorResponse(BaseModel):
    """Every 4xx/5xx body."""

    error: ErrorBody


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 404, 422)
}


# -- errors -------------------------------------------------------------------------------------


def error_response(
    status: int, kind: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """The one error shape of the API."""
    body: dict[str, Any] = {"error": {"type": kind, "message": message, **extra}}
    return JSONResponse(jsonable(body), status_code=status, headers=headers)


#: What a caller learns of a bug; the traceback goes to the server log.
INTERNAL_MESSAGE = "unexpected server error; the details are in the server log"


def error_body(exc: Exception) -> dict[str, Any]:
    """The API's error shape for ``exc``: the package's errors say what is wrong, bugs do not."""
    if isinstance(exc, RecagentsError):
        return {"error": {"type": type(exc).__name__, "message": str(exc)}}
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
        return JSONResponse(jsonable(error_body(exc)), status_code=status)

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
        kind = {401: "Unauthorized", 404: "NotFound", 405: "MethodNotAllowed"}.get(
            exc.status_code, "HTTPError"
        )
        headers = dict(exc.headers) if exc.headers else None
        return error_response(exc.status_code, kind, str(exc.detail), headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error on %s", request.url.path)
        return JSONResponse(error_body(exc), status_code=500)


# -- the router ---------------------------------------------------------------------------------


def _items(reply_items: list[Any]) -> list[dict[str, Any]]:
    return [jsonable(item.to_dict()) for item in reply_items]


def _recommendation_item(rec: Any) -> dict[str, Any]:
    from recagents.graph.explain import template_reason

    return jsonable(
        {
            "id": rec.item_id,
            "title": rec.title,
            "score": rec.score,
            "reason": template_reason(rec),
            "reason_source": "template",
            "evidence": rec.evidence.to_dict(),
        }
    )


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(jsonable(data), ensure_ascii=False)}\n\n"


def build_routers(service: Service, *, auth_token: str | None = None) -> list[APIRouter]:
    """The ``/api/v1`` routes over ``service``: the open ``/health`` and the guarded rest.

    Args:
        service: The live recommender and its look-ups.
        auth_token: When set, every route but ``/health`` requires this bearer token.
    """
    bearer = HTTPBearer(auto_error=False, description="RECAGENTS_API_TOKEN (when exposed)")

    def require_token(
        credentials: HTTPAuthorizationCredentials | None = Depends(bearer),  # noqa: B008
    ) -> None:
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

    open_router = APIRouter(prefix=PREFIX, tags=["service"])
    router = APIRouter(
        prefix=PREFIX,
        dependencies=[Depends(require_token)],
        tags=["recommender"],
        responses=ERRORS,
    )

    @open_router.get("/health", response_model=HealthResponse)
    def health() -> dict[str, Any]:
        """Liveness: what is served and whether a token is required (no token needed)."""
        from recagents import __version__

        dataset = service.recommender.dataset
        return {
            "status": "ok",
            "version": __version__,
            "dataset": dataset.name,
            "users": dataset.n_users,
            "items": dataset.n_items,
            "auth": auth_token is not None,
            "training": service.training.state,
        }

    def _chat(body: ChatRequest) -> dict[str, Any]:
        thread_id = body.thread_id or f"api-{uuid.uuid4().hex}"
        reply = service.recommender.chat(body.message, thread_id, body.user_id, k=body.k)
        return {"reply": reply.text, "items": _items(reply.items), "thread_id": reply.thread_id}

    @router.post("/chat", response_model=ChatResponse)
    def chat(body: ChatRequest) -> dict[str, Any]:
        """Answer one message in a thread (memory per ``thread_id``).

        ``message`` holds 1 to 20,000 characters; a longer or blank message is a 422.
        """
        return _chat(body)

    @router.post(
        "/chat/stream",
        response_class=StreamingResponse,
        responses={
            200: {
                "description": "Server-sent events. With a chat model configured, `draft` first "
                '(data `{"reply", "items"}`: the picks with template reasons, as soon as they '
                'are ranked). Then `token` events (data `{"text"}`, pieces of the final reply, '
                'with the model\'s verified phrasing), one `items` (data `{"items": [...]}`) '
                'and `done` (data `{"thread_id", "reply"}`). A failure after the stream began '
                'is an `error` event (data `{"error": {"type", "message"}}`).',
                "content": {"text/event-stream": {}},
            }
        },
    )
    async def chat_stream(body: ChatRequest) -> StreamingResponse:
        """The same turn as ``/chat``, streamed as SSE: [``draft``] ``token``... ``items`` ``done``.

        The first event is computed before the response starts, so bad input still gets a JSON
        4xx; the draft arrives in tens of milliseconds while the chat model phrases the top pick.
        """
        thread_id = body.thread_id or f"api-{uuid.uuid4().hex}"
        turns = await run_in_threadpool(
            service.recommender.chat_stream, body.message, thread_id, body.user_id, k=body.k
        )
        first = await run_in_threadpool(next, turns, None)

        async def events() -> AsyncIterator[str]:
            event = first
            while event is not None:
                kind, reply = event
                if kind == "draft":
                    yield _sse("draft", {"reply": reply.text, "items": _items(reply.items)})
                else:
                    for token in stream_tokens(reply.text):
                        yield _sse("token", {"text": token})
                        await asyncio.sleep(0)
                    yield _sse("items", {"items": _items(reply.items)})
                    yield _sse("done", {"thread_id": reply.thread_id, "reply": reply.text})
                try:
                    event = await run_in_threadpool(next, turns, None)
                except Exception as exc:  # the response has begun: report in-band
                    logger.exception("chat stream failed (thread %s)", thread_id)
                    yield _sse("error", error_body(exc))
                    return

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @router.get("/recommendations/{user_id}", response_model=RecommendationsResponse)
    def recommendations(
        user_id: str = Path(max_length=MAX_ID_CHARS, description="known or new user id"),
        k: int = Query(10, ge=1, le=100, description="how many"),
        genre: list[str] = Query(  # noqa: B008
            default_factory=list, description="only these genres (repeat for several)"
        ),
        exclude_genre: list[str] = Query(  # noqa: B008
            default_factory=list, description="never these genres"
        ),
        year_from: int | None = Query(None, ge=1800, le=2100, description="released from"),
        year_to: int | None = Query(None, ge=1800, le=2100, description="released up to"),
        liked: list[str] = Query(  # noqa: B008
            default_factory=list,
            description="extra liked item ids (a new user's only profile)",
        ),
    ) -> dict[str, Any]:
        """Top-k for a user with hard filters; an unknown id takes the cold-start route."""
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

    @router.post("/feedback", response_model=FeedbackResponse)
    def feedback(body: FeedbackRequest) -> dict[str, Any]:
        """👍/👎 on an item: the user-profile agent uses it from the thread's next turn."""
        rec = service.recommender
        rec.feedback(body.thread_id, body.item_id, body.liked)
        state = rec.state(body.thread_id)
        return {
            "thread_id": body.thread_id,
            "item_id": body.item_id,
            "liked": body.liked,
            "liked_items": list(state.get("liked") or []),
            "disliked_items": list(state.get("disliked") or []),
        }

    @router.get("/items", response_model=ItemsResponse)
    def items(
        q: str = Query("", max_length=200, description="title text (typos tolerated)"),
        limit: int = Query(20, ge=1, le=100),
    ) -> dict[str, Any]:
        """Catalog search by title; without ``q``, the most popular items."""
        return {"query": q, "items": service.search(q, limit)}

    @router.get("/agents", response_model=AgentsResponse)
    def agents() -> dict[str, Any]:
        """Registered roles, each with its last round's metrics, and the run's summary."""
        return service.agents()

    @router.get("/threads/{thread_id}", response_model=ThreadResponse)
    def thread(thread_id: str = Path(max_length=MAX_ID_CHARS)) -> dict[str, Any]:
        """A thread's messages and what it learned (liked, disliked, seen, shown...)."""
        view = service.thread(thread_id)
        if not view["messages"] and not view["liked"] and not view["disliked"]:
            raise UnknownEntityError("thread", thread_id, "no message was sent in it yet")
        return view

    return [open_router, router]


def add_not_found(app: FastAPI, routers: list[APIRouter]) -> Callable[..., Any]:
    """JSON 404/405 for anything else under ``/api`` (the UI mounted at ``/`` would answer HTML).

    Args:
        app: The app to add the catch-all route to (after the API's own routes).
        routers: The API routers, to tell a wrong method (405) from a wrong path (404).
    """
    routes = [route for router in routers for route in router.routes]

    @app.api_route(
        "/api/{rest:path}",
        methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
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
