"""Load any catalog from CSV files into a :class:`~recagents.data.Dataset`, strictly.

``recagents ingest --interactions F --items F [--users F]`` lands here. The files are read with the
:mod:`csv` module rather than pandas so that every problem can name the exact line it comes from
(the header is line 1; a record with a quoted newline is reported at the line where it starts).

Two kinds of failure are kept apart on purpose:

- **File-level**: the file cannot be used at all (missing, empty, not UTF-8, wrong delimiter, a
  required column missing, repeated ids, a rating scale other than the one asked for). These raise
  one :class:`~recagents.errors.DataError` whose message names the file and says what to do.
- **Row-level**: single records are wrong (field count, empty ids, a rating that is not a number or
  out of range, a bad timestamp, an unknown item, an empty title). These are collected as
  :class:`RowProblem` objects. By default any of them aborts the load with :class:`BadRowsError`
  listing them; with ``skip_bad_rows=True`` the rows are dropped *and listed* in the
  :class:`IngestReport`, so nothing ever disappears without a trace.

An ingested catalog is saved under ``home/datasets/<name>/`` as tab-separated files keyed by the
external ids, plus ``meta.json``; :func:`recagents.data.load_dataset` finds it by name.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from recagents.config import default_home
from recagents.data import DATASETS, Dataset, build_dataset
from recagents.data.titles import YEAR_SUFFIX
from recagents.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

#: Delimiters tried, in order of preference, when none is given.
DELIMITERS = (",", "\t", ";", "|")
#: How many problems an error message or :meth:`IngestReport.format` shows.
MAX_SHOWN = 20
#: Version of the on-disk layout written by :func:`save_ingested`.
FORMAT_VERSION = 1

INTERACTION_COLUMNS = ("user_id", "item_id")
ITEM_REQUIRED = ("item_id", "title")
USER_REQUIRED = ("user_id",)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_GENRE_SPLIT = re.compile(r"\s*[|;,]\s*")
_NO_GENRES = {"(no genres listed)", "unknown"}
#: Below this many out-of-range ratings (and under 10 %), they are typos, not another scale.
_SCALE_MIN_COUNT = 10
_SCALE_MIN_SHARE = 0.1


@dataclass
class RowProblem:
    """One record that could not be used, and why.

    Attributes:
        file: Name of the file the record is in.
        line: Line number where the record starts (the header is line 1).
        reason: What is wrong, in words a person can act on.
    """

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


@dataclass
class IngestReport:
    """What :func:`read_catalog` read, kept and dropped.

    Attributes:
        interactions_read: Data records read from the interactions file (blank lines excluded).
        interactions_kept: Interactions in the dataset.
        items_read: Data records read from the items file.
        items_kept: Items in the dataset.
        users_read: Data records read from the users file, or ``None`` without one.
        users_kept: Users file rows in the dataset (``None`` without a users file).
        problems: Every bad record; when the load succeeded these rows were dropped.
        duplicate_interactions: Kept interactions repeating an earlier (user, item) pair
            (re-watches, re-purchases).
        ratings_missing: Kept interactions with an empty rating (stored as NaN, i.e. implicit).
        blank_rows: Records whose every field was empty (spreadsheet padding), skipped.
        delimiters: Delimiter used for each file, by file name.
        files: Path of each input, by role (``interactions``, ``items``, ``users``).
    """

    interactions_read: int = 0
    interactions_kept: int = 0
    items_read: int = 0
    items_kept: int = 0
    users_read: int | None = None
    users_kept: int | None = None
    problems: list[RowProblem] = field(default_factory=list)
    duplicate_interactions: int = 0
    ratings_missing: int = 0
    blank_rows: int = 0
    delimiters: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)

    @property
    def dropped(self) -> int:
        """Number of records dropped (one per problem)."""
        return len(self.problems)

    def format(self, max_rows: int = MAX_SHOWN) -> str:
        """Human summary for the CLI: counts, then up to ``max_rows`` dropped rows."""
        lines = [
            f"interactions: {self.interactions_read} read, {self.interactions_kept} kept"
            + (
                f" ({self.duplicate_interactions} repeat an earlier user-item pair)"
                if self.duplicate_interactions
                else ""
            ),
            f"items: {self.items_read} read, {self.items_kept} kept",
        ]
        if self.users_read is not None:
            lines.append(f"users: {self.users_read} read, {self.users_kept} kept")
        if self.ratings_missing:
            lines.append(f"{self.ratings_missing} interactions have no rating (kept as implicit)")
        if self.blank_rows:
            lines.append(f"{self.blank_rows} blank rows skipped")
        if self.problems:
            lines.append(f"{len(self.problems)} bad rows dropped:")
            lines.extend(_problem_lines(self.problems, max_rows))
        else:
            lines.append("no bad rows")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form (for ``meta.json`` and the HTTP API)."""
        data = asdict(self)
        data["problems"] = [asdict(p) for p in self.problems]
        return data


