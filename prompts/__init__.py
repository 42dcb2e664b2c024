"""Prompt texts, kept as Markdown files next to this module so they can be read and reviewed alone.

Prompts are package data (``recagents.prompts/*.md``), read through ``importlib.resources`` so they
load the same from a source checkout, an editable install or a wheel.
"""

from __future__ import annotations

import functools
import importlib.resources
import re

from recagents.errors import ConfigError

_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


def available_prompts() -> list[str]:
    """Names of the prompt files shipped with the package."""
    root = importlib.resources.files(__name__)
    return sorted(p.name[:-3] for p in root.iterdir() if p.name.endswith(".md"))


@functools.lru_cache(maxsize=32)
def load_prompt(name: str) -> str:
    """The text of ``prompts/<name>.md``, read once per process.

    Args:
        name: The file name without ``.md`` (``explain``).

    Raises:
        ConfigError: The name is malformed or no such prompt ships with the package.
    """
    if not _NAME.match(name):
        raise ConfigError(f"prompt name {name!r} must be a bare file name without '.md'")
    resource = importlib.resources.files(__name__).joinpath(f"{name}.md")
    try:
        return resource.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(
            f"no prompt named {name!r}; available: {', '.join(available_prompts()) or 'none'}"
        ) from exc
