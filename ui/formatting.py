"""Pure formatting helpers for the chat UI: cards, evidence, profile, errors, learning summary.

Kept free of Gradio (and of FastAPI) so they are unit-testable and reusable by any front end.
Every piece of text that comes from the catalog or from a person goes through :func:`html.escape`
here: item titles and user messages are data, never markup.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from recagents.data.titles import YEAR_SUFFIX
from recagents.graph.context import MAX_MESSAGE_CHARS
from recagents.graph.shares import agent_shares


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


#: Characters that markdown would read as formatting ("M*A*S*H" must not turn italic).
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]#~|$!])")


def escape_markdown(text: str) -> str:
    """``text`` as literal markdown: every formatting character backslash-escaped."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def escape_chat(text: str) -> str:
    """Chat text shown as markdown, literally: HTML inert, markdown characters escaped.

    Replies and messages are plain text built from catalog titles and what people typed, so a
    title such as "M*A*S*H (1970)" or "Sex, Lies, and Videotape [1989]" shows as written.
    """
    return escape_markdown(html.escape(text, quote=False))


#: A numbered line of a recommendation reply ("1. Title: reason").
_PICK_LINE = re.compile(r"^\d+\. ")


def chat_summary(text: str, items: Sequence[Mapping[str, Any]]) -> str:
    """The chat bubble of a recommendation turn: its notes and one sentence; cards carry the rest.

    The reply text (what the API and the terminal print) lists every pick with its reason; beside
    the cards that is the same words twice. The bubble keeps the turn's notes and intro and says
    how many picks the cards hold and which leads. Text of another shape is returned unchanged
    (escaped), so nothing the graph said is ever dropped by a mismatch.
    """
    lines = text.split("\n")
    picks = [line for line in lines if _PICK_LINE.match(line)]
    head = [line for line in lines if not _PICK_LINE.match(line)]
    if not items or len(picks) != len(items) or not head or not head[-1].endswith(":"):
        return escape_chat(text)
    from recagents.data.titles import move_article

    title, year = split_title(str(items[0].get("title", "")))
    top = move_article(title) + (f" ({year})" if year else "")
    count = f"{len(items)} films" if len(items) != 1 else "1 film"
    intro = head[-1][:-1].rstrip()
    sentence = f"{intro}: {count} on the cards, led by {top}."
    return escape_chat("\n".join([*head[:-1], sentence]))


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


def _attribute_words(attribute: str) -> str:
    """``genre Crime`` from ``genre: Crime``."""
    kind, sep, value = attribute.partition(":")
    return f"{kind.strip()} {value.strip()}" if sep else attribute.strip()


def evidence_html(evidence: Mapping[str, Any]) -> str:
    """The "why?" panel in words: the films it rests on, what it shares, a bar of the agents.

    No raw score is shown: they live on incomparable scales (see :func:`agent_shares`).
    """
    parts: list[str] = []
    because = [str(c.get("title", c.get("item_id", ""))) for c in evidence.get("because_of") or []]
    if because:
        parts.append(
            f"<div class='ra-ev'>{_label('Rests on films you liked')}: "
            f"{_e(', '.join(because))} (people who liked them liked this one too)</div>"
        )
    else:
        parts.append(
            f"<div class='ra-ev'>{_label('Rests on')}: no film you liked yet; this pick comes "
            "from your profile and the catalog.</div>"
        )
    shared = [_attribute_words(str(a)) for a in evidence.get("shared_attributes") or []]
    if shared:
        parts.append(
            f"<div class='ra-ev'>{_label('Shares with them')}: {_e('; '.join(shared[:8]))}</div>"
        )
    shares = agent_shares(evidence.get("agent_scores") or {})
    if shares:
        colours = ("#4f7cff", "#f0a030", "#3bb273", "#b05cc8", "#888888")
        segments = "".join(
            f"<span class='ra-seg' style='width:{share * 100:.1f}%;"
            f"background:{colours[i % len(colours)]}' title='{_e(label)}'></span>"
            for i, (label, share) in enumerate(shares)
        )
        legend = "".join(
            f"<li><span class='ra-dot' style='background:{colours[i % len(colours)]}'></span>"
            f"{_e(label)} <b>{share * 100:.0f}%</b></li>"
            for i, (label, share) in enumerate(shares)
        )
        parts.append(
            f"<div class='ra-ev'>{_label('What pointed here')}:"
            f"<div class='ra-bar'>{segments}</div><ul class='ra-legend'>{legend}</ul></div>"
        )
    return "".join(parts)