class BadRowsError(DataError):
    """Some records are bad and ``skip_bad_rows`` was not set.

    Attributes:
        problems: Every bad record, not only those the message shows.
        report: Counts gathered before the load stopped.
    """

    def __init__(self, message: str, problems: list[RowProblem], report: IngestReport) -> None:
        super().__init__(message)
        self.problems = problems
        self.report = report


# --------------------------------------------------------------------------------------------
# Argument parsing helpers (shared with the CLI)


def parse_delimiter(text: str) -> str:
    """Turn a ``--delimiter`` value into one character.

    Shells make a literal tab awkward to type, so ``tab`` and a backslash-t are accepted too.

    Raises:
        ConfigError: Not a single character.
    """
    if text.lower() in {"tab", "\\t"}:
        return "\t"
    if len(text) != 1 or text in {'"', "\n", "\r"}:
        raise ConfigError(
            f"delimiter {text!r} must be one character such as ',', ';', '|' or 'tab'"
        )
    return text


def parse_rating_range(text: str) -> tuple[float, float]:
    """Parse ``--rating-range MIN,MAX`` (e.g. ``1,10``).

    Raises:
        ConfigError: Not two finite numbers with MIN <= MAX.
    """
    parts = [p.strip() for p in re.split(r"[,:]", text)]
    try:
        low, high = (float(p) for p in parts)
    except ValueError:
        raise ConfigError(f"rating range {text!r} must be MIN,MAX, e.g. 1,10") from None
    return _check_range((low, high))


def validate_name(name: str) -> str:
    """Check a dataset name for ``recagents ingest``.

    The name becomes a folder and a vector-collection prefix, so it is limited to letters, digits
    and ``- _ .``, and may not shadow a built-in dataset.

    Raises:
        ConfigError: Bad characters, too long, or a built-in name.
    """
    if name in DATASETS:
        raise ConfigError(f"dataset name {name!r} is built in; choose another name")
    if not _NAME.match(name):
        raise ConfigError(
            f"dataset name {name!r} must start with a letter or digit and hold only letters, "
            "digits, '-', '_' and '.' (at most 100 characters)"
        )
    return name


def _check_range(rating_range: tuple[float, float]) -> tuple[float, float]:
    low, high = (float(v) for v in rating_range)
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise ConfigError(f"rating range {low:g},{high:g} must be finite with MIN <= MAX")
    return low, high


def _show_delimiter(delimiter: str) -> str:
    return "tab" if delimiter == "\t" else repr(delimiter)


# --------------------------------------------------------------------------------------------
# Reading one delimited file


class _Lines:
    """Decoded lines of a file, counted, failing on the first byte that is not UTF-8.

    Decoding line by line keeps memory flat for large files and lets the error name the line;
    splitting on newlines is safe because that byte never occurs inside a UTF-8 sequence.
    """

    def __init__(self, path: Path, display: str) -> None:
        self.path = path
        self.display = display
        self.line = 0
        self.offset = 0
        self.exhausted = False

    def __iter__(self) -> Iterator[str]:
        with self.path.open("rb") as handle:
            for raw in handle:
                self.line += 1
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise self._not_utf8(raw, exc) from None
                if self.line == 1 and text.startswith("\ufeff"):
                    text = text[1:]  # UTF-8 BOM written by Excel's "CSV UTF-8"
                self.offset += len(raw)
                yield text
        self.exhausted = True

    def _not_utf8(self, raw: bytes, exc: UnicodeDecodeError) -> DataError:
        position = self.offset + exc.start
        bad = raw[exc.start]
        hint = ""
        if self.line == 1 and raw[:2] in {b"\xff\xfe", b"\xfe\xff"}:
            hint = " (it looks like UTF-16)"
        elif self.line == 1 and raw[:4] == b"PK\x03\x04":
            hint = " (it looks like a spreadsheet or zip file; export it as CSV)"
        elif self.line == 1 and raw[:2] == b"\x1f\x8b":
            hint = " (it looks gzip-compressed; decompress it first)"
        return DataError(
            f"{self.display} is not UTF-8{hint}: byte 0x{bad:02x} at byte offset {position} "
            f"(line {self.line}) cannot be decoded; save it as UTF-8"
        )


