"""Dialogue corpora as training data: conversations mapped onto a catalog, one user per dialogue.

``recagents ingest --dialogues FILE --name N [--catalog D]`` lands here. A conversational
recommender should learn from conversations, not only from ratings: each dialogue becomes a user
of the catalog whose films are those it named (mapped through the chat's title matcher with a
year guard) with what the seeker thought of them, and whose words are the seeker's messages. The
trainer folds these users into the collaborative rounds (``recagents train --with-dialogues N``).

The first format read is ReDial's JSON lines (Li et al., NeurIPS 2018, CC BY 4.0). Fields read,
so that another corpus can be mapped onto them:

- ``conversationId`` (string or number, unique in the file): the dialogue's id;
- ``messages``: a list of ``{"text": str, "senderWorkerId": id}`` in order;
- ``initiatorWorkerId`` / ``respondentWorkerId``: who seeks and who recommends;
- ``movieMentions``: ``{"<movie id>": "Title (Year)"}``; a message names a film as ``@<movie id>``;
- ``initiatorQuestions`` / ``respondentQuestions`` (optional): per movie id
  ``{"suggested": 0|1, "seen": 0|1|2, "liked": 0|1|2}`` (2: not said). The seeker's own form is
  preferred for ``liked``/``seen``, the recommender's for ``suggested``; each falls back to the
  other. These answers are given after the dialogue: fine as training labels, never an input when
  a dialogue is scored.

A title maps to a catalog film when the matcher finds it and the years differ by at most
:data:`YEAR_TOLERANCE` (without the guard a fuzzy matcher sends "Sing (2016)" to "The Sting
(1973)"); unmapped titles are counted and the most frequent listed in the corpus info.

Problems are reported like CSV ingest's (:mod:`recagents.data.ingest`): a file that cannot be used
raises one :class:`~recagents.errors.DataError`; bad lines are collected as
:class:`~recagents.data.ingest.RowProblem` (``file:line: reason``) and abort the load unless
``skip_bad_rows`` is set, in which case they are dropped and listed.

A corpus is saved under ``home/dialogues/<name>/`` (``dialogues.jsonl`` + ``meta.json``), written
to a hidden staging folder and swapped in, so a crash never leaves half a corpus.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recagents.config import default_home
from recagents.data.datasets import Dataset
from recagents.data.ingest import (
    MAX_SHOWN,
    BadRowsError,
    IngestReport,
    RowProblem,
    replace_folder,
    saved_names,
    validate_name,
)
from recagents.errors import DataError

logger = logging.getLogger(__name__)

#: Version of the on-disk layout written by :func:`save_dialogues`.
FORMAT_VERSION = 1
#: Largest gap between a corpus title's year and the catalog's for a match to count.
YEAR_TOLERANCE = 1
#: How many unmapped titles the corpus info lists.
UNMAPPED_SHOWN = 20

_MENTION = re.compile(r"@(\d+)")
_YEAR = re.compile(r"\(\s*(\d{4})\s*\)\s*$")


@dataclass(frozen=True)
class FilmMention:
    """One catalog film a dialogue named, and what the seeker thought of it.

    Attributes:
        item_id: External item id in the catalog the corpus was mapped to.
        by: ``"seeker"`` or ``"recommender"``: who named it first.
        message: 0-based index of the message that first named it.
        suggested: The recommender proposed it.
        liked: The seeker liked it (True), disliked it (False) or did not say (None).
        seen: The seeker had seen it (True), had not (False) or did not say (None).
    """

    item_id: str
    by: str
    message: int
    suggested: bool
    liked: bool | None
    seen: bool | None


@dataclass(frozen=True)
class Dialogue:
    """One conversation as a user of the catalog.

    Attributes:
        dialogue_id: Unique within the corpus.
        seeker_text: The seeker's messages, one per line, film mentions spelled out as catalog
            titles ("Heat (1995)"; a film the catalog lacks as its title without the year).
        films: Films mapped to the catalog, in order of first mention.
    """

    dialogue_id: str
    seeker_text: str
    films: tuple[FilmMention, ...]

    @property
    def mentioned(self) -> tuple[str, ...]:
        """Every mapped film, in order of first mention."""
        return tuple(f.item_id for f in self.films)

    @property
    def liked(self) -> tuple[str, ...]:
        """Films the seeker liked, whoever named them."""
        return tuple(f.item_id for f in self.films if f.liked is True)

    @property
    def disliked(self) -> tuple[str, ...]:
        """Films the seeker disliked."""
        return tuple(f.item_id for f in self.films if f.liked is False)

    @property
    def accepted(self) -> tuple[str, ...]:
        """Suggestions the seeker took (suggested and liked)."""
        return tuple(f.item_id for f in self.films if f.suggested and f.liked is True)

    @property
    def rejected(self) -> tuple[str, ...]:
        """Suggestions the seeker turned down (suggested and disliked)."""
        return tuple(f.item_id for f in self.films if f.suggested and f.liked is False)


@dataclass
class DialogueCorpus:
    """Dialogues mapped onto one catalog.

    Attributes:
        name: The name given at ingest.
        catalog: Name of the dataset the item ids belong to.
        dialogues: The dialogues kept (each names at least one catalog film).
        info: Counts and provenance: ``dialogues_read``, ``dialogues_kept``, ``mentions``,
            ``mentions_mapped``, ``unmapped`` (most frequent titles with counts), ``problems``,
            ``source``, ``created``.
    """

    name: str
    catalog: str
    dialogues: list[Dialogue]
    info: dict[str, Any] = field(default_factory=dict)

    def user_id(self, dialogue: Dialogue) -> str:
        """The id a dialogue has as a user of a union dataset (never clashes with a catalog's)."""
        return f"dialogue:{self.name}:{dialogue.dialogue_id}"

    def summary(self) -> str:
        """One line for logs and the CLI."""
        info = self.info
        mentions = int(info.get("mentions", 0))
        mapped = int(info.get("mentions_mapped", 0))
        share = mapped / mentions if mentions else 0.0
        return (
            f"dialogues {self.name!r} on {self.catalog}: {len(self.dialogues)} of "
            f"{info.get('dialogues_read', len(self.dialogues))} dialogues kept, "
            f"{mapped} of {mentions} film mentions mapped ({share:.1%})"
        )


# --------------------------------------------------------------------------------------------
# Reading ReDial


def _flag(value: Any) -> bool | None:
    """ReDial's 0/1/2 answers: 1 -> True, 0 -> False, anything else (2: not said) -> None."""
    if value in (1, "1", True):
        return True
    if value in (0, "0", False):
        return False
    return None


def _answers(dialogue: dict[str, Any], movie: str, key: str, order: tuple[str, str]) -> Any:
    for form in order:
        answers = dialogue.get(form)
        if isinstance(answers, dict) and isinstance(answers.get(movie), dict):
            value = answers[movie].get(key)
            if _flag(value) is not None:
                return value
    return None


class _TitleMap:
    """Corpus ``Title (Year)`` -> catalog item id, year-guarded, cached per title."""

    def __init__(self, dataset: Dataset, match: Callable[[str], str | None]) -> None:
        self.dataset = dataset
        self.match = match
        self._cache: dict[str, str | None] = {}

    def __call__(self, title: str) -> str | None:
        title = title.strip()
        if not title:
            return None
        if title not in self._cache:
            self._cache[title] = self._map(title)
        return self._cache[title]

    def _map(self, title: str) -> str | None:
        found = self.match(title)
        if found is None or found not in self.dataset.item_map:
            return None
        year = _YEAR.search(title)
        if year is None:
            return found
        catalog_year = self.dataset.items["year"].iloc[self.dataset.item_map.index(found)]
        try:
            gap = abs(int(year.group(1)) - int(catalog_year))
        except (TypeError, ValueError):  # the catalog has no year for it: no guard possible
            return None
        return found if gap <= YEAR_TOLERANCE else None


def _lines(path: Path, display: str) -> Iterator[tuple[int, str]]:
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise DataError(f"{display}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{display} is a folder; give the dialogue file (JSON lines)") from None
    with handle:
        for number, raw in enumerate(handle, start=1):
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"{display}:{number}: not UTF-8 text (byte {exc.start}); save the file as "
                    "UTF-8 and ingest it again"
                ) from None


