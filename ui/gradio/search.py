"""Catalog search: the "Search the catalog" panel under the recommendation cards.

Titles are typed loosely ("matrix", "godfather"); the service matches them with typos tolerated and
the panel lists id, title (article moved back to the front), year and genres. Clicking a row picks
that film and "👍 I like it" adds it to the conversation's profile, as a card's 👍 does: a person
who searched for a film they love should not have to wait for it to be recommended to say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from recagents.data.titles import move_article
from recagents.ui import formatting as fmt
from recagents.ui.service import Service

SEARCH_HEADERS = ["id", "title", "year", "genres"]
#: Rows shown per search.
SEARCH_LIMIT = 20
NOTHING_PICKED = "Click a result to pick it, then press 👍 to tell me you like it."


@dataclass
class SearchPanel:
    """The search box, its results table and the like button, bound to the service they query."""

    service: Service
    query: gr.Textbox
    results: gr.Dataframe
    found: gr.State
    picked: gr.State
    picked_text: gr.Markdown
    like: gr.Button

    def on_search(self, query: str) -> tuple[Any, ...]:
        """The results table for ``query`` and their ids; a failure shows as a row, not a crash."""
        try:
            found = self.service.search(query or "", SEARCH_LIMIT)
        except Exception as exc:
            rows = [["", fmt.error_message(exc), "", ""]]
            return gr.Dataframe(value=rows, headers=SEARCH_HEADERS), [], None, NOTHING_PICKED
        rows = [
            [
                i["id"],
                move_article(i["title"]),
                i["year"] if i["year"] is not None else "",
                ", ".join(i["genres"]),
            ]
            for i in found
        ] or [["", "no match", "", ""]]
        ids = [i["id"] for i in found]
        return gr.Dataframe(value=rows, headers=SEARCH_HEADERS), ids, None, NOTHING_PICKED

    def on_select(self, found: list[str] | None, event: gr.SelectData) -> tuple[Any, ...]:
        """A clicked row becomes the picked film (a "no match" row picks nothing)."""
        index = event.index[0] if isinstance(event.index, list | tuple) else event.index
        found = list(found or [])
        if not isinstance(index, int) or not 0 <= index < len(found):
            return None, NOTHING_PICKED
        item_id = found[index]
        title = fmt.escape_chat(self.service.display_title(item_id))
        return item_id, f"Picked **{title}**: press 👍 if you like it."

    def wire(self) -> None:
        """Search on Enter; pick on a row click (the like is wired by the chat tab)."""
        self.query.submit(
            self.on_search,
            self.query,
            [self.results, self.found, self.picked, self.picked_text],
            api_visibility="private",
        )
        self.results.select(
            self.on_select, [self.found], [self.picked, self.picked_text], api_visibility="private"
        )


def build_search_panel(service: Service) -> SearchPanel:
    """Lay out the collapsed search accordion where the caller's layout stands."""
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
        with gr.Row(elem_classes="ra-like-row"):
            picked_text = gr.Markdown(NOTHING_PICKED, elem_id="search-picked")
            like = gr.Button("👍 I like it", size="sm", elem_id="search-like", min_width=0)
    return SearchPanel(
        service,
        query,
        results,
        found=gr.State([]),
        picked=gr.State(None),
        picked_text=picked_text,
        like=like,
    )
