"""One FastAPI app: the HTTP API under ``/api/v1``, OpenAPI at ``/docs``, the Gradio UI at ``/``.

``create_app`` takes an already-built :class:`~recagents.ui.facade.Recommender` (tests pass a small
fast one, ``recagents serve`` the trained MovieLens one), so nothing here trains or loads data.

Example:
    app = create_app(Recommender.load(), auth_token=None)
    uvicorn.run(app, host="127.0.0.1", port=7860)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI

from recagents.ui.routes import PREFIX
from recagents.ui.service import Service, Trainer

logger = logging.getLogger(__name__)

#: Login name of the UI when a token is set (the password is the token).
UI_USERNAME = "recagents"
#: Largest request body anywhere outside the API's own routes (the UI's events), in bytes.
UI_BODY_LIMIT = 1024 * 1024


def create_app(
    recommender: Any,
    *,
    auth_token: str | None = None,
    trainer: Trainer | None = None,
    allowed_hosts: Sequence[str] | None = None,
    auth_backoff: dict[str, float] | None = None,
) -> FastAPI:
    """Build the server app around a recommender.

    Args:
        recommender: The :class:`~recagents.ui.facade.Recommender` to serve.
        auth_token: When set, the API requires ``Authorization: Bearer <token>`` and the UI a
            login (user ``recagents``, password the token). ``recagents serve`` sets it whenever
            the server listens beyond loopback.
        trainer: ``trainer(progress) -> Recommender`` run by the UI's "train" button in a
            background thread; the new recommender then serves both the UI and the API.
        allowed_hosts: ``Host`` names answered (default: the loopback names); others get a
            400, which keeps DNS-rebinding pages away. ``["*"]`` answers any host.
        auth_backoff: Options of :class:`~recagents.ui.guard.AuthBackoff` (``limit``,
            ``window``, ``base``, ``cap``) when a token is set.

    Returns:
        The FastAPI app (``app.state.service`` holds the shared :class:`Service`,
        ``app.state.auth_token`` the token the API enforces).
    """
    from recagents.env import ensure_offline

    ensure_offline()
    import gradio as gr

    from recagents import __version__
    from recagents.ui.formatting import CARD_CSS
    from recagents.ui.gradio import build_blocks
    from recagents.ui.guard import (
        LOOPBACK_HOSTS,
        AllowedHosts,
        AuthBackoff,
        ExplainTooLarge,
        RefuseMethods,
    )
    from recagents.ui.routes import add_not_found, install_error_handlers, router

    if auth_token is not None:
        from recagents.ui.guard import check_token

        check_token(auth_token)
    from fastapi_offline import FastAPIOffline

    _import_pyplot_once()
    service = Service(recommender, trainer)
    # Swagger UI (/docs) and ReDoc from files in the package: FastAPI's default pages load them
    # from a CDN and would be blank offline.
    app = FastAPIOffline(
        title="recagents",
        version=__version__,
        description=(
            "Conversational recommender whose agents learn together. Chat (plain or SSE), "
            "recommendations with evidence, feedback, catalog search, agents' training metrics. "
            'Errors: `{"error": {"type", "message"}}` with a 4xx for anything the caller '
            "can fix. "
            + (
                "This server requires `Authorization: Bearer <RECAGENTS_API_TOKEN>` on every "
                "endpoint but `/api/v1/health`; repeated wrong tokens are answered 429 for a while."
                if auth_token
                else "This server requires no token (it listens on loopback only)."
            )
            + " Request bodies over a route's limit are refused with 413 before they are read."
        ),
        max_body_size=UI_BODY_LIMIT,
    )
    # What the routes' dependencies read (recagents.ui.routes.get_service / require_token).
    app.state.service = service
    app.state.auth_token = auth_token
    install_error_handlers(app)
    _truthful_openapi(app, auth_token, list(service.genres))
    app.include_router(router)
    add_not_found(app, [router])  # before the UI's mount at "/", which would answer every path
    blocks = build_blocks(service)
    blocks.queue(default_concurrency_limit=16)
    gr.mount_gradio_app(
        app,
        blocks,
        path="/",
        auth=(UI_USERNAME, auth_token) if auth_token else None,
        auth_message="Log in as 'recagents' with the server's RECAGENTS_API_TOKEN.",
        footer_links=["api"],
        run_history=False,
        ssr_mode=False,
        mcp_server=False,
        show_error=False,
        css=CARD_CSS,
    )
    # Outermost last: the host check first, then methods, then the credentials' backoff.
    if auth_token:
        app.add_middleware(AuthBackoff, **(auth_backoff or {}))  # type: ignore[arg-type]
    app.add_middleware(RefuseMethods)  # type: ignore[arg-type]
    app.add_middleware(
        AllowedHosts,  # type: ignore[arg-type]
        hosts=list(allowed_hosts) if allowed_hosts is not None else list(LOOPBACK_HOSTS),
    )
    # Outside FastAPI's own stack: the app-wide body limit answers its 413 there, in plain text.
    build = app.build_middleware_stack
    app.build_middleware_stack = lambda: ExplainTooLarge(build())  # type: ignore[method-assign]
    return app


def _truthful_openapi(app: FastAPI, auth_token: str | None, genres: list[str]) -> None:
    """Make ``/openapi.json`` describe this server, not every server the routes could make.

    Bearer and 429 only with a token; the catalog's genres as the genre filters' values. The
    routes declare the bearer scheme once, for both modes; a loopback server without a token
    never asks for it, so its spec must not say it does (clients and fuzzers trust it).
    Likewise a genre filter takes this catalog's genres (or ``""``, no filter), not any string.
    """
    generate = app.openapi
    too_many = {
        "description": "too many wrong tokens from this address: retry after `Retry-After` s",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
    }

    def openapi() -> dict[str, Any]:
        schema = generate()
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                if not isinstance(operation, dict) or "security" not in operation:
                    continue
                if auth_token:
                    operation.get("responses", {}).setdefault("429", too_many)
                else:
                    operation.pop("security", None)
                    operation.get("responses", {}).pop("401", None)
        if not auth_token:
            schema.get("components", {}).pop("securitySchemes", None)
        for operation in (
            schema.get("paths", {}).get(f"{PREFIX}/recommendations/{{user_id}}", {}).values()
        ):
            for parameter in operation.get("parameters", []):
                if parameter.get("name") in ("genre", "exclude_genre"):
                    parameter["schema"]["items"] = {"type": "string", "enum": ["", *genres]}
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _import_pyplot_once() -> None:
    """Import matplotlib.pyplot here, before the server takes requests.

    Gradio switches matplotlib's backend around every event, which imports pyplot on first use;
    two first events at once (a page load fires several) then import it in two threads, and one
    fails with "partially initialized module 'matplotlib.pyplot'": the page showed "Error".
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401