def _problem(record: Any) -> str | None:
    """Why a parsed line is not a usable ReDial dialogue, or None."""
    if not isinstance(record, dict):
        return f"a dialogue must be a JSON object, got {type(record).__name__}"
    if record.get("conversationId") in (None, ""):
        return "no conversationId"
    messages = record.get("messages")
    if not isinstance(messages, list):
        return "no messages list"
    for n, message in enumerate(messages, start=1):
        if not isinstance(message, dict) or not isinstance(message.get("text"), str):
            return f"message {n} has no text"
        if message.get("senderWorkerId") is None:
            return f"message {n} has no senderWorkerId"
    mentions = record.get("movieMentions", {})
    if mentions is not None and not isinstance(mentions, dict):
        return "movieMentions must be an object of movie id -> title"
    if record.get("initiatorWorkerId") is None or record.get("respondentWorkerId") is None:
        return "no initiatorWorkerId/respondentWorkerId (who seeks, who recommends)"
    return None


def read_redial(
    path: Path,
    dataset: Dataset,
    match: Callable[[str], str | None],
    *,
    name: str,
    skip_bad_rows: bool = False,
) -> DialogueCorpus:
    """Read a ReDial JSON-lines file onto ``dataset``'s catalog.

    Args:
        path: The dialogue file.
        dataset: The catalog the films are mapped to.
        match: ``"Title (Year)"`` -> catalog item id or None (the chat's title matcher); the year
            guard is applied here.
        name: The corpus name (also part of each dialogue's user id).
        skip_bad_rows: Drop bad lines (listed in ``info["problems"]``) instead of failing.

    Raises:
        DataError: The file cannot be used: missing, not UTF-8, empty, or no dialogue names a
            film of the catalog.
        BadRowsError: Some lines are bad and ``skip_bad_rows`` is not set.
    """
    validate_name(name)
    display = path.name
    titles = _TitleMap(dataset, match)
    problems: list[RowProblem] = []
    dialogues: list[Dialogue] = []
    seen_ids: dict[str, int] = {}
    unmapped: Counter[str] = Counter()
    read = mentions = mapped = 0
    for number, line in _lines(path, display):
        if not line.strip():
            continue
        read += 1
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(RowProblem(display, number, f"not JSON ({exc.msg})"))
            continue
        reason = _problem(record)
        if reason is None:
            dialogue_id = str(record["conversationId"])
            if dialogue_id in seen_ids:
                reason = (
                    f"conversationId {dialogue_id} repeats line {seen_ids[dialogue_id]}; "
                    "ids must be unique"
                )
            else:
                seen_ids[dialogue_id] = number
        if reason is not None:
            problems.append(RowProblem(display, number, reason))
            continue
        dialogue, n_mentions, n_mapped, missing = _dialogue(record, dataset, titles)
        mentions += n_mentions
        mapped += n_mapped
        unmapped.update(missing)
        if dialogue.films:
            dialogues.append(dialogue)
    if read == 0:
        raise DataError(f"{display} holds no dialogue (empty file)")
    if problems and not skip_bad_rows:
        shown = [str(p) for p in problems[:MAX_SHOWN]]
        more = len(problems) - len(shown)
        raise BadRowsError(
            f"{len(problems)} bad line(s) in {display}:\n  "
            + "\n  ".join(shown)
            + (f"\n  ... and {more} more" if more else "")
            + "\nFix them, or pass --skip-bad-rows to drop them (they are listed).",
            problems,
            IngestReport(problems=problems, files={"dialogues": str(path)}),
        )
    if not dialogues:
        raise DataError(
            f"none of the {read - len(problems)} dialogues in {display} names a film of catalog "
            f"{dataset.name!r} ({mentions} mentions, none matched): is --catalog the catalog "
            "these dialogues talk about?"
        )
    info: dict[str, Any] = {
        "dialogues_read": read,
        "dialogues_kept": len(dialogues),
        "dialogues_without_catalog_film": read - len(problems) - len(dialogues),
        "mentions": mentions,
        "mentions_mapped": mapped,
        "unmapped": [[t, c] for t, c in unmapped.most_common(UNMAPPED_SHOWN)],
        "problems": [asdict(p) for p in problems],
        "source": str(path),
        "source_format": "redial",
    }
    corpus = DialogueCorpus(name, dataset.name, dialogues, info)
    logger.info("read %s", corpus.summary())
    return corpus


