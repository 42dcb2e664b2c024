"""The Gradio chat app: streamed replies, cards with 👍/👎 and "why?", users, search, learning.

Built over a :class:`~recagents.ui.service.Service`, never over a recommender directly, so a
training run that swaps the model is seen by the next event. Each browser session gets its own
``thread_id`` (a ``gr.State``), so two people never share conversation memory. Any exception in a
handler becomes a readable chat message; the traceback goes to the server log only.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import gradio as gr

from recagents.data.titles import move_article
from recagents.ui import formatting as fmt
from recagents.ui.service import Service, jsonable

logger = logging.getLogger(__name__)

#: Cards shown beside the chat (the chat asks for this many items per turn).
MAX_CARDS = 5
NEW_USER = "New user"
#: Streaming pace: at most this many updates per reply, this long apart.
MAX_UPDATES = 30
UPDATE_DELAY_S = 0.03

GREETING = (
    "Hi! Tell me a film you love (“I loved Heat”), a mood (“a funny 90s comedy”), or ask for "
    "picks. Press 👍/👎 on a card and I'll use it in the next turn; open **why?** to see the "
    "evidence."
)


def new_thread_id() -> str:
    """A fresh conversation id for one browser session."""
    return f"ui-{uuid.uuid4().hex}"


def build_blocks(service: Service) -> gr.Blocks:
    """The whole UI: a Chat tab and a Learning tab.

    Args:
        service: The live recommender, catalog look-ups and training runner.
    """
    # -- helpers bound to the service ----------------------------------------------------------

    def title_of(item_id: str) -> str:
        return service.display_title(item_id)

    def profile(thread_id: str | None, user_id: str | None) -> str:
        state: dict[str, Any] = {"user_id": user_id}
        if thread_id:
            try:
                state = {**service.recommender.state(thread_id), "user_id": user_id}
            except Exception:  # an unreadable thread shows as an empty profile, not a crash
                logger.exception("could not read thread %s", thread_id)
        return fmt.profile_markdown(state, title_of)

    def card(item: dict[str, Any], rank: int, feedback: bool | None = None) -> str:
        try:
            info = service.item_info(item["id"])
            year, genres = info["year"], info["genres"]
        except Exception:
            year, genres = None, None
        return fmt.card_html(item, rank=rank, year=year, genres=genres, feedback=feedback)

    def cards_update(items: list[dict[str, Any]]) -> list[Any]:
        groups, htmls = [], []
        for i in range(MAX_CARDS):
            if i < len(items):
                groups.append(gr.Column(visible=True))
                htmls.append(card(items[i], i + 1))
            else:
                groups.append(gr.Column(visible=False))
                htmls.append("")
        return [*groups, *htmls]

    def cards_skip() -> list[Any]:
        return [gr.skip()] * (2 * MAX_CARDS)

    # -- handlers -----------------------------------------------------------------------------

    def on_load() -> tuple[Any, ...]:
        thread_id = new_thread_id()
        return (
            thread_id,
            None,
            [{"role": "assistant", "content": GREETING}],
            [],
            profile(None, None),
            *cards_update([]),
        )

    def on_chat(
        message: str,
        history: list[dict[str, Any]] | None,
        thread_id: str | None,
        user_id: str | None,
    ) -> Iterator[tuple[Any, ...]]:
        history = list(history or [])
        thread_id = thread_id or new_thread_id()
        problem = fmt.check_message(message)
        if problem is not None:
            history.append({"role": "assistant", "content": problem})
            yield (history, gr.skip(), thread_id, gr.skip(), gr.skip(), *cards_skip())
            return
        history.append({"role": "user", "content": fmt.escape_chat(message)})
        history.append({"role": "assistant", "content": "…"})
        yield (history, "", thread_id, gr.skip(), gr.skip(), *cards_skip())
        reply = None
        try:
            for kind, reply in service.recommender.chat_stream(
                message, thread_id, user_id, k=MAX_CARDS
            ):
                if kind == "draft":  # the picks now; the model's phrasing when it is ready
                    draft_items = [jsonable(i.to_dict()) for i in reply.items]
                    history[-1] = {
                        "role": "assistant",
                        "content": fmt.escape_chat(reply.text) + "\n\n" + fmt.DRAFT_NOTE,
                    }
                    yield (
                        history,
                        gr.skip(),
                        thread_id,
                        draft_items,
                        gr.skip(),
                        *cards_update(draft_items),
                    )
        except Exception as exc:
            logger.exception("chat turn failed (thread %s)", thread_id)
            history[-1] = {"role": "assistant", "content": fmt.error_message(exc)}
            yield (history, gr.skip(), thread_id, gr.skip(), gr.skip(), *cards_skip())
            return
        assert reply is not None  # chat_stream always ends with the final reply
        text = fmt.escape_chat(reply.text)
        for chunk in fmt.stream_chunks(text, MAX_UPDATES):
            history[-1] = {"role": "assistant", "content": chunk}
            yield (history, gr.skip(), thread_id, gr.skip(), gr.skip(), *cards_skip())
            time.sleep(UPDATE_DELAY_S)
        new_items = [jsonable(i.to_dict()) for i in reply.items]
        if new_items:
            yield (
                history,
                gr.skip(),
                thread_id,
                new_items,
                profile(thread_id, user_id),
                *cards_update(new_items),
            )
        else:  # a "why?" or a question: keep the cards of the last recommendations
            yield (
                history,
                gr.skip(),
                thread_id,
                gr.skip(),
                profile(thread_id, user_id),
                *cards_skip(),
            )

    def on_feedback(
        index: int,
        liked: bool,
        history: list[dict[str, Any]] | None,
        thread_id: str | None,
        user_id: str | None,
        items: list[dict[str, Any]] | None,
    ) -> tuple[Any, ...]:
        history = list(history or [])
        items = list(items or [])
        if not thread_id or index >= len(items):
            return history, gr.skip(), gr.skip()
        item = items[index]
        try:
            service.recommender.feedback(thread_id, item["id"], liked)
        except Exception as exc:
            logger.exception("feedback failed (thread %s)", thread_id)
            history.append({"role": "assistant", "content": fmt.error_message(exc)})
            return history, gr.skip(), gr.skip()
        title = fmt.escape_chat(str(item.get("title", item["id"])))
        note = (
            f"👍 Noted: you like {title}. Your next picks will build on it."
            if liked
            else f"👎 Noted: {title} is not for you. I won't show it again."
        )
        history.append({"role": "assistant", "content": note})
        return history, card(item, index + 1, liked), profile(thread_id, user_id)

    def on_user(choice: str | None) -> tuple[Any, ...]:
        choice = (choice or "").strip()
        user_id = None if not choice or choice == NEW_USER else choice
        thread_id = new_thread_id()
        if user_id is None:
            greeting = "You're a new user: " + GREETING
        elif service.is_known_user(user_id):
            greeting = (
                f"You're MovieLens user **{fmt.escape_chat(user_id)}**: I start from what this "
                "user rated. Ask for recommendations, or tell me what you're in the mood for."
            )
        else:
            greeting = (
                f"I don't know user **{fmt.escape_chat(user_id)}**, so I'll start from scratch "
                "and learn from what you tell me."
            )
        return (
            thread_id,
            user_id,
            [{"role": "assistant", "content": greeting}],
            [],
            profile(None, user_id),
            *cards_update([]),
        )

    def on_search(query: str) -> Any:
        try:
            found = service.search(query or "", 20)
        except Exception as exc:
            return gr.Dataframe(
                value=[["", fmt.error_message(exc), "", ""]], headers=SEARCH_HEADERS
            )
        rows = [
            [
                i["id"],
                move_article(i["title"]),
                i["year"] if i["year"] is not None else "",
                ", ".join(i["genres"]),
            ]
            for i in found
        ] or [["", "no match", "", ""]]
        return gr.Dataframe(value=rows, headers=SEARCH_HEADERS)

    def learning_outputs() -> tuple[Any, ...]:
        report = service.report()
        agents = service.agents()
        summary = fmt.learning_markdown(report, agents.get("training"))
        rh, rows = fmt.rounds_table(report)
        ah, arows = fmt.agents_table(agents["agents"])
        return (
            summary,
            fmt.rounds_figure(report),
            gr.Dataframe(value=rows, headers=rh),
            gr.Dataframe(value=arows, headers=ah),
        )

    def on_train(progress: gr.Progress = gr.Progress()) -> str:  # noqa: B008
        try:
            started = service.start_training()
        except Exception as exc:
            return fmt.error_message(exc)
        if not started:
            return "A training run is already in progress."
        progress(0.0, desc="starting")
        while service.training.state == "running":
            progress(service.training.progress, desc=service.training.message or "training")
            time.sleep(0.2)
        status = service.training
        if status.state == "failed":
            message = f"Training failed: {status.error}. The previous model keeps serving."
        else:
            took = (status.finished or 0) - (status.started or 0)
            message = f"Training finished in {took:.1f} s: the new model is serving."
        return message

    # -- layout -------------------------------------------------------------------------------

    with gr.Blocks(title="recagents", fill_height=False) as demo:
        thread_state = gr.State(None)
        user_state = gr.State(None)
        items_state = gr.State([])
        gr.Markdown(
            "## 🎬 recagents\nRecommendations from agents that learn together: ask, question "
            "them with **why?**, and correct them with 👍/👎."
        )
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3):
                        with gr.Row():
                            user_pick = gr.Dropdown(
                                choices=[NEW_USER, *service.users()],
                                value=NEW_USER,
                                label="Who are you?",
                                info="a MovieLens user id, or a new user",
                                allow_custom_value=True,
                                filterable=True,
                                scale=3,
                                elem_id="user-pick",
                            )
                            restart = gr.Button(
                                "Start over", variant="secondary", scale=1, elem_id="start-over"
                            )
                        chatbot = gr.Chatbot(
                            label="Conversation",
                            height=460,
                            elem_id="chat",
                            feedback_options=None,
                            sanitize_html=True,
                            buttons=["copy"],
                        )
                        with gr.Row():
                            box = gr.Textbox(
                                placeholder="Tell me what you like… (Enter to send)",
                                show_label=False,
                                scale=5,
                                max_lines=4,
                                elem_id="message",
                            )
                            send = gr.Button("Send", variant="primary", scale=1, elem_id="send")
                    with gr.Column(scale=2):
                        gr.Markdown("### Recommendations")
                        groups, htmls, likes, dislikes = [], [], [], []
                        for i in range(MAX_CARDS):
                            with gr.Column(
                                visible=False, elem_id=f"card-{i}", elem_classes="ra-slot"
                            ) as group:
                                htmls.append(gr.HTML("", elem_id=f"card-html-{i}", js_on_load=None))
                                with gr.Row(elem_classes="ra-feedback"):
                                    likes.append(
                                        gr.Button(
                                            "👍 Like", size="sm", elem_id=f"like-{i}", min_width=0
                                        )
                                    )
                                    dislikes.append(
                                        gr.Button(
                                            "👎 Not for me",
                                            size="sm",
                                            elem_id=f"dislike-{i}",
                                            min_width=0,
                                        )
                                    )
                            groups.append(group)
                        profile_md = gr.Markdown(elem_id="profile")
                        with gr.Accordion("Search the catalog", open=False, elem_id="search"):
                            query = gr.Textbox(
                                placeholder="title, e.g. matrix",
                                show_label=False,
                                elem_id="search-box",
                            )
                            results = gr.Dataframe(
                                headers=SEARCH_HEADERS,
                                interactive=False,
                                elem_id="search-results",
                                max_height=320,
                            )
            with gr.Tab("Learning", id="learning"):
                learn_summary = gr.Markdown(elem_id="learning-summary")
                learn_plot = gr.Plot(label="Validation metrics per round", elem_id="rounds-plot")
                learn_rounds = gr.Dataframe(label="Rounds", interactive=False)
                learn_agents = gr.Dataframe(
                    label="Agents", interactive=False, elem_id="agents-table"
                )
                with gr.Row():
                    train = gr.Button(
                        "Train",
                        variant="primary",
                        interactive=service.trainer is not None,
                        elem_id="train",
                        scale=0,
                    )
                    train_status = gr.Markdown(
                        "Training reruns the collaborative rounds and swaps in the new model."
                        if service.trainer is not None
                        else "Training from the UI is not available on this server.",
                        elem_id="train-status",
                    )

        # -- wiring ----------------------------------------------------------------------------

        reset_outputs = [thread_state, user_state, chatbot, items_state, profile_md]
        reset_outputs += [*groups, *htmls]
        demo.load(on_load, None, reset_outputs, api_visibility="private")
        demo.load(
            learning_outputs,
            None,
            [learn_summary, learn_plot, learn_rounds, learn_agents],
            api_visibility="private",
        )
        chat_inputs = [box, chatbot, thread_state, user_state]
        chat_outputs = [chatbot, box, thread_state, items_state, profile_md]
        chat_outputs += [*groups, *htmls]
        for trigger in (box.submit, send.click):
            trigger(on_chat, chat_inputs, chat_outputs, api_visibility="private")
        for i in range(MAX_CARDS):
            for button, liked in ((likes[i], True), (dislikes[i], False)):
                button.click(
                    _bind(on_feedback, i, liked),
                    [chatbot, thread_state, user_state, items_state],
                    [chatbot, htmls[i], profile_md],
                    api_visibility="private",
                )
        user_pick.input(on_user, user_pick, reset_outputs, api_visibility="private")
        restart.click(on_user, user_pick, reset_outputs, api_visibility="private")
        chatbot.clear(on_user, user_pick, reset_outputs, api_visibility="private")
        query.submit(on_search, query, results, api_visibility="private")
        train.click(
            on_train, None, train_status, api_visibility="private", concurrency_limit=1
        ).then(  # the progress bar sits on the status line only; then refresh the rest
            learning_outputs,
            None,
            [learn_summary, learn_plot, learn_rounds, learn_agents],
            api_visibility="private",
        )

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
                    "items": [i.to_dict() for i in reply.items],
                    "thread_id": reply.thread_id,
                }
            )

        gr.api(chat, api_name="chat")
    return demo


SEARCH_HEADERS = ["id", "title", "year", "genres"]


def _bind(fn: Any, index: int, liked: bool) -> Any:
    """``fn`` with the card index and the thumb fixed (a closure per button)."""

    def handler(
        history: list[dict[str, Any]] | None,
        thread_id: str | None,
        user_id: str | None,
        items: list[dict[str, Any]] | None,
    ) -> tuple[Any, ...]:
        return fn(index, liked, history, thread_id, user_id, items)

    return handler