def match_text(item: Mapping[str, Any]) -> str | None:
    """``"87% match"`` from the item's bounded ``match`` (0..1), else ``None`` (no raw score)."""
    value = item.get("match")
    if value is None:
        return None
    try:
        share = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(share):
        return None
    return f"{round(min(1.0, max(0.0, share)) * 100):.0f}% match"


def card_html(
    item: Mapping[str, Any],
    *,
    rank: int,
    year: Any = None,
    genres: Any = None,
    feedback: bool | None = None,
    drafting: str | None = None,
) -> str:
    """One recommendation as a card: title, year, genres, match, reason and a "why?".

    Args:
        item: A reply item (``id``, ``title``, ``match``, ``reason``, ``evidence``).
        rank: Position in the list, from 1.
        year: Release year from the catalog (else parsed from the title).
        genres: Genres from the catalog (``|``-joined or a list).
        feedback: ``True``/``False`` once the person pressed 👍/👎 on it.
        drafting: The chat model's words so far for this card's reason (shown as a draft in
            place of the reason until the checked reason arrives).
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
    match = match_text(item)
    reason_html = f"<div class='ra-reason'>{_e(reason)}</div>" if reason else ""
    if drafting is not None:  # the chat model's words as they come: shown as an unchecked draft
        reason_html = (
            f"<div class='ra-reason ra-drafting'><span class='ra-draft-tag'>✍️ draft</span> "
            f"{_e(drafting.strip())}</div>"
        )
    return (
        f"<div class='ra-card' data-item-id='{_e(item.get('id', ''))}'>"
        f"<div class='ra-head'><span class='ra-rank'>{rank}</span>"
        f"<span class='ra-title'>{_e(title)}</span>"
        + (f"<span class='ra-year'>{_e(year_text)}</span>" if year_text else "")
        + f"{mark}</div>"
        + (f"<div class='ra-genres'>{_e(genre_line)}</div>" if genre_line else "")
        + (f"<div class='ra-score'>{_e(match)}</div>" if match else "")
        + reason_html
        + "<details class='ra-why'><summary>why?</summary>"
        + evidence_html(item.get("evidence") or {})
        + "</details></div>"
    )


def profile_markdown(state: Mapping[str, Any], title_of: Any) -> str:
    """What the conversation knows about the person (shown under the cards, updated at once).

    Args:
        state: The thread's state (``liked``, ``disliked``, ``seen``, ``user_id``...).
        title_of: ``item_id -> display title``.
    """
    lines = []
    user = state.get("user_id")
    lines.append(f"**You:** {'MovieLens user ' + escape_chat(str(user)) if user else 'a new user'}")
    for key, label in (("liked", "👍 Liked"), ("disliked", "👎 Not for you"), ("seen", "Seen")):
        ids = list(state.get(key) or [])
        if ids:
            titles = ", ".join(escape_chat(str(title_of(i))) for i in ids[-8:])
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
    union = report.get("dialogues")
    if isinstance(union, Mapping) and union.get("corpora"):
        lines.append(
            f"**Learned from conversations:** {_e(', '.join(map(str, union['corpora'])))} "
            f"({union.get('users', 0)} dialogues as users, weight {union.get('weight', 1):g}): "
            "the item agent and the ranking agent's item-item model learn which films are "
            "named together, the user agent the seekers' words and films, the ranking agent "
            "which suggestions were taken."
        )
    cluster = report.get("cluster")
    if isinstance(cluster, Mapping) and cluster.get("engine") == "ray":
        nodes = list(cluster.get("nodes") or [])
        actors = list(cluster.get("actors") or [])
        node_names = {n.get("node_id"): f"node {i + 1}" for i, n in enumerate(nodes)}
        placed = ", ".join(
            f"{_e(str(a.get('instance')))} on {node_names.get(a.get('node_id'), 'a lost node')}"
            for a in actors
        )
        resources = ", ".join(
            f"node {i + 1}: {n.get('cpus', 0):g} CPU, {n.get('memory_gb', 0):g} GB"
            for i, n in enumerate(nodes)
        )
        lines.append(
            f"**Trained on a Ray cluster:** {len(nodes)} node(s) ({resources}); "
            f"{len(actors)} actors ({placed})"
            + (
                f"; rounds retried after losing an actor: {cluster['retried_rounds']}"
                if cluster.get("retried_rounds")
                else ""
            )
            + "."
        )
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


def agent_curves(report: Mapping[str, Any]) -> dict[str, list[tuple[int, float]]]:
    """Per agent, (round, its own model's valid NDCG@10) for the rounds that measured it.

    The rounds record it under ``own_valid_ndcg@10`` (an agent with a ranking of its own);
    ``together`` is the run's valid NDCG@10, every agent collaborating.
    """
    curves: dict[str, list[tuple[int, float]]] = {}
    for i, record in enumerate(report.get("rounds") or []):
        number = int(record.get("round", i))
        for name, metrics in (record.get("agents") or {}).items():
            value = (metrics or {}).get("own_valid_ndcg@10")
            if isinstance(value, int | float):
                curves.setdefault(f"{name} alone", []).append((number, float(value)))
        value = (record.get("valid") or {}).get("ndcg@10")
        if curves and isinstance(value, int | float):
            curves.setdefault("together", []).append((number, float(value)))
    return curves


def rounds_figure(report: Mapping[str, Any]) -> Any:
    """A matplotlib figure of per-round validation metrics, the chosen round marked.

    Beside it, when the rounds measured them, each agent's own model per round next to the
    agents together (the ablation of the run, :func:`agent_curves`). Matplotlib is imported
    here, lazily, with the Agg backend (no display on a server).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    curves = agent_curves(report)
    figure = Figure(figsize=(11 if curves else 7, 3.4), dpi=100)
    axes = figure.add_subplot(1, 2 if curves else 1, 1)
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
    if curves:
        per_agent = figure.add_subplot(1, 2, 2)
        for name, points in curves.items():
            style = {"linewidth": 2.5, "color": "black"} if name == "together" else {}
            per_agent.plot(*zip(*points, strict=True), marker="o", label=name, **style)
        per_agent.set_xlabel("round")
        per_agent.set_ylabel("valid NDCG@10")
        per_agent.set_title("Each agent's own model vs together", fontsize=10)
        per_agent.set_xticks(xs)
        per_agent.grid(alpha=0.3)
        per_agent.legend(loc="best", fontsize=8)
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
.ra-mark {margin-left: auto; font-size: 0.85em; padding: 1px 6px; border-radius: 6px;
  background: var(--background-fill-secondary);}

.ra-label {font-weight: 600;}
.ra-feedback button {min-width: 0;}
.ra-card, .ra-title, .ra-reason, .ra-why {overflow-wrap: anywhere;}
.ra-slot, .ra-card {max-width: 100%; box-sizing: border-box; min-width: 0;}
.ra-bar {display: flex; height: 10px; border-radius: 5px; overflow: hidden; margin: 4px 0;
  background: var(--background-fill-secondary); max-width: 320px;}
.ra-seg {display: block; height: 100%;}
.ra-legend {list-style: none; margin: 0 !important; padding: 0 !important;}
.ra-legend li {display: flex; align-items: center; gap: 6px;}
.ra-dot {display: inline-block; width: 10px; height: 10px; border-radius: 50%;}
.ra-drafting {color: var(--body-text-color-subdued); font-style: italic;}
.ra-draft-tag {font-style: normal; font-size: 0.8em; padding: 0 4px; border-radius: 4px;
  background: var(--background-fill-secondary);}
.ra-like-row {align-items: center;}
@media (max-width: 640px) {
  .ra-slot {padding: 6px 8px;}
  .ra-title {font-size: 1em;}
  .ra-feedback {flex-wrap: nowrap !important;}
  .ra-feedback button {flex: 1 1 0; font-size: 0.85em;}
}
"""
