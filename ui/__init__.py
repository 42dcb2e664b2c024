"""The product people touch: the Gradio chat app and the HTTP API, served by one FastAPI app.

- :mod:`recagents.ui.app`: ``create_app(recommender, auth_token=..., trainer=...)``.
- :mod:`recagents.ui.routes`: the ``/api/v1`` router (dependencies on ``app.state``) and error
  mapping; :mod:`recagents.ui.schemas`: its request and response models.
- :mod:`recagents.ui.gradio`: the Gradio UI, one module per tab (chat, search, learning).
- :mod:`recagents.ui.service`: what both share (live recommender, catalog, training run).
- :mod:`recagents.ui.formatting`: pure helpers (cards, evidence, messages), no Gradio.

Importing this package imports nothing heavy: Gradio and FastAPI load with the modules that need
them.
"""