def _dialogue(
    record: dict[str, Any], dataset: Dataset, titles: _TitleMap
) -> tuple[Dialogue, int, int, list[str]]:
    """One ReDial record -> a :class:`Dialogue`, its mention counts and unmapped titles."""
    movies = record.get("movieMentions") or {}
    seeker = record["initiatorWorkerId"]
    recommender = record["respondentWorkerId"]
    films: dict[str, FilmMention] = {}
    lines: list[str] = []
    counted: set[str] = set()
    mentions = mapped = 0
    missing: list[str] = []
    for index, message in enumerate(record["messages"]):
        text = message["text"]
        sender = message["senderWorkerId"]
        by = "seeker" if sender == seeker else "recommender" if sender == recommender else None
        for movie in dict.fromkeys(_MENTION.findall(text)):
            title = str(movies.get(movie) or "")
            if movie in counted:
                continue
            counted.add(movie)
            mentions += 1
            item = titles(title)
            if item is None:
                missing.append(title.strip() or f"@{movie} (no title)")
                continue
            mapped += 1
            if item in films or by is None:
                continue
            films[item] = FilmMention(
                item_id=item,
                by=by,
                message=index,
                suggested=_flag(
                    _answers(
                        record, movie, "suggested", ("respondentQuestions", "initiatorQuestions")
                    )
                )
                is True,
                liked=_flag(
                    _answers(record, movie, "liked", ("initiatorQuestions", "respondentQuestions"))
                ),
                seen=_flag(
                    _answers(record, movie, "seen", ("initiatorQuestions", "respondentQuestions"))
                ),
            )
        if by == "seeker":
            lines.append(_spell_out(text, movies, dataset, titles))
    dialogue = Dialogue(str(record["conversationId"]), "\n".join(lines), tuple(films.values()))
    return dialogue, mentions, mapped, missing