@dataclass
class _Table:
    """An opened file: normalised header, delimiter and a line-counted record stream."""

    display: str
    header: list[str]
    delimiter: str
    lines: _Lines
    reader: Iterator[list[str]]
    read: int = 0
    blank: int = 0

    def records(self, problems: list[RowProblem]) -> Iterator[tuple[int, dict[str, str]]]:
        """Yield ``(line, {column: stripped value})`` for records with the right field count.

        Records with another field count or broken quoting become problems here; all-blank
        records are counted in :attr:`blank` and skipped.
        """
        width = len(self.header)
        while True:
            start = self.lines.line + 1
            try:
                row = next(self.reader)
            except StopIteration:
                return
            except csv.Error as exc:
                if self.lines.exhausted:
                    raise DataError(
                        f"{self.display}: the quoted field opened on line {start} never closes "
                        f"(everything up to the end, line {self.lines.line}, was read into it); "
                        "add the closing double quote"
                    ) from None
                self.read += 1
                problems.append(RowProblem(self.display, start, f"broken quoting: {exc}"))
                continue
            values = [v.strip() for v in row]
            if not any(values):
                self.blank += bool(row)
                continue
            self.read += 1
            if len(values) != width:
                problems.append(
                    RowProblem(self.display, start, self._width_reason(len(values), start))
                )
                continue
            yield start, dict(zip(self.header, values, strict=True))

    def _width_reason(self, found: int, start: int) -> str:
        reason = f"expected {len(self.header)} fields, found {found}"
        if self.lines.line > start:
            reason += f" (the record runs over lines {start}-{self.lines.line}: a stray quote?)"
        elif found > len(self.header):
            reason += (
                f" (a value holding {_show_delimiter(self.delimiter)} must be in double quotes)"
            )
        return reason


def _normalise(column: str) -> str:
    return re.sub(r"\s+", "_", column.strip().lower())


def _split_header(text: str, delimiter: str) -> list[str]:
    try:
        row = next(csv.reader([text], delimiter=delimiter, skipinitialspace=True))
    except (csv.Error, StopIteration):
        return [text.strip()]
    return [_normalise(c) for c in row]


def _open_table(
    path: Path, required: tuple[str, ...], delimiter: str | None, display: str
) -> _Table:
    """Open ``path``, find its header and delimiter, and check the required columns."""
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path} is a folder; give the CSV file inside it")
    if path.stat().st_size == 0:
        raise DataError(f"{display} is empty (0 bytes); it needs a header and rows")
    lines = _Lines(path, display)
    stream = iter(lines)
    header_text = next((text for text in stream if text.strip()), None)
    if header_text is None:
        raise DataError(f"{display} is empty (only blank lines); it needs a header and rows")
    header_text = header_text.rstrip("\r\n")
    if "\r" in header_text:
        raise DataError(
            f"{display} ends its lines with a bare carriage return (old Mac style); save it with "
            "ordinary line endings (LF or CRLF)"
        )
    chosen, header = _choose_delimiter(header_text, required, delimiter, display)
    _check_header(header, display)
    reader = csv.reader(stream, delimiter=chosen, strict=True, skipinitialspace=True)
    return _Table(display, header, chosen, lines, reader)


def _choose_delimiter(
    header_text: str, required: tuple[str, ...], explicit: str | None, display: str
) -> tuple[str, list[str]]:
    """Pick the delimiter that splits the header into the required columns.

    Only the header is sniffed: data rows may legitimately hold any candidate inside quoted
    text, while column names rarely do.
    """
    parsed = {d: _split_header(header_text, d) for d in DELIMITERS}
    fits = [d for d in DELIMITERS if set(required) <= set(parsed[d])]
    if explicit is not None:
        columns = parsed.get(explicit) or _split_header(header_text, explicit)
        if set(required) <= set(columns):
            return explicit, columns
        better = [d for d in fits if d != explicit]
        if better:
            hint = (
                f"the file looks {_show_delimiter(better[0])}-separated; "
                f"pass --delimiter {_show_delimiter(better[0])}"
            )
            if len(columns) == 1:
                raise DataError(f"{display}: header has one column {header_text!r} — {hint}")
            raise DataError(
                f"{display}: split on {_show_delimiter(explicit)} the header lacks "
                f"{_missing(required, columns)} — {hint}"
            )
        raise _missing_error(display, required, columns, header_text)
    if fits:
        best = max(fits, key=lambda d: len(parsed[d]))  # ties go to the earlier candidate
        return best, parsed[best]
    widest = max(DELIMITERS, key=lambda d: len(parsed[d]))
    raise _missing_error(display, required, parsed[widest], header_text)


