"""The product people touch: the Gradio chat app and the HTTP API, served by one FastAPI app.

- :mod:`recagents.ui.app`: ``create_app(recommender, auth_token=..., trainer=...)``.
- :mod:`recagents.ui.routes`: the ``/api/v1`` routes, schemas and error mapping.
- :mod:`recagents.ui.blocks`: the Gradio UI (chat, cards, learning tab).
- :mod:`recagents.ui.service`: what both share (live recommender, catalog, training run).
- :mod:`recagents.ui.formatting`: pure helpers (cards, evidence, messages), no Gradio.

Importing this package imports nothing heavy: Gradio and FastAPI load with the modules that need
them.
"""
