"""The Gradio app's own API endpoint, ``/chat``, for ``gradio_client`` users.

The UI's events are private; this is the one function a ``gradio_client.Client`` sees. Its
signature and docstring are what ``Client.view_api()`` shows, so they are part of that API.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import gradio as gr

from recagents.ui import formatting as fmt
from recagents.ui.gradio.chat import new_thread_id
from recagents.ui.service import Service, jsonable

logger = logging.getLogger(__name__)


def chat_api(service: Service) -> Callable[..., dict]:
    """The ``chat`` endpoint over ``service``; call inside the ``gr.Blocks`` it belongs to."""

    def chat(message: str, thread_id: str = "", user_id: str = "") -> dict:
        """Send one message; returns {reply, items, thread_id} (a new thread when empty)."""
        problem = fmt.check_message(message)
        if problem is not None:
            raise gr.Error(problem)
        thread = thread_id.strip() or new_thread_id()
        try:
            reply = service.recommender.chat(message, thread, user_id.strip() or None)
        except Exception as exc:
            logger.exception("API chat failed (thread %s)", thread)
            raise gr.Error(fmt.error_message(exc)) from None
        return jsonable(
            {
                "reply": reply.text,
                "items": [i.to_public() for i in reply.items],
                "thread_id": reply.thread_id,
            }
        )

    return chat


def add_chat_api(service: Service) -> None:
    """Register ``chat`` as the Blocks' API endpoint ``/chat``."""
    gr.api(chat_api(service), api_name="chat")
