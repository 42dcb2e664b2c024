"""The interaction log: what live conversations said, kept for the next training round.

Why a separate log: a thread's checkpointed state is capped and overwritten turn after turn
(``graph/state.py``), and it belongs to the conversation, not to training. The trainer needs
the evidence itself, in order, for every thread: which films a person said they liked,
disliked or had seen, which they 👍/👎'd, and which suggestions they took. Each finished turn
(and each 👍/👎) appends one :class:`LogEntry` as one JSON line to ``home/feedback/log.jsonl``.

Durability: every append is one ``write`` of a whole line on an ``O_APPEND`` descriptor under an
exclusive ``flock`` (several processes may write), followed by ``fsync`` before the append
returns, so an acknowledged entry survives a kill -9 or a crash. A process killed in the middle
of an append leaves at most that one torn line: :meth:`FeedbackLog.read` skips it with a
warning naming the line, and the next append first ends the torn line, so it never glues
itself onto the fragment. Forgetting a thread rewrites the log without its entries atomically
(temporary file, fsync, rename), so a crash leaves either the old or the new log, never a mix.

The log turns into the dialogue-corpus shape (:mod:`recagents.data.dialogues`, when present):
a thread is one dialogue whose seeker text is the person's messages and whose films are the ones
shown (suggested), liked, disliked and seen (:func:`thread_evidence`).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import secrets
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from recagents.errors import DataError

logger = logging.getLogger(__name__)

#: Format version written in every entry (``"v"``).
LOG_VERSION = 1
#: Where the log lives under the home folder.
LOG_RELATIVE = Path("feedback") / "log.jsonl"
#: What an entry may record (``source``): a chat turn or a 👍/👎 on a card.
SOURCES = ("turn", "feedback")
#: The item-id lists an entry holds.
LISTS = ("liked", "disliked", "seen", "shown", "accepted", "retracted")


@dataclass(frozen=True)
class LogEntry:
    """One finished turn's (or one 👍/👎's) evidence about one thread.

    Attributes:
        thread_id: The conversation (each thread is one user for training).
        time: Seconds since the epoch when the turn committed.
        catalog: Dataset name the item ids belong to (``movielens-100k``...).
        source: ``turn`` (a chat message) or ``feedback`` (a 👍/👎 on a card).
        message: The person's words this turn (``turn`` only; empty for feedback).
        user_id: The known catalog user the thread speaks for, if one was named.
        liked / disliked / seen: Item ids newly said (or 👍/👎'd) this turn.
        shown: Item ids the recommender suggested this turn (the reply's cards).
        accepted: Liked ids that the thread had been shown before (a suggestion taken).
        retracted: Ids whose earlier opinion the person took back ("not Toy Story, I meant
            Babe"): the opinion is dropped when the log is folded.
    """

    thread_id: str
    time: float
    catalog: str
    source: str = "turn"
    message: str = ""
    user_id: str | None = None
    liked: tuple[str, ...] = ()
    disliked: tuple[str, ...] = ()
    seen: tuple[str, ...] = ()
    shown: tuple[str, ...] = ()
    accepted: tuple[str, ...] = ()
    retracted: tuple[str, ...] = ()

    def to_json(self) -> str:
        """One line of the log (no newline): compact JSON with the format version."""
        data = {"v": LOG_VERSION, **asdict(self)}
        for key in LISTS:
            data[key] = list(data[key])
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str) -> LogEntry:
        """Parse one line.

        Raises:
            ValueError: Not JSON, or not an entry of a known version.
        """
        data = json.loads(line)
        if not isinstance(data, dict) or data.get("v") != LOG_VERSION:
            raise ValueError(f"not a version-{LOG_VERSION} log entry")
        if data.get("source") not in SOURCES:
            raise ValueError(f"unknown source {data.get('source')!r}")
        lists = {}
        for key in LISTS:
            value = data.get(key) or []
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"{key} must be a list of item ids")
            lists[key] = tuple(value)
        thread_id = data.get("thread_id")
        if not isinstance(thread_id, str) or not thread_id:
            raise ValueError("thread_id missing")
        user_id = data.get("user_id")
        return cls(
            thread_id=thread_id,
            time=float(data.get("time") or 0.0),
            catalog=str(data.get("catalog") or ""),
            source=str(data["source"]),
            message=str(data.get("message") or ""),
            user_id=None if user_id is None else str(user_id),
            **lists,
        )

    @property
    def empty(self) -> bool:
        """Nothing a trainer could use (no words, no films): not worth a line."""
        return not (self.message or any(getattr(self, key) for key in LISTS))


@dataclass
class ReadResult:
    """The entries read, and the lines skipped (line number, reason) with their count."""

    entries: list[LogEntry] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)


class FeedbackLog:
    """The append-only JSONL interaction log of one home.

    Args:
        path: The log file (``home/feedback/log.jsonl``: :meth:`in_home`).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @classmethod
    def in_home(cls, home: Path) -> FeedbackLog:
        """The log of the home folder ``home``."""
        return cls(Path(home) / LOG_RELATIVE)

    # -- writing -------------------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[int]:
        """An ``O_APPEND`` descriptor on the log, held under an exclusive ``flock``."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                current = os.stat(self.path).st_ino
            except FileNotFoundError:
                current = -1
            if current == os.fstat(fd).st_ino:
                break
            # A rewrite (forget/clear) renamed a new file into place while we waited for the
            # lock: this descriptor points at the old, unlinked file. Open the new one.
            os.close(fd)
        try:
            yield fd
        finally:
            os.close(fd)  # closing releases the flock

    def append(self, entries: Iterable[LogEntry]) -> int:
        """Append entries durably (fsync before returning); the number written.

        A torn last line left by a killed writer is ended first, so the new entries start on a
        line of their own (the fragment stays behind as one unreadable line, skipped on read).
        """
        lines = [e.to_json() for e in entries if not e.empty]
        if not lines:
            return 0
        payload = ("\n".join(lines) + "\n").encode("utf-8")
        with self._locked() as fd:
            size = os.fstat(fd).st_size
            if size:
                with open(self.path, "rb") as reader:
                    reader.seek(size - 1)
                    if reader.read(1) != b"\n":
                        payload = b"\n" + payload
            written = 0
            while written < len(payload):  # one write in practice; a short write continues
                written += os.write(fd, payload[written:])
            os.fsync(fd)
        return len(lines)

    # -- reading -------------------------------------------------------------------------------

    def read(self, *, warn: bool = True) -> ReadResult:
        """Every readable entry, in order; unreadable lines are skipped (a warning each).

        A torn line (a writer killed mid-append) or a damaged one costs that line only.
        """
        result = ReadResult()
        if not self.path.exists():
            return result
        with open(self.path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                try:
                    result.entries.append(LogEntry.from_json(raw.decode("utf-8")))
                except (ValueError, UnicodeDecodeError) as exc:
                    reason = (
                        "torn (no line end: a write was cut off)"
                        if not raw.endswith(b"\n")
                        else str(exc)
                    )
                    result.skipped.append((number, reason))
                    if warn:
                        logger.warning("%s:%d skipped: %s", self.path, number, reason)
        return result

    def entries(self) -> list[LogEntry]:
        """Every readable entry, in order (see :meth:`read`)."""
        return self.read().entries

    def threads(self) -> list[str]:
        """The thread ids the log holds, in order of first entry."""
        return list(dict.fromkeys(e.thread_id for e in self.entries()))

    # -- forgetting, export, clear -------------------------------------------------------------

    def forget(self, thread_id: str) -> int:
        """Rewrite the log without ``thread_id``'s entries (atomically); how many were removed.

        Unreadable lines are dropped with them: they cannot be attributed to a thread, so a
        forgotten thread's torn line must not survive the rewrite.
        """
        with self._locked():
            result = self.read(warn=False)
            kept = [e for e in result.entries if e.thread_id != thread_id]
            removed = len(result.entries) - len(kept)
            if removed or result.skipped:
                self._replace(kept)
        return removed

    def clear(self) -> int:
        """Empty the log (atomically); how many entries it held."""
        with self._locked():
            count = len(self.read(warn=False).entries)
            self._replace([])
        return count

    def export(self, out: Path) -> int:
        """Write every readable entry to ``out`` as JSONL (atomically); how many.

        Raises:
            DataError: ``out`` cannot be written (the message names it).
        """
        entries = self.entries()
        try:
            _write_atomic(Path(out), entries)
        except OSError as exc:
            raise DataError(f"cannot write {out}: {exc.strerror or exc}") from None
        return len(entries)

    def _replace(self, entries: Sequence[LogEntry]) -> None:
        """Swap in a log holding ``entries`` (caller holds the lock)."""
        _write_atomic(self.path, entries)


def _write_atomic(path: Path, entries: Sequence[LogEntry]) -> None:
    """Write ``entries`` to a temporary file beside ``path``, fsync it, rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            for entry in entries:
                handle.write((entry.to_json() + "\n").encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


# -- turning the log into training evidence ----------------------------------------------------


@dataclass
class ThreadEvidence:
    """What the log says about one thread, as a user for training.

    The same shape as a dialogue of a corpus (:class:`recagents.data.dialogues.Dialogue`):
    ``seeker_text`` is the person's messages, one per line; ``films`` maps each item id, in
    order of first mention, to what is known of it. A later opinion replaces an earlier one
    (a 👍 after "I didn't like X" means liked).
    """

    thread_id: str
    catalog: str
    user_id: str | None = None
    messages: list[str] = field(default_factory=list)
    liked: dict[str, bool] = field(default_factory=dict)  # item -> True liked / False disliked
    seen: set[str] = field(default_factory=set)
    suggested: list[str] = field(default_factory=list)
    accepted: set[str] = field(default_factory=set)
    first: dict[str, tuple[str, int]] = field(default_factory=dict)  # item -> (by, message)

    @property
    def seeker_text(self) -> str:
        """The person's messages, one per line."""
        return "\n".join(m for m in self.messages if m.strip())

    @property
    def liked_items(self) -> list[str]:
        """Items whose last word was liked, in order of first mention."""
        return [i for i in self.first if self.liked.get(i) is True]

    @property
    def disliked_items(self) -> list[str]:
        """Items whose last word was disliked, in order of first mention."""
        return [i for i in self.first if self.liked.get(i) is False]

    @property
    def accepted_items(self) -> list[str]:
        """Suggestions the person took (liked after being shown), in order of first mention."""
        return [i for i in self.first if i in self.accepted and self.liked.get(i) is True]

    def to_dialogue(self) -> Any:
        """This thread as a :class:`recagents.data.dialogues.Dialogue` (when that module exists).

        Raises:
            ImportError: The dialogue-corpus module is not installed in this version.
        """
        from recagents.data.dialogues import Dialogue, FilmMention  # type: ignore[import-not-found]

        films = tuple(
            FilmMention(
                item_id=item,
                by=by,
                message=message,
                suggested=item in set(self.suggested),
                liked=self.liked.get(item),
                seen=True if item in self.seen else None,
            )
            for item, (by, message) in self.first.items()
        )
        return Dialogue(dialogue_id=self.thread_id, seeker_text=self.seeker_text, films=films)


def thread_evidence(
    entries: Iterable[LogEntry], catalog: str | None = None
) -> list[ThreadEvidence]:
    """Fold log entries into one :class:`ThreadEvidence` per thread, in order of first entry.

    Args:
        entries: Log entries in log order.
        catalog: Keep only entries of this dataset (item ids of another catalog mean nothing
            here); ``None`` keeps all.
    """
    threads: dict[str, ThreadEvidence] = {}
    for entry in entries:
        if catalog is not None and entry.catalog != catalog:
            continue
        ev = threads.setdefault(entry.thread_id, ThreadEvidence(entry.thread_id, entry.catalog))
        if entry.user_id:
            ev.user_id = entry.user_id
        index = len(ev.messages)
        if entry.message:
            ev.messages.append(entry.message)

        def mention(item: str, by: str, ev: ThreadEvidence = ev, index: int = index) -> None:
            ev.first.setdefault(item, (by, index))

        for item in entry.retracted:  # taken back first: the same turn's words replace it
            ev.liked.pop(item, None)
            ev.accepted.discard(item)
        for item in entry.liked:
            mention(item, "seeker")
            ev.liked[item] = True
        for item in entry.disliked:
            mention(item, "seeker")
            ev.liked[item] = False
        for item in entry.seen:
            mention(item, "seeker")
            ev.seen.add(item)
        for item in entry.shown:  # the reply comes after the message
            mention(item, "recommender")
            if item not in ev.suggested:
                ev.suggested.append(item)
        ev.accepted.update(entry.accepted)
    return list(threads.values())


def read_log(home: Path) -> ReadResult:
    """The interaction log of ``home`` (entries and skipped lines)."""
    return FeedbackLog.in_home(home).read()


def now() -> float:
    """The time stamp entries carry (seconds since the epoch)."""
    return time.time()


# -- the log as a dialogue corpus (what a feedback round trains on) ---------------------------

#: Name prefix of the corpora a feedback round snapshots the log into (``home/dialogues/``).
FEEDBACK_PREFIX = "feedback-"


def feedback_corpus(entries: Iterable[LogEntry], catalog: str, name: str) -> Any:
    """The log's threads on ``catalog`` as a :class:`~recagents.data.dialogues.DialogueCorpus`.

    Each thread that named or 👍/👎'd at least one film is one dialogue (``dialogue_id`` = the
    thread id), so it becomes a user of the union the rounds train on
    (:func:`recagents.data.union.dialogue_union`): its interactions are the films it mentioned
    and did not turn down, its accepted suggestions are the ranking agent's hold-out, its words
    are its text. Threads of another catalog are left out (their ids mean nothing here).
    """
    from recagents.data.dialogues import DialogueCorpus

    threads = [t for t in thread_evidence(entries, catalog) if t.first]
    dialogues = [t.to_dialogue() for t in threads]
    info = {
        "source": "interaction log",
        "dialogues_read": len(threads),
        "dialogues_kept": len(dialogues),
        "mentions": sum(len(t.first) for t in threads),
        "mentions_mapped": sum(len(t.first) for t in threads),
        "liked": sum(len(t.liked_items) for t in threads),
        "accepted": sum(len(t.accepted_items) for t in threads),
    }
    return DialogueCorpus(name, catalog, dialogues, info)


def snapshot_feedback(home: Path, catalog: str) -> str | None:
    """Save the log's threads on ``catalog`` as a new corpus ``feedback-<time>-<random>``.

    A run trained with it records the name, so the served run reloads exactly the users it was
    trained with, however the log grows afterwards. Returns its name, or ``None`` when no
    thread has a film yet.
    """
    from recagents.data.dialogues import save_dialogues

    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    name = f"{FEEDBACK_PREFIX}{stamp}-{secrets.token_hex(3)}"  # two rounds a second differ
    corpus = feedback_corpus(FeedbackLog.in_home(home).entries(), catalog, name)
    if not corpus.dialogues:
        return None
    save_dialogues(corpus, home)
    return name
