"""Pure formatting helpers for the chat UI: cards, evidence, profile, errors, learning summary.

Kept free of Gradio (and of FastAPI) so they are unit-testable and reusable by any front end.
Every piece of text that comes from the catalog or from a person goes through :func:`html.escape`
here: item titles and user messages are data, never markup.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from recagents.data.titles import YEAR_SUFFIX
from recagents.graph.context import MAX_MESSAGE_CHARS

#: How each agent's score is named for people.
AGENT_SCORE_LABELS: dict[str, str] = {
    "tower": "profile match (user-profile × item agents)",
    "history": "similar to what you liked (ranking agent)",
    "text": "text match (language model)",
    "popularity": "popularity",
    "final": "final score (ranking agent)",
}


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def check_message(message: Any) -> str | None:
    """A friendly sentence when a chat message cannot be sent as is, else ``None``.

    The UI answers with this instead of calling the recommender, so an empty or huge paste
    never reaches the graph and never turns into an error page. The bound is the graph's own.
    """
    if not isinstance(message, str) or not message.strip():
        return "Please type a message first, e.g. “I loved The Matrix” or “a comedy from the 90s”."
    if len(message) > MAX_MESSAGE_CHARS:
        return (
            f"That message is {len(message):,} characters long; I read at most "
            f"{MAX_MESSAGE_CHARS:,}. Please shorten it to the films and wishes that matter."
        )
    return None


def error_message(exc: BaseException) -> str:
    """What a person reads when a turn fails: the error's own words, never a traceback.

    Errors of the package's own tree (:class:`~recagents.errors.RecagentsError`) already say what
    to do, so they are shown as they are; anything else is a bug and is named as such.
    """
    from recagents.errors import RecagentsError

    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, RecagentsError):
        return f"I couldn't do that: {text}"
    return (
        f"Sorry, something went wrong: {text[:300]}. Please try again or start over; "
        "the details are in the server log."
    )


def stream_tokens(text: str) -> Iterator[str]:
    """The reply in word-sized pieces (each word with the whitespace after it).

    Joining the pieces gives back exactly ``text``, line breaks of numbered lists included.
    """
    leading = text[: len(text) - len(text.lstrip())]
    parts = re.findall(r"\S+\s*", text)
    if not parts:
        if text:
            yield text
        return
    parts[0] = leading + parts[0]
    yield from parts


def stream_chunks(text: str, max_updates: int | None = None) -> list[str]:
    """The reply growing word by word: each chunk is the whole text so far.

    Args:
        text: The full reply.
        max_updates: At most about this many chunks (a few words each) for long replies, so a
            browser is not asked to re-render a long answer hundreds of times.
    """
    chunks: list[str] = []
    shown = ""
    for token in stream_tokens(text):
        shown += token
        chunks.append(shown)
    if not chunks:
        return [text]
    if max_updates and len(chunks) > max_updates:
        step = math.ceil(len(chunks) / max_updates)
        chunks = chunks[step - 1 :: step]
        if chunks[-1] != text:
            chunks.append(text)
    return chunks


def escape_chat(text: str) -> str:
    """Chat text shown as markdown, with any HTML in it rendered inert."""
    return html.escape(text, quote=False)


def split_title(title: str, year: Any = None) -> tuple[str, str]:
    """``("Toy Story", "1995")`` from ``"Toy Story (1995)"`` or from a title and a year column."""
    match = YEAR_SUFFIX.search(title)
    if match:
        return title[: match.start()].strip(), match.group(1)
    if year is None or (isinstance(year, float) and math.isnan(year)) or year == "":
        return title, ""
    try:
        return title, str(int(year))
    except (TypeError, ValueError):
        return title, str(year)


def genres_text(genres: Any) -> str:
    """``Crime, Drama`` from ``Crime|Drama`` or a list."""
    if genres is None or (isinstance(genres, float) and math.isnan(genres)):
        return ""
    values = genres if isinstance(genres, list | tuple) else str(genres).split("|")
    return ", ".join(str(g) for g in values if str(g).strip())


def _label(text: str) -> str:
    return f"<span class='ra-label'>{text}</span>"


def evidence_html(evidence: Mapping[str, Any]) -> str:
    """The "why?" panel: liked items that drove the pick, shared attributes, each agent's score."""
    parts: list[str] = []
    because = list(evidence.get("because_of") or [])
    if because:
        rows = "".join(
            f"<li>{_e(c.get('title', c.get('item_id', '')))}"
            f" <span class='ra-weight'>(weight {float(c.get('weight', 0.0)):.3f})</span></li>"
            for c in because
        )
        parts.append(f"<div class='ra-ev'>{_label('Because you liked')}<ul>{rows}</ul></div>")
    else:
        parts.append(
            f"<div class='ra-ev'>{_label('Because you liked')}: nothing yet, this pick comes "
            "from your profile and the catalog.</div>"
        )
    shared = [str(a) for a in evidence.get("shared_attributes") or []]
    if shared:
        parts.append(f"<div class='ra-ev'>{_label('Shares')}: {_e('; '.join(shared[:8]))}</div>")
    scores = evidence.get("agent_scores") or {}
    if scores:
        rows = "".join(
            f"<tr><td>{_e(AGENT_SCORE_LABELS.get(name, name))}</td>"
            f"<td class='ra-num'>{float(value):.3f}</td></tr>"
            for name, value in scores.items()
        )
        parts.append(
            "<table class='ra-scores'><thead><tr><th>agent</th><th>score</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>"
        )
    return "".join(parts)


