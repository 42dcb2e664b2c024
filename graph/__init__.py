"""The conversation: a LangGraph workflow over the trained agents.

``builder`` builds the graph (``state``, ``context``, one module per node under ``nodes``);
``engine`` is the typed view of a finished run the nodes ask; ``understand`` reads a message into a
``TurnIntent`` (``intent``); ``explain`` turns evidence into checked sentences with the chat model
that ``llm`` loads; ``app`` is the factory ``langgraph.json`` names.
"""
