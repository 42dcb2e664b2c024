"""One error tree for the whole package.

Every message says what went wrong *and* what to do about it, because these messages reach people
through the CLI, the HTTP API and the chat UI, where a traceback helps nobody.
"""

from __future__ import annotations


class RecagentsError(Exception):
    """Base class: catching it catches every error this package raises on purpose."""


class ConfigError(RecagentsError, ValueError):
    """A setting is missing, malformed or contradicts another one."""


class DataError(RecagentsError, ValueError):
    """An input file or dataset cannot be used as given."""


class UnknownEntityError(RecagentsError, KeyError):
    """A user or item id is not in the id map.

    Ranking catches this to take the cold-start route, so it carries the kind and the id.
    """

    def __init__(self, kind: str, entity_id: object, hint: str = "") -> None:
        self.kind = kind
        self.entity_id = entity_id
        message = f"unknown {kind} id {entity_id!r}"
        if hint:
            message += f": {hint}"
        super().__init__(message)

    def __str__(self) -> str:  # KeyError would otherwise quote the whole message
        return str(self.args[0])


class VectorStoreError(RecagentsError):
    """The vector store refused an operation or cannot be reached."""


class ModelFitError(RecagentsError):
    """Training diverged (NaN loss) or was asked to do something impossible."""


class CorruptDataError(RecagentsError):
    """A file the program wrote earlier is damaged (truncated, scrambled, fails its checksum).

    Raised at start, before anything is loaded, when no good copy can take its place; the message
    names the file and the fix (move it aside, restore a backup, train again).
    """
