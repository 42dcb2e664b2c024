"""The Gradio UI, one module per part, composed by :func:`build_blocks`.

- :mod:`~recagents.ui.gradio.app`: ``build_blocks(service)``, the Blocks with both tabs.
- :mod:`~recagents.ui.gradio.chat`: the Chat tab (conversation, cards with 👍/👎 and "why?",
  user picker, start over) and its per-session state.
- :mod:`~recagents.ui.gradio.search`: the catalog search panel inside the Chat tab.
- :mod:`~recagents.ui.gradio.learning`: the Learning tab (metrics plot, rounds and agents
  tables, the Train button with progress).
- :mod:`~recagents.ui.gradio.api`: the ``/chat`` endpoint ``gradio_client`` calls.

Importing this package imports Gradio; :mod:`recagents.ui` itself does not.
"""

from recagents.ui.gradio.app import build_blocks

__all__ = ["build_blocks"]