def _missing(required: tuple[str, ...], columns: list[str]) -> str:
    return ", ".join(c for c in required if c not in columns)


def _missing_error(
    display: str, required: tuple[str, ...], columns: list[str], header_text: str
) -> DataError:
    need = ", ".join(required)
    if len(columns) == 1:
        return DataError(
            f"{display}: header has one column {header_text!r}; expected the columns {need} "
            "separated by ',', tab, ';' or '|' (pass --delimiter if it is another character)"
        )
    return DataError(
        f"{display}: missing required column(s) {_missing(required, columns)}; required: {need}; "
        f"found: {', '.join(columns)} (names are matched ignoring case and surrounding spaces)"
    )


def _check_header(header: list[str], display: str) -> None:
    for position, name in enumerate(header, start=1):
        if not name:
            raise DataError(
                f"{display}: header column {position} has no name (a trailing delimiter?); "
                "name it or remove it"
            )
    repeated = [c for c in dict.fromkeys(header) if header.count(c) > 1]
    if repeated:
        raise DataError(
            f"{display}: header repeats column(s) {', '.join(repeated)}; "
            "column names must be unique (ignoring case)"
        )


def _finish(table: _Table) -> None:
    """Fail on a file that had a header but no data records."""
    if table.read == 0:
        raise DataError(f"{table.display} has a header but no rows")


def _check_unique(ids: dict[str, list[int]], kind: str, display: str) -> None:
    repeated = {key: lines for key, lines in ids.items() if len(lines) > 1}
    if not repeated:
        return
    shown = "; ".join(
        f"{key!r} (lines {', '.join(map(str, lines[:5]))})"
        for key, lines in list(repeated.items())[:5]
    )
    more = f" and {len(repeated) - 5} more" if len(repeated) > 5 else ""
    raise DataError(
        f"{display}: {len(repeated)} {kind} ids appear more than once: {shown}{more}; "
        f"each {kind} must have one row"
    )


# --------------------------------------------------------------------------------------------
# Field parsers


def _parse_number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _parse_whole(text: str) -> int | None:
    value = _parse_number(text)
    if value is None or value != int(value):
        return None
    return int(value)


def _parse_timestamp(text: str) -> int | None:
    """Seconds since the epoch from an integer, a number or an ISO 8601 date (UTC if naive)."""
    try:
        return int(text)
    except ValueError:
        pass
    value = _parse_number(text)
    if value is not None:
        return int(value)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def _whole_numbers(column: pd.Series) -> pd.Series:
    return pd.to_numeric(column.mask(column == "")).astype("Int64")


def _normalise_genres(text: str) -> str:
    if text.strip().lower() in _NO_GENRES:
        return ""
    return "|".join(g for g in _GENRE_SPLIT.split(text) if g)


# --------------------------------------------------------------------------------------------
# The three files


def _read_items(
    table: _Table, problems: list[RowProblem]
) -> tuple[pd.DataFrame, dict[str, int], int]:
    """Items frame of good rows, line of every bad row's id, and rows read."""
    has_year = "year" in table.header
    rows: list[dict[str, object]] = []
    ids: dict[str, list[int]] = {}
    bad_ids: dict[str, int] = {}
    for line, record in table.records(problems):
        item_id, title = record["item_id"], record["title"]
        if not item_id:
            problems.append(RowProblem(table.display, line, "empty item_id"))
            continue
        ids.setdefault(item_id, []).append(line)
        reason = _item_reason(record, has_year)
        if reason:
            problems.append(RowProblem(table.display, line, reason))
            bad_ids.setdefault(item_id, line)
            continue
        row: dict[str, object] = dict(record)
        match = YEAR_SUFFIX.search(title)
        year = _parse_whole(record["year"]) if has_year and record["year"] else None
        if match and (year is None or year == int(match.group(1))):
            # The display form adds "(year)" back, so keep it out of the title.
            row["title"] = title[: match.start()].strip() or title
            year = int(match.group(1))
        row["year"] = year
        if "genres" in row:
            row["genres"] = _normalise_genres(str(row["genres"]))
        rows.append(row)
    _finish(table)
    _check_unique(ids, "item", table.display)
    columns = list(dict.fromkeys([*table.header, "year"]))
    frame = pd.DataFrame(rows, columns=columns)
    return frame, bad_ids, table.read


