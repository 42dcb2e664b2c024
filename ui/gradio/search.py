"""Catalog search: the "Search the catalog" panel under the recommendation cards.

Titles are typed loosely ("matrix", "godfather"); the service matches them with typos tolerated and
the panel lists id, title (article moved back to the front), year and genres.
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


@dataclass
class SearchPanel:
    """The search box and its results table, bound to the service they query."""

    service: Service
    query: gr.Textbox
    results: gr.Dataframe

    def on_search(self, query: str) -> Any:
        """The results table for ``query``; a failure shows as a row, never an error page."""
        try:
            found = self.service.search(query or "", SEARCH_LIMIT)
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

    def wire(self) -> None:
        """Search on Enter."""
        self.query.submit(self.on_search, self.query, self.results, api_visibility="private")


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
    return SearchPanel(service, query, results)
