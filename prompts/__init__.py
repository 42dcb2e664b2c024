"""Prompt texts, kept as Markdown files next to this module so they can be read and reviewed alone.

Prompts are package data (``recagents.prompts/*.md``), read through ``importlib.resources`` so they
load the same from a source checkout, an editable install or a wheel. :func:`load_chat_prompt` turns
a file into a LangChain ``ChatPromptTemplate``: an HTML comment at the top documents the prompt and
is dropped; ``## system``, ``## user`` and ``## assistant ...`` headings start the messages;
placeholders are f-string fields (``{title}``).
"""

from __future__ import annotations

import functools
import importlib.resources
import re
from typing import TYPE_CHECKING

from recagents.errors import ConfigError

if TYPE_CHECKING:
    from langchain_core.prompts import ChatPromptTemplate

_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_COMMENT = re.compile(r"<!--.*?-->\s*", re.DOTALL)
_SECTION = re.compile(r"^##\s*(system|user|assistant[a-z ]*?)\s*$", re.IGNORECASE | re.MULTILINE)


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


def prompt_sections(name: str) -> dict[str, str]:
    """The prompt's sections by heading (``system``, ``user``, ``assistant ...``), comment dropped.

    A file without headings is one ``user`` section.
    """
    text = _COMMENT.sub("", load_prompt(name)).strip()
    parts = _SECTION.split(text)
    if len(parts) == 1:
        return {"user": text}
    return {parts[i].lower(): parts[i + 1].strip() for i in range(1, len(parts), 2)}


@functools.lru_cache(maxsize=32)
def load_chat_prompt(name: str, opening: tuple[str, ...] = ()) -> ChatPromptTemplate:
    """``prompts/<name>.md`` as a ChatPromptTemplate: system and user messages.

    Args:
        name: The file name without ``.md``.
        opening: Assistant sections to try, in order, for a trailing assistant message (the
            reply's opening, for models that continue it); none found or ``()`` -> no opening.

    Raises:
        ConfigError: As :func:`load_prompt`, or the file has no ``user`` section.
    """
    from langchain_core.prompts import ChatPromptTemplate

    sections = prompt_sections(name)
    if "user" not in sections:
        raise ConfigError(f"prompt {name!r} has no '## user' section")
    messages = [
        (role, sections[key])
        for role, key in (("system", "system"), ("human", "user"))
        if key in sections
    ]
    start = next((sections[k] for k in opening if k in sections), None)
    if start is not None:
        messages.append(("ai", start))
    return ChatPromptTemplate.from_messages(messages, template_format="f-string")