def _item_reason(record: dict[str, str], has_year: bool) -> str:
    if not record["title"]:
        return "empty title"
    if has_year and record["year"] and _parse_whole(record["year"]) is None:
        return f"year {record['year']!r} is not a whole number"
    runtime = record.get("runtime", "")
    if runtime and _parse_number(runtime) is None:
        return f"runtime {runtime!r} is not a number"
    return ""


def _read_users(table: _Table, problems: list[RowProblem]) -> pd.DataFrame:
    rows: list[dict[str, object]] = []
    ids: dict[str, list[int]] = {}
    for line, record in table.records(problems):
        if not record["user_id"]:
            problems.append(RowProblem(table.display, line, "empty user_id"))
            continue
        ids.setdefault(record["user_id"], []).append(line)
        age = record.get("age", "")
        if age and _parse_whole(age) is None:
            # User texts say "a 34-year-old": a non-number would break them later.
            problems.append(RowProblem(table.display, line, f"age {age!r} is not a whole number"))
            continue
        rows.append(dict(record))
    _finish(table)
    _check_unique(ids, "user", table.display)
    frame = pd.DataFrame(rows, columns=table.header)
    if "age" in frame:
        frame["age"] = _whole_numbers(frame["age"])
    return frame


@dataclass
class _Interactions:
    user_ids: list[str] = field(default_factory=list)
    item_ids: list[str] = field(default_factory=list)
    ratings: list[float] = field(default_factory=list)
    timestamps: list[int] = field(default_factory=list)
    out_of_range: list[tuple[int, float, int]] = field(default_factory=list)  # line, value, row
    rated: list[float] = field(default_factory=list)
    known_items: int = 0
    named_items: int = 0
    missing_ratings: int = 0


def _read_interactions(
    table: _Table,
    problems: list[RowProblem],
    items: set[str],
    bad_items: dict[str, int],
    items_display: str,
    rating_range: tuple[float, float],
) -> _Interactions:
    has_rating = "rating" in table.header
    has_time = "timestamp" in table.header
    low, high = rating_range
    out = _Interactions()
    for line, record in table.records(problems):
        user_id, item_id = record["user_id"], record["item_id"]
        reason = ""
        rating = math.nan
        timestamp = 0
        if not user_id:
            reason = "empty user_id"
        elif not item_id:
            reason = "empty item_id"
        elif item_id in bad_items:
            reason = f"item_id {item_id!r} is on a bad row of {items_display} (line "
            reason += f"{bad_items[item_id]})"
        elif item_id not in items:
            reason = f"item_id {item_id!r} is not in {items_display}"
        out.named_items += bool(item_id)
        if item_id in items or item_id in bad_items:
            out.known_items += 1
        if not reason and has_rating and record["rating"]:
            value = _parse_number(record["rating"])
            if value is None:
                reason = f"rating {record['rating']!r} is not a number"
                if "," in record["rating"]:
                    reason += " (use '.' as the decimal point)"
            else:
                rating = value
                out.rated.append(value)
        if not reason and has_time and record["timestamp"]:
            parsed = _parse_timestamp(record["timestamp"])
            if parsed is None:
                reason = (
                    f"timestamp {record['timestamp']!r} is neither a number nor an ISO 8601 date"
                )
            else:
                timestamp = parsed
        if reason:
            problems.append(RowProblem(table.display, line, reason))
            continue
        if has_rating and not record["rating"]:
            out.missing_ratings += 1
        elif has_rating and not low <= rating <= high:
            out.out_of_range.append((line, rating, len(out.user_ids)))
        out.user_ids.append(user_id)
        out.item_ids.append(item_id)
        out.ratings.append(rating)
        out.timestamps.append(timestamp)
    _finish(table)
    return out


