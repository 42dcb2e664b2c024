"""``build_blocks``: the whole Gradio UI, composed from one module per tab.

Built over a :class:`~recagents.ui.service.Service`, never over a recommender directly, so a
training run that swaps the model is seen by the next event.
"""

from __future__ import annotations

import gradio as gr

from recagents.ui.gradio.api import add_chat_api
from recagents.ui.gradio.chat import Session, build_chat_tab
from recagents.ui.gradio.learning import build_learning_tab
from recagents.ui.service import Service

HEADER = (
    "## 🎬 recagents\nRecommendations from agents that learn together: ask, question "
    "them with **why?**, and correct them with 👍/👎."
)


def build_blocks(service: Service) -> gr.Blocks:
    """The whole UI: a Chat tab (with the catalog search) and a Learning tab.

    Components are created and events wired in one fixed order (session states, header, chat,
    learning; page loads first), which keeps Gradio's component and event ids stable.

    Args:
        service: The live recommender, catalog look-ups and training runner.
    """
    with gr.Blocks(title="recagents", fill_height=False) as demo:
        session = Session.create()
        gr.Markdown(HEADER)
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                chat = build_chat_tab(service, session)
            with gr.Tab("Learning", id="learning"):
                learning = build_learning_tab(service)
        chat.wire_page_load(demo)
        learning.wire_page_load(demo)
        chat.wire()
        learning.wire()
        add_chat_api(service)
    return demo
