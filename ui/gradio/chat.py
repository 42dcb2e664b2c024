"""The Chat tab: streamed replies, cards with 👍/👎 and "why?", the user picker, start over.

Each browser session gets its own ``thread_id`` (a ``gr.State``), so two people never share
conversation memory. Any exception in a handler becomes a readable chat message; the traceback
goes to the server log only.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr

from recagents.ui import formatting as fmt
from recagents.ui.gradio.search import SearchPanel, build_search_panel
from recagents.ui.service import Service, jsonable

logger = logging.getLogger(__name__)

#: Cards shown beside the chat (the chat asks for this many items per turn).
MAX_CARDS = 5
NEW_USER = "New user"

GREETING = (
    "Hi! Tell me a film you love (“I loved Heat”), a mood (“a funny 90s comedy”), or ask for "
    "picks. Press 👍/👎 on a card and I'll use it in the next turn; open **why?** to see the "
    "evidence."
)

History = list[dict[str, Any]]
Items = list[dict[str, Any]]


def card_item(item: Any) -> dict[str, Any]:
    """A reply item as a card reads it: its public form (title, bounded ``match``, reason...)."""
    return jsonable(item.to_public())


def new_thread_id() -> str:
    """A fresh conversation id for one browser session."""
    return f"ui-{uuid.uuid4().hex}"


@dataclass(frozen=True)
class Session:
    """What one browser session keeps between events: its thread, its user, the cards shown."""

    thread: gr.State
    user: gr.State
    items: gr.State

    @classmethod
    def create(cls) -> Session:
        """New per-session states (created first in the Blocks, before any visible component)."""
        return cls(thread=gr.State(None), user=gr.State(None), items=gr.State([]))


@dataclass
class Cards:
    """The :data:`MAX_CARDS` card slots: a hidden column each, its HTML and its two thumbs."""

    groups: list[gr.Column]
    htmls: list[gr.HTML]
    likes: list[gr.Button]
    dislikes: list[gr.Button]


class ChatHandlers:
    """The tab's event handlers over the service (each event reads the recommender anew).

    Args:
        service: The live recommender and catalog look-ups; a training run that swaps the
            recommender is seen by the next event.
    """

    def __init__(self, service: Service) -> None:
        self.service = service

    # -- views ---------------------------------------------------------------------------------

    def profile(self, thread_id: str | None, user_id: str | None) -> str:
        """The "what I know about you" markdown of a thread (empty for a new one)."""
        state: dict[str, Any] = {"user_id": user_id}
        if thread_id:
            try:
                state = {**self.service.recommender.state(thread_id), "user_id": user_id}
            except Exception:  # an unreadable thread shows as an empty profile, not a crash
                logger.exception("could not read thread %s", thread_id)
        return fmt.profile_markdown(state, self.service.display_title)

    def card(
        self,
        item: dict[str, Any],
        rank: int,
        feedback: bool | None = None,
        drafting: str | None = None,
    ) -> str:
        """One card's HTML, with year and genres when the catalog knows the item."""
        try:
            info = self.service.item_info(item["id"])
            year, genres = info["year"], info["genres"]
        except Exception:
            year, genres = None, None
        return fmt.card_html(
            item, rank=rank, year=year, genres=genres, feedback=feedback, drafting=drafting
        )

    def cards_update(self, items: Items) -> list[Any]:
        """Show the first ``len(items)`` slots filled and hide the rest (groups, then HTMLs)."""
        groups, htmls = [], []
        for i in range(MAX_CARDS):
            if i < len(items):
                groups.append(gr.Column(visible=True))
                htmls.append(self.card(items[i], i + 1))
            else:
                groups.append(gr.Column(visible=False))
                htmls.append("")
        return [*groups, *htmls]

    @staticmethod
    def cards_skip() -> list[Any]:
        """Leave every card slot as it is."""
        return [gr.skip()] * (2 * MAX_CARDS)

    # -- events --------------------------------------------------------------------------------

    def on_load(self) -> tuple[Any, ...]:
        """A new page: a new thread, a new user, the greeting, no cards."""
        thread_id = new_thread_id()
        return (
            thread_id,
            None,
            [{"role": "assistant", "content": GREETING}],
            [],
            self.profile(None, None),
            *self.cards_update([]),
        )

    def on_chat(
        self,
        message: str,
        history: History | None,
        thread_id: str | None,
        user_id: str | None,
    ) -> Iterator[tuple[Any, ...]]:
        """One turn, streamed as it happens: the draft picks, the model's words, the final reply.

        With a chat model the picks come first (template reasons, a note that phrasing is under
        way), then the model's words appear in the top card as it writes them, marked as a draft,
        and the checked reply replaces them. Without one the reply appears at once: there is
        nothing to wait for, so nothing is replayed.

        Yields ``(chatbot, box, thread, items, profile, *groups, *htmls)`` updates.
        """
        history = list(history or [])
        thread_id = thread_id or new_thread_id()
        problem = fmt.check_message(message)
        if problem is not None:
            history.append({"role": "assistant", "content": problem})
            yield (history, gr.skip(), thread_id, gr.skip(), gr.skip(), *self.cards_skip())
            return
        history.append({"role": "user", "content": fmt.escape_chat(message)})
        history.append({"role": "assistant", "content": "…"})
        yield (history, "", thread_id, gr.skip(), gr.skip(), *self.cards_skip())
        reply = None
        draft_items: Items = []
        drafting = ""
        try:
            for kind, reply in self.service.recommender.chat_stream(
                message, thread_id, user_id, k=MAX_CARDS, tokens=True
            ):
                if kind == "draft":  # the picks now; the model's phrasing when it is ready
                    draft_items = [card_item(i) for i in reply.items]
                    history[-1] = {
                        "role": "assistant",
                        "content": fmt.chat_summary(reply.text, draft_items)
                        + "\n\n"
                        + fmt.DRAFT_NOTE,
                    }
                    yield (
                        history,
                        gr.skip(),
                        thread_id,
                        draft_items,
                        gr.skip(),
                        *self.cards_update(draft_items),
                    )
                elif kind == "token" and draft_items:  # the model's words, unchecked: a draft
                    drafting += str(reply)
                    top = self.card(draft_items[0], 1, drafting=drafting)
                    yield (
                        history,
                        gr.skip(),
                        thread_id,
                        gr.skip(),
                        gr.skip(),
                        *[gr.skip()] * MAX_CARDS,
                        top,
                        *[gr.skip()] * (MAX_CARDS - 1),
                    )
        except Exception as exc:
            logger.exception("chat turn failed (thread %s)", thread_id)
            history[-1] = {"role": "assistant", "content": fmt.error_message(exc)}
            yield (history, gr.skip(), thread_id, gr.skip(), gr.skip(), *self.cards_skip())
            return
        assert reply is not None  # chat_stream always ends with the final reply
        yield self._final_reply(reply, history, thread_id, user_id)

    def _final_reply(
        self, reply: Any, history: History, thread_id: str, user_id: str | None
    ) -> tuple[Any, ...]:
        """The checked reply in one update: one sentence in the bubble, the picks on the cards."""
        new_items = [card_item(i) for i in reply.items]
        history[-1] = {"role": "assistant", "content": fmt.chat_summary(reply.text, new_items)}
        if new_items:
            return (
                history,
                gr.skip(),
                thread_id,
                new_items,
                self.profile(thread_id, user_id),
                *self.cards_update(new_items),
            )
        # a "why?" or a question: keep the cards of the last recommendations
        return (
            history,
            gr.skip(),
            thread_id,
            gr.skip(),
            self.profile(thread_id, user_id),
            *self.cards_skip(),
        )

    def on_feedback(
        self,
        index: int,
        liked: bool,
        history: History | None,
        thread_id: str | None,
        user_id: str | None,
        items: Items | None,
    ) -> tuple[Any, ...]:
        """👍/👎 on card ``index``: tell the recommender, mark the card, note it in the chat."""
        history = list(history or [])
        items = list(items or [])
        if not thread_id or index >= len(items):
            return history, gr.skip(), gr.skip()
        item = items[index]
        try:
            self.service.recommender.feedback(thread_id, item["id"], liked)
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
        return history, self.card(item, index + 1, liked), self.profile(thread_id, user_id)

    def on_search_like(
        self,
        item_id: str | None,
        history: History | None,
        thread_id: str | None,
        user_id: str | None,
    ) -> tuple[Any, ...]:
        """👍 on a catalog search result: the film joins the profile, as a card's 👍 does.

        Returns ``(chatbot, profile, picked text)``.
        """
        history = list(history or [])
        if not item_id or not thread_id:
            return history, gr.skip(), "Pick a search result first (click its row)."
        try:
            self.service.recommender.feedback(thread_id, item_id, True)
        except Exception as exc:
            logger.exception("search like failed (thread %s)", thread_id)
            history.append({"role": "assistant", "content": fmt.error_message(exc)})
            return history, gr.skip(), gr.skip()
        title = fmt.escape_chat(self.service.display_title(item_id))
        history.append(
            {
                "role": "assistant",
                "content": f"👍 Noted: you like {title}. Your next picks will build on it.",
            }
        )
        return history, self.profile(thread_id, user_id), f"👍 Added **{title}** to what you like."

    def feedback_handler(self, index: int, liked: bool) -> Callable[..., tuple[Any, ...]]:
        """:meth:`on_feedback` with the card index and the thumb fixed (one per button)."""

        def handler(
            history: History | None,
            thread_id: str | None,
            user_id: str | None,
            items: Items | None,
        ) -> tuple[Any, ...]:
            return self.on_feedback(index, liked, history, thread_id, user_id, items)

        return handler

    def on_user(self, choice: str | None) -> tuple[Any, ...]:
        """A user picked (or start over): a new thread from that user's profile, no cards."""
        choice = (choice or "").strip()
        user_id = None if not choice or choice == NEW_USER else choice
        thread_id = new_thread_id()
        if user_id is None:
            greeting = "You're a new user: " + GREETING
        elif self.service.is_known_user(user_id):
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
            self.profile(None, user_id),
            *self.cards_update([]),
        )