def _check_scale(
    found: _Interactions, rating_range: tuple[float, float], display: str
) -> list[RowProblem]:
    """Fail when the file uses another rating scale; otherwise turn outliers into problems.

    A 1-10 or 0-100 scale puts a large share of ratings out of range, while typos are rare, so
    the share decides between "wrong scale" (one file-level error) and "bad rows".
    """
    outside = found.out_of_range
    if not outside:
        return []
    low, high = rating_range
    rated = len(found.rated)
    if len(outside) == rated or (
        len(outside) >= _SCALE_MIN_COUNT and len(outside) >= _SCALE_MIN_SHARE * rated
    ):
        lo, hi = min(found.rated), max(found.rated)
        raise DataError(
            f"{display}: {len(outside)} of {rated} ratings lie outside {low:g}-{high:g} "
            f"(they span {lo:g}-{hi:g}); if the file uses another scale pass "
            f"--rating-range {lo:g},{hi:g}"
        )
    return [
        RowProblem(
            display,
            line,
            f"rating {value:g} is outside {low:g}-{high:g} (pass --rating-range MIN,MAX for "
            "another scale)",
        )
        for line, value, _ in outside
    ]


def _problem_lines(problems: list[RowProblem], limit: int) -> list[str]:
    lines = [f"  {p}" for p in problems[:limit]]
    if len(problems) > limit:
        lines.append(f"  ... and {len(problems) - limit} more")
    return lines


def read_catalog(
    interactions: Path,
    items: Path,
    users: Path | None = None,
    *,
    delimiter: str | None = None,
    rating_range: tuple[float, float] = (0.0, 5.0),
    skip_bad_rows: bool = False,
    name: str = "custom",
) -> tuple[Dataset, IngestReport]:
    """Read a catalog from CSV files into a dataset, validating every record.

    Args:
        interactions: Columns ``user_id``, ``item_id`` and optionally ``rating`` (empty means
            implicit) and ``timestamp`` (epoch seconds or ISO 8601; empty means unknown).
        items: Columns ``item_id``, ``title`` and optionally ``year``, ``genres`` (split on
            ``| ; ,``), ``runtime`` and any other text columns, all kept as item text. Without a
            ``year`` column a ``(1995)`` suffix of the title becomes the year.
        users: Optional ``user_id`` plus attribute columns (``age``, ``gender``, ...).
        delimiter: One character (``tab`` accepted) for all files; ``None`` picks, per file,
            the one of ``,`` tab ``;`` ``|`` that splits the header into the required columns.
        rating_range: Inclusive valid ratings.
        skip_bad_rows: Drop bad records (listed in the report) instead of failing.
        name: Dataset name.

    Returns:
        The dataset and a report of what was read, kept and dropped.

    Raises:
        DataError: A file cannot be used; the message names it and says what to do.
        BadRowsError: Some records are bad and ``skip_bad_rows`` is false.
        ConfigError: A bad ``delimiter``, ``rating_range`` or ``name``.
    """
    validate_name(name)
    rating_range = _check_range(rating_range)
    chosen = parse_delimiter(delimiter) if delimiter is not None else None
    interactions, items = Path(interactions), Path(items)
    report = IngestReport(files={"interactions": str(interactions), "items": str(items)})
    problems: list[RowProblem] = []

    item_table = _open_table(items, ITEM_REQUIRED, chosen, items.name)
    items_frame, bad_items, report.items_read = _read_items(item_table, problems)

    users_frame: pd.DataFrame | None = None
    tables = [item_table]
    if users is not None:
        users = Path(users)
        report.files["users"] = str(users)
        user_table = _open_table(users, USER_REQUIRED, chosen, users.name)
        users_frame = _read_users(user_table, problems)
        report.users_read, report.users_kept = user_table.read, len(users_frame)
        tables.append(user_table)

    inter_table = _open_table(interactions, INTERACTION_COLUMNS, chosen, interactions.name)
    tables.append(inter_table)
    item_ids = set(items_frame["item_id"])
    found = _read_interactions(inter_table, problems, item_ids, bad_items, items.name, rating_range)
    report.interactions_read = inter_table.read
    if found.named_items and not found.known_items:
        theirs = ", ".join(repr(i) for i in items_frame["item_id"][:3])
        raise DataError(
            f"{interactions.name}: none of its item ids appear in {items.name} "
            f"({items.name} has e.g. {theirs}): are both files from the same catalog?"
        )
    scale_problems = _check_scale(found, rating_range, interactions.name)
    problems.extend(scale_problems)
    rank = {t.display: n for n, t in enumerate(tables)}
    problems.sort(key=lambda p: (rank.get(p.file, len(rank)), p.line))  # file order, then line
    report.items_kept = len(items_frame)
    report.blank_rows = sum(t.blank for t in tables)
    report.delimiters = {t.display: t.delimiter for t in tables}
    report.problems = problems

    if problems and not skip_bad_rows:
        raise BadRowsError(
            f"{len(problems)} bad rows in the input:\n"
            + "\n".join(_problem_lines(problems, MAX_SHOWN))
            + "\nfix them or pass --skip-bad-rows to drop them (they will be listed)",
            problems,
            report,
        )

    keep = np.ones(len(found.user_ids), dtype=bool)
    for _, _, row in found.out_of_range:
        keep[row] = False
    frame = pd.DataFrame(
        {
            "user_id": found.user_ids,
            "item_id": found.item_ids,
            "rating": np.asarray(found.ratings, dtype=np.float64),
            "timestamp": np.asarray(found.timestamps, dtype=np.int64),
        }
    )[keep].reset_index(drop=True)
    if "rating" not in inter_table.header:
        frame = frame.drop(columns="rating")
    if frame.empty:
        raise DataError(
            f"{interactions.name}: none of its {inter_table.read} rows is usable "
            f"({len(problems)} bad rows; see the report)"
        )
    report.interactions_kept = len(frame)
    report.duplicate_interactions = int(frame.duplicated(["user_id", "item_id"]).sum())
    report.ratings_missing = found.missing_ratings
    if problems:
        logger.warning("dropped %d bad rows while reading %s", len(problems), name)

    dataset = build_dataset(
        name,
        frame,
        items_frame,
        users_frame,
        info={
            "source": "ingest",
            "files": dict(report.files),
            "delimiters": dict(report.delimiters),
            "rating_range": list(rating_range),
            "dropped_rows": len(problems),
        },
    )
    logger.info("ingested %s", dataset.summary())
    return dataset, report


