"""Offline switches for the libraries we lean on.

Every entry point calls :func:`ensure_offline` before importing Hugging Face, Chroma or Gradio code:
this project never loads weights from a hub, and telemetry calls would hang on a closed network.
`setdefault` keeps a caller's explicit choice.
"""

from __future__ import annotations

import os

OFFLINE_ENV: dict[str, str] = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "ANONYMIZED_TELEMETRY": "False",
    "TOKENIZERS_PARALLELISM": "false",
}


def ensure_offline() -> None:
    """Set the offline variables unless the caller already set them."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