@dataclass
class ChatTab:
    """The tab's components, wired to :class:`ChatHandlers` by :meth:`wire`."""

    handlers: ChatHandlers
    session: Session
    user_pick: gr.Dropdown
    restart: gr.Button
    chatbot: gr.Chatbot
    box: gr.Textbox
    send: gr.Button
    cards: Cards
    profile: gr.Markdown
    search: SearchPanel

    @property
    def reset_outputs(self) -> list[Any]:
        """What a new page or a new user resets (the order of ``on_load``/``on_user``)."""
        s = self.session
        return [
            s.thread,
            s.user,
            self.chatbot,
            s.items,
            self.profile,
            *self.cards.groups,
            *self.cards.htmls,
        ]

    def wire_page_load(self, demo: gr.Blocks) -> None:
        """Start every page on a fresh thread."""
        demo.load(self.handlers.on_load, None, self.reset_outputs, api_visibility="private")

    def wire(self) -> None:
        """Send (Enter or button), thumbs, user picker, start over, clear; then the search."""
        h, s = self.handlers, self.session
        chat_inputs = [self.box, self.chatbot, s.thread, s.user]
        chat_outputs = [self.chatbot, self.box, s.thread, s.items, self.profile]
        chat_outputs += [*self.cards.groups, *self.cards.htmls]
        for trigger in (self.box.submit, self.send.click):
            trigger(h.on_chat, chat_inputs, chat_outputs, api_visibility="private")
        for i in range(MAX_CARDS):
            for button, liked in ((self.cards.likes[i], True), (self.cards.dislikes[i], False)):
                button.click(
                    h.feedback_handler(i, liked),
                    [self.chatbot, s.thread, s.user, s.items],
                    [self.chatbot, self.cards.htmls[i], self.profile],
                    api_visibility="private",
                )
        reset = self.reset_outputs
        self.user_pick.input(h.on_user, self.user_pick, reset, api_visibility="private")
        self.restart.click(h.on_user, self.user_pick, reset, api_visibility="private")
        self.chatbot.clear(h.on_user, self.user_pick, reset, api_visibility="private")
        self.search.wire()
        self.search.like.click(
            h.on_search_like,
            [self.search.picked, self.chatbot, s.thread, s.user],
            [self.chatbot, self.profile, self.search.picked_text],
            api_visibility="private",
        )