# --------------------------------------------------------------------------------------------
# Persistence


def datasets_dir(home: Path | None = None) -> Path:
    """Folder holding ingested datasets (``home/datasets``)."""
    return Path(home if home is not None else default_home()) / "datasets"


def saved_names(root: Path) -> list[str]:
    """Names of the folders under ``root`` that an ingest finished (they hold ``meta.json``)."""
    if not root.is_dir():
        return []
    return sorted(
        p.name
        for p in root.iterdir()
        if p.is_dir() and not p.name.startswith(".") and (p / "meta.json").exists()
    )


def ingested_names(home: Path | None = None) -> list[str]:
    """Names of the datasets saved under ``home/datasets``, sorted."""
    return saved_names(datasets_dir(home))


def _write_tsv(frame: pd.DataFrame, path: Path) -> None:
    frame.to_csv(path, sep="\t", index=False, na_rep="", lineterminator="\n", encoding="utf-8")


#: Hidden folders :func:`save_ingested` works in: ``.<name>.staging-<pid>-<random>`` (the new
#: files) and ``.<name>.old-<pid>-<random>`` (the dataset being replaced); the pid says whose.
_WORK_FOLDER = re.compile(r"^\.(?P<name>.+)\.(?P<kind>staging|old)-(?P<pid>\d+)-[^/]+$")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def clean_stale_staging(root: Path) -> list[Path]:
    """Remove the work folders of ingests that died mid-write (``kill -9``, power cut).

    Only folders whose owner process is gone are touched, so an ingest running beside this one
    keeps its own. A dataset that was moved aside to be replaced, when its replacement never
    arrived, is put back rather than deleted: it is then the only copy.

    Returns:
        The folders removed (or emptied back into place).
    """
    cleaned: list[Path] = []
    for folder in sorted(root.glob(".*")):
        match = _WORK_FOLDER.match(folder.name)
        if match is None or not folder.is_dir() or _pid_alive(int(match["pid"])):
            continue
        name = match["name"]
        kept = folder / name
        if match["kind"] == "old" and kept.is_dir() and not (root / name).exists():
            kept.rename(root / name)
            logger.warning("put back dataset %r, left aside by an ingest that died", name)
        shutil.rmtree(folder, ignore_errors=True)
        logger.warning("removed %s, left by an ingest (pid %s) that died", folder, match["pid"])
        cleaned.append(folder)
    return cleaned


