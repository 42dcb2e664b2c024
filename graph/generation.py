"""Bounds on one chat-model call: how long it may queue for a busy model, and a way to stop it.

The embedded model serialises generation behind a lock (two generations on two cores are slower
than one after the other). Without a bound, 20 concurrent turns queued behind that lock until
the 60 s timeout, and a timed-out call went on generating in its background thread, holding the
lock for the next caller. A :class:`CallControl` carries the two bounds a caller sets:

- ``wait_s``: the longest wait for the lock; past it the model raises :class:`ModelBusy` at once,
  so the caller answers with the verified template instead of queueing.
- :meth:`CallControl.cancel`: asks the generation to stop; the model checks it between tokens,
  so the lock is freed one forward pass later.

A whole turn can also be abandoned from outside: the HTTP route that serves a plain chat sets
:func:`caller_scope`'s event when its client disconnects, and every call made under that scope
reads as cancelled from then on (so is never started, or stops at its next token). The turn
itself goes on with the template reasons and commits, so the thread loses nothing; only the
model's work, which nobody would read, is cut.

The control travels in a context variable rather than as a call argument because the caller
(:func:`recagents.graph.explain.explain`) is model-agnostic: a provider model would forward an
unknown keyword argument to its API, while a context variable is simply not read. Threads that
run a call copy the caller's context (``contextvars.copy_context``), so the control follows it.

This module imports nothing heavy (no torch, no LangChain).
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


class ModelBusy(RuntimeError):
    """The model was generating for someone else beyond the caller's wait."""


class CallControl:
    """The bounds of one model call, shared by the caller and the generating thread.

    Attributes:
        wait_s: Longest wait for a busy model (``None``: wait as long as it takes).
        tokens: New tokens generated so far (written by the model as it goes).
        tokens_at_cancel: ``tokens`` when :meth:`cancel` was first called (``None`` if never).
    """

    def __init__(self, wait_s: float | None = None) -> None:
        self.wait_s = wait_s
        self.tokens = 0
        self.tokens_at_cancel: int | None = None
        self._event = threading.Event()
        #: Set when the caller of the whole turn is gone (:func:`caller_scope`).
        self._caller_gone = _CALLER_GONE.get()

    def cancel(self) -> None:
        """Ask the generation to stop at its next token (idempotent)."""
        if not self._event.is_set():
            self.tokens_at_cancel = self.tokens
            self._event.set()

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called, or the turn's caller is gone."""
        if not self._event.is_set() and self._caller_gone is not None:
            if self._caller_gone.is_set():
                self.cancel()
        return self._event.is_set()


@dataclass(frozen=True)
class GenerationStats:
    """What the last generation of a model did, so callers and tests can see a cancel take hold.

    Attributes:
        output_tokens: New tokens generated.
        cancelled: Whether the call was cancelled before it finished on its own.
        tokens_after_cancel: Tokens generated after the cancel (``None`` if not cancelled).
        seconds: Wall-clock time spent generating (not waiting for the lock).
    """

    output_tokens: int
    cancelled: bool
    tokens_after_cancel: int | None
    seconds: float


_CURRENT: contextvars.ContextVar[CallControl | None] = contextvars.ContextVar(
    "recagents_llm_call", default=None
)
_CALLER_GONE: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar(
    "recagents_caller_gone", default=None
)


@contextmanager
def caller_scope(gone: threading.Event) -> Iterator[threading.Event]:
    """Model calls made inside read as cancelled once ``gone`` is set (the caller left)."""
    token = _CALLER_GONE.set(gone)
    try:
        yield gone
    finally:
        _CALLER_GONE.reset(token)


def current_call() -> CallControl | None:
    """The control set by the innermost :func:`call_control` of this context, if any."""
    return _CURRENT.get()


@contextmanager
def call_control(wait_s: float | None = None) -> Iterator[CallControl]:
    """Run model calls under one :class:`CallControl` (the block's calls share it)."""
    control = CallControl(wait_s)
    token = _CURRENT.set(control)
    try:
        yield control
    finally:
        _CURRENT.reset(token)