def build_chat_tab(service: Service, session: Session) -> ChatTab:
    """Lay out the tab's contents (inside the caller's ``gr.Tab``): chat left, cards right."""
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            user_pick, restart, chatbot, box, send = _conversation(service)
        with gr.Column(scale=2):
            gr.Markdown("### Recommendations")
            cards = _cards()
            profile = gr.Markdown(elem_id="profile")
            search = build_search_panel(service)
    return ChatTab(
        handlers=ChatHandlers(service),
        session=session,
        user_pick=user_pick,
        restart=restart,
        chatbot=chatbot,
        box=box,
        send=send,
        cards=cards,
        profile=profile,
        search=search,
    )


def _conversation(
    service: Service,
) -> tuple[gr.Dropdown, gr.Button, gr.Chatbot, gr.Textbox, gr.Button]:
    """The user picker and Start over, the chatbot, the message box and Send."""
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
        restart = gr.Button("Start over", variant="secondary", scale=1, elem_id="start-over")
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
    return user_pick, restart, chatbot, box, send


def _cards() -> Cards:
    """:data:`MAX_CARDS` hidden card slots, each an HTML card over a 👍/👎 row."""
    cards = Cards([], [], [], [])
    for i in range(MAX_CARDS):
        with gr.Column(visible=False, elem_id=f"card-{i}", elem_classes="ra-slot") as group:
            cards.htmls.append(gr.HTML("", elem_id=f"card-html-{i}", js_on_load=None))
            with gr.Row(elem_classes="ra-feedback"):
                cards.likes.append(
                    gr.Button("👍 Like", size="sm", elem_id=f"like-{i}", min_width=0)
                )
                cards.dislikes.append(
                    gr.Button("👎 Not for me", size="sm", elem_id=f"dislike-{i}", min_width=0)
                )
        cards.groups.append(group)
    return cards
