"""One FastAPI app: the HTTP API under ``/api/v1``, OpenAPI at ``/docs``, the Gradio UI at ``/``.

``create_app`` takes an already-built :class:`~recagents.ui.facade.Recommender` (tests pass a small
fast one, ``recagents serve`` the trained MovieLens one), so nothing here trains or loads data.

Example:
    app = create_app(Recommender.load(), auth_token=None)
    uvicorn.run(app, host="127.0.0.1", port=7860)
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI

from recagents.ui.service import Service, Trainer

logger = logging.getLogger(__name__)

#: Login name of the UI when a token is set (the password is the token).
UI_USERNAME = "recagents"


def create_app(
    recommender: Any,
    *,
    auth_token: str | None = None,
    trainer: Trainer | None = None,
) -> FastAPI:
    """Build the server app around a recommender.

    Args:
        recommender: The :class:`~recagents.ui.facade.Recommender` to serve.
        auth_token: When set, the API requires ``Authorization: Bearer <token>`` and the UI a
            login (user ``recagents``, password the token). ``recagents serve`` sets it whenever
            the server listens beyond loopback.
        trainer: ``trainer(progress) -> Recommender`` run by the UI's "train" button in a
            background thread; the new recommender then serves both the UI and the API.

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
    from recagents.ui.routes import add_not_found, install_error_handlers, router

    if auth_token is not None and not auth_token.strip():
        from recagents.errors import ConfigError

        raise ConfigError("the access token is empty: set RECAGENTS_API_TOKEN to a secret")
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
            "can fix. When the server is exposed beyond 127.0.0.1, send "
            "`Authorization: Bearer <RECAGENTS_API_TOKEN>`."
        ),
    )
    # What the routes' dependencies read (recagents.ui.routes.get_service / require_token).
    app.state.service = service
    app.state.auth_token = auth_token
    install_error_handlers(app)
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
    return app


def _import_pyplot_once() -> None:
    """Import matplotlib.pyplot here, before the server takes requests.

    Gradio switches matplotlib's backend around every event, which imports pyplot on first use;
    two first events at once (a page load fires several) then import it in two threads, and one
    fails with "partially initialized module 'matplotlib.pyplot'": the page showed "Error".
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401