def replace_folder(root: Path, name: str, write: Callable[[Path], None]) -> Path:
    """Fill ``root/name`` through ``write`` so that a crash never leaves half a folder.

    ``write`` fills a hidden staging folder, which is then swapped in; a folder of the same name
    is replaced, and one not made by an ingest (no ``meta.json``) is refused. The work folders of
    an ingest that died are cleaned first (:func:`clean_stale_staging`). Datasets and dialogue
    corpora are stored this way.

    Raises:
        DataError: The target exists but was not written by ``recagents ingest``.
    """
    target = root / name
    if target.exists() and not (target / "meta.json").exists():
        raise DataError(
            f"{target} exists and was not made by recagents ingest; choose another name or "
            "remove it"
        )
    root.mkdir(parents=True, exist_ok=True)
    clean_stale_staging(root)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.staging-{os.getpid()}-", dir=root))
    try:
        write(staging)
        if target.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{name}.old-{os.getpid()}-", dir=root))
            target.rename(retired / name)
            staging.rename(target)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def save_ingested(dataset: Dataset, report: IngestReport, home: Path, name: str) -> Path:
    """Write a dataset under ``home/datasets/<name>/`` so it can be loaded by name later.

    Files are tab-separated with external ids (readable, diffable, no pickle). They are written
    to a temporary folder first and swapped in, so a crash never leaves half a dataset behind;
    an earlier dataset of the same name is replaced. The work folders of an ingest that died
    are cleaned first (:func:`clean_stale_staging`).

    Returns:
        The dataset folder.

    Raises:
        ConfigError: A bad name.
        DataError: The target exists but was not written by ``recagents ingest``.
    """
    validate_name(name)

    def write(staging: Path) -> None:
        user_ids = np.asarray(dataset.user_map.ids, dtype=object)
        item_ids = np.asarray(dataset.item_map.ids, dtype=object)
        inter = dataset.interactions
        _write_tsv(
            pd.DataFrame(
                {
                    "user_id": user_ids[inter["user"].to_numpy()],
                    "item_id": item_ids[inter["item"].to_numpy()],
                    "rating": inter["rating"].to_numpy(),
                    "timestamp": inter["timestamp"].to_numpy(),
                }
            ),
            staging / "interactions.tsv",
        )
        _write_tsv(dataset.items, staging / "items.tsv")
        _write_tsv(dataset.users, staging / "users.tsv")
        meta = {
            "format": FORMAT_VERSION,
            "name": name,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "users": dataset.n_users,
            "items": dataset.n_items,
            "interactions": len(inter),
            "problems": len(report.problems),
            "duplicate_interactions": report.duplicate_interactions,
            "files": report.files,
            "rating_range": dataset.info.get("rating_range"),
        }
        (staging / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")

    target = replace_folder(datasets_dir(home), name, write)
    logger.info("saved %s to %s", dataset.summary(), target)
    return target


def _read_tsv(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise DataError(
            f"{path.parent} lacks {path.name}; it was not fully written by recagents ingest — "
            "ingest the files again"
        )
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, na_filter=False)


def load_ingested(name_or_path: str, home: Path | None = None) -> Dataset:
    """Load a dataset written by :func:`save_ingested`, by name or folder path.

    Args:
        name_or_path: A folder path, or a name under ``home/datasets``.
        home: Settings home; the default home when ``None``.

    Raises:
        DataError: Neither a folder nor a known name, or the folder is incomplete.
    """
    # A saved name wins over a same-named folder in the working directory.
    folder = datasets_dir(home) / name_or_path
    if not (_NAME.match(name_or_path) and folder.is_dir()):
        folder = Path(name_or_path).expanduser()
        if not folder.is_dir():
            names = ", ".join(ingested_names(home)) or "none"
            raise DataError(
                f"unknown dataset {name_or_path!r}: use {', '.join(DATASETS)}, or a name made "
                f"by `recagents ingest` (found: {names})"
            )
    meta: dict[str, object] = {}
    if (folder / "meta.json").exists():
        try:
            meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:  # a damaged file: say which
            raise DataError(
                f"{folder / 'meta.json'} is damaged ({exc}): run `recagents ingest` again from "
                "the CSVs, or restore the dataset folder from a backup"
            ) from None
    version = meta.get("format", FORMAT_VERSION)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise DataError(
            f"{folder} was written by a newer recagents (format {version}); upgrade recagents"
        )
    inter = _read_tsv(folder / "interactions.tsv")
    items = _read_tsv(folder / "items.tsv")
    users_path = folder / "users.tsv"
    users = _read_tsv(users_path) if users_path.exists() else None
    if users is not None and "age" in users:
        users["age"] = _whole_numbers(users["age"])
    name = str(meta.get("name") or folder.name)
    dataset = build_dataset(
        name, inter, items, users, info={"source": str(folder), "ingested": meta}
    )
    logger.info("loaded %s", dataset.summary())
    return dataset