def _spell_out(text: str, movies: dict[str, Any], dataset: Dataset, titles: _TitleMap) -> str:
    """``@id`` -> the catalog's "Title (Year)", or the corpus title without its year."""

    def replace(found: re.Match[str]) -> str:
        raw = str(movies.get(found.group(1)) or "")
        item = titles(raw)
        if item is not None:
            return dataset.item_title(dataset.item_map.index(item))
        return _YEAR.sub("", raw).strip() or "a movie"

    return _MENTION.sub(replace, text).strip()


# --------------------------------------------------------------------------------------------
# Persistence


def dialogues_dir(home: Path | None = None) -> Path:
    """Folder holding ingested dialogue corpora (``home/dialogues``)."""
    return Path(home if home is not None else default_home()) / "dialogues"


def dialogue_names(home: Path | None = None) -> list[str]:
    """Names of the corpora saved under ``home/dialogues``, sorted."""
    return saved_names(dialogues_dir(home))


def save_dialogues(corpus: DialogueCorpus, home: Path) -> Path:
    """Write ``corpus`` under ``home/dialogues/<name>/`` (staged, then swapped in).

    A corpus of the same name is replaced; the work folders of an ingest that died are cleaned
    first.

    Raises:
        ConfigError: A bad name.
        DataError: The target exists but was not written by ``recagents ingest``.
    """
    validate_name(corpus.name)

    def write(staging: Path) -> None:
        with (staging / "dialogues.jsonl").open("w", encoding="utf-8") as handle:
            for dialogue in corpus.dialogues:
                record = {
                    "dialogue_id": dialogue.dialogue_id,
                    "seeker_text": dialogue.seeker_text,
                    "films": [asdict(f) for f in dialogue.films],
                }
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        meta = {
            "format": FORMAT_VERSION,
            "name": corpus.name,
            "catalog": corpus.catalog,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            **corpus.info,
        }
        (staging / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")

    target = replace_folder(dialogues_dir(home), corpus.name, write)
    logger.info("saved %s to %s", corpus.summary(), target)
    return target


def load_dialogues(name: str, home: Path | None = None) -> DialogueCorpus:
    """Load a corpus written by :func:`save_dialogues`.

    Raises:
        DataError: Unknown name, or a damaged or newer-format folder (the message names the file
            and the fix).
    """
    folder = dialogues_dir(home) / name
    if not folder.is_dir() or not (folder / "meta.json").exists():
        names = ", ".join(dialogue_names(home)) or "none"
        raise DataError(
            f"unknown dialogue corpus {name!r}: ingest it with `recagents ingest --dialogues FILE "
            f"--name {name}` (found: {names})"
        )
    meta_path = folder / "meta.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{meta_path} is damaged ({exc}): ingest the dialogues again") from None
    version = meta.get("format", FORMAT_VERSION)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise DataError(
            f"{folder} was written by a newer recagents (format {version}); upgrade recagents"
        )
    path = folder / "dialogues.jsonl"
    dialogues: list[Dialogue] = []
    number = 0
    try:
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                number += 1
                if not line.strip():
                    continue
                record = json.loads(line)
                films = tuple(FilmMention(**film) for film in record["films"])
                dialogues.append(Dialogue(record["dialogue_id"], record["seeker_text"], films))
    except FileNotFoundError:
        raise DataError(f"{folder} lacks dialogues.jsonl: ingest the dialogues again") from None
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise DataError(
            f"{path}:{number} is damaged ({type(exc).__name__}: {exc}): ingest the dialogues again"
        ) from None
    info = {k: v for k, v in meta.items() if k not in {"format", "name", "catalog"}}
    return DialogueCorpus(str(meta.get("name") or name), str(meta["catalog"]), dialogues, info)