def card_html(
    item: Mapping[str, Any],
    *,
    rank: int,
    year: Any = None,
    genres: Any = None,
    feedback: bool | None = None,
) -> str:
    """One recommendation as a card: title, year, genres, match, reason and a "why?".

    Args:
        item: A reply item (``id``, ``title``, ``match``, ``reason``, ``evidence``).
        rank: Position in the list, from 1.
        year: Release year from the catalog (else parsed from the title).
        genres: Genres from the catalog (``|``-joined or a list).
        feedback: ``True``/``False`` once the person pressed 👍/👎 on it.
    """
    from recagents.data.titles import move_article

    title, year_text = split_title(str(item.get("title", "")), year)
    title = move_article(title)
    genre_line = genres_text(genres)
    mark = ""
    if feedback is True:
        mark = "<span class='ra-mark ra-liked'>👍 liked</span>"
    elif feedback is False:
        mark = "<span class='ra-mark ra-disliked'>👎 not for me</span>"
    reason = str(item.get("reason") or "").strip()
    return (
        f"<div class='ra-card' data-item-id='{_e(item.get('id', ''))}'>"
        f"<div class='ra-head'><span class='ra-rank'>{rank}</span>"
        f"<span class='ra-title'>{_e(title)}</span>"
        + (f"<span class='ra-year'>{_e(year_text)}</span>" if year_text else "")
        + f"{mark}</div>"
        + (f"<div class='ra-genres'>{_e(genre_line)}</div>" if genre_line else "")
        + f"<div class='ra-score'>{match_text(item)}</div>"
        + (f"<div class='ra-reason'>{_e(reason)}</div>" if reason else "")
        + "<details class='ra-why'><summary>why?</summary>"
        + evidence_html(item.get("evidence") or {})
        + "</details></div>"
    )


def match_text(item: Mapping[str, Any]) -> str:
    """``97% match``: the bounded percentile, never the ranking agent's raw score.

    Raw scores are on a per-user scale (and used to carry sentinels for filtered items), so a
    person could read nothing from them; the percentile reads the same on every list.
    """
    try:
        match = float(item.get("match") or 0.0)
    except (TypeError, ValueError):
        match = 0.0
    match = min(1.0, max(0.0, match if match == match else 0.0))
    return f"<b>{int(match * 100)}%</b> match"


def profile_markdown(state: Mapping[str, Any], title_of: Any) -> str:
    """What the conversation knows about the person (shown under the cards, updated at once).

    Args:
        state: The thread's state (``liked``, ``disliked``, ``seen``, ``user_id``...).
        title_of: ``item_id -> display title``.
    """
    lines = []
    user = state.get("user_id")
    lines.append(f"**You:** {'MovieLens user ' + _e(user) if user else 'a new user'}")
    for key, label in (("liked", "👍 Liked"), ("disliked", "👎 Not for you"), ("seen", "Seen")):
        ids = list(state.get(key) or [])
        if ids:
            titles = ", ".join(_e(title_of(i)) for i in ids[-8:])
            more = f" (+{len(ids) - 8} more)" if len(ids) > 8 else ""
            lines.append(f"**{label}:** {titles}{more}")
    if len(lines) == 1:
        lines.append("Tell me a film you love, or press 👍/👎 on a card.")
    return "  \n".join(lines)


#: Shown under a draft reply while the chat model phrases the top pick.
DRAFT_NOTE = "_✍️ phrasing the top pick…_"


def format_metric(value: Any) -> str:
    """Four decimals for floats, as is otherwise."""
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def learning_markdown(report: Mapping[str, Any], training: Mapping[str, Any] | None = None) -> str:
    """Summary of the last training run: rounds, chosen round, why it stopped, where it lives."""
    rounds = list(report.get("rounds") or [])
    if not rounds:
        return "No training run recorded yet."
    best = report.get("best_round", 0)
    chosen = next((r for r in rounds if r.get("round") == best), rounds[-1])
    ndcg = (chosen.get("valid") or {}).get("ndcg@10")
    lines = [
        f"**Last run:** {len(rounds)} rounds (round 0 is the text-only seed); "
        f"**chosen round {best}**"
        + (f" with valid NDCG@10 {ndcg:.4f}" if isinstance(ndcg, float) else "")
        + ".",
    ]
    if report.get("stopped"):
        lines.append(f"**Stopped:** {_e(report['stopped'])}.")
    if report.get("run_dir"):
        lines.append(f"**Run folder:** `{_e(report['run_dir'])}` (metrics.json, rounds.png).")
    if training and training.get("state") not in (None, "idle"):
        lines.append(f"**Training:** {_e(training.get('message') or training.get('state'))}")
    return "  \n".join(lines)


def rounds_table(report: Mapping[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """Headers and rows of per-round validation metrics."""
    rounds = list(report.get("rounds") or [])
    metrics: list[str] = []
    for record in rounds:
        for key in record.get("valid") or {}:
            if key not in metrics:
                metrics.append(key)
    rows = [
        [r.get("round"), *(round(float(r["valid"].get(m, 0.0)), 4) for m in metrics)]
        for r in rounds
    ]
    return ["round", *metrics], rows


def agents_table(agents: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """Headers and rows of the agents' status: the served round next to its own metrics.

    The served round is the best one on validation, which need not be the last one trained, so
    both are shown with their round numbers rather than side by side without them.
    """
    headers = ["agent", "role", "status", "served round metrics", "last round metrics"]

    def described(round_: Any, metrics: Mapping[str, Any] | None) -> str:
        text = ", ".join(f"{k} {format_metric(v)}" for k, v in (metrics or {}).items())
        if round_ is None:
            return "—"
        return f"round {round_}: {text or '—'}"

    rows = []
    for agent in agents:
        rows.append(
            [
                agent.get("name", ""),
                agent.get("role", ""),
                agent.get("status", ""),
                described(agent.get("serving_round"), agent.get("serving_metrics")),
                described(agent.get("last_round"), agent.get("metrics")),
            ]
        )
    return headers, rows


def rounds_figure(report: Mapping[str, Any]) -> Any:
    """A matplotlib figure of per-round validation metrics, the chosen round marked.

    Matplotlib is imported here, lazily, with the Agg backend (no display on a server).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 3.4), dpi=100)
    axes = figure.add_subplot(1, 1, 1)
    rounds = list(report.get("rounds") or [])
    if not rounds:
        axes.text(0.5, 0.5, "no training run yet", ha="center", va="center")
        axes.set_axis_off()
        return figure
    xs = [r.get("round", i) for i, r in enumerate(rounds)]
    for key in ("ndcg@10", "recall@10", "mrr@10", "hit@10"):
        ys = [(r.get("valid") or {}).get(key) for r in rounds]
        if all(isinstance(y, int | float) for y in ys):
            axes.plot(xs, [float(y) for y in ys if y is not None], marker="o", label=f"valid {key}")
    best = report.get("best_round")
    if best is not None:
        axes.axvline(best, color="grey", linestyle="--", linewidth=1, label=f"chosen round {best}")
    axes.set_xlabel("round")
    axes.set_ylabel("validation metric")
    axes.set_xticks(xs)
    axes.grid(alpha=0.3)
    axes.legend(loc="best", fontsize=8)
    figure.tight_layout()
    return figure


#: Styles of the cards (served with the page: no external stylesheet or font).
CARD_CSS = """
.ra-slot {border: 1px solid var(--border-color-primary); border-radius: 10px; padding: 8px 10px;
  background: var(--background-fill-primary); gap: 6px !important;}
.ra-card {padding: 0;}
.ra-head {display: flex; align-items: baseline; gap: 8px; flex-wrap: wrap;}
.ra-rank {font-weight: 700; color: var(--color-accent); min-width: 1.2em;}
.ra-title {font-weight: 600; font-size: 1.05em;}
.ra-year {color: var(--body-text-color-subdued);}
.ra-genres {color: var(--body-text-color-subdued); font-size: 0.9em; margin-top: 2px;}
.ra-score {font-size: 0.9em; margin-top: 4px;}
.ra-reason {margin-top: 4px;}
.ra-why {margin-top: 6px; font-size: 0.9em;}
.ra-why summary {cursor: pointer; color: var(--color-accent); font-weight: 600;}
.ra-why ul {margin: 2px 0 4px 18px; padding: 0;}
.ra-scores {border-collapse: collapse; margin-top: 4px;}
.ra-scores td, .ra-scores th {padding: 1px 8px 1px 0; text-align: left;}
.ra-num {font-variant-numeric: tabular-nums;}
.ra-mark {margin-left: auto; font-size: 0.85em; padding: 1px 6px; border-radius: 6px;
  background: var(--background-fill-secondary);}

.ra-label {font-weight: 600;}
.ra-weight {color: var(--body-text-color-subdued);}
.ra-feedback button {min-width: 0;}
"""
