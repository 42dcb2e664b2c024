"""The UI's pure helpers: cards, evidence, streaming pieces, messages (no Gradio needed)."""

from __future__ import annotations

import pytest

from recagents.errors import DataError, UnknownEntityError
from recagents.ui import formatting as fmt

ITEM = {
    "id": "i8",
    "title": "Film 8 (1991)",
    "score": 4.2,
    "match": 0.974,
    "reason": "Because you liked Film 9 (1991); it shares Comedy.",
    "evidence": {
        "because_of": [{"item_id": "i9", "title": "Film 9 (1991)", "weight": 0.0135}],
        "shared_attributes": ["genre: Comedy"],
        "agent_scores": {"history": 0.0135, "tower": 7.07, "final": 4.2},
    },
}


def test_card_shows_title_year_genres_reason_and_why_in_words():
    html = fmt.card_html(ITEM, rank=1, year=1991, genres="Comedy|Drama")
    assert "<span class='ra-title'>Film 8</span>" in html
    assert "<span class='ra-year'>1991</span>" in html
    assert "Comedy, Drama" in html
    assert "Because you liked Film 9 (1991); it shares Comedy." in html
    assert "<details class='ra-why'><summary>why?</summary>" in html
    assert "Rests on films you liked</span>: Film 9 (1991)" in html
    assert "Shares with them</span>: genre Comedy" in html
    # no raw, incomparable score anywhere: neither the final 4.2 nor the profile's 7.07
    assert "4.2" not in html and "7.07" not in html and "97% match" in html
    assert "👍 liked" in fmt.card_html(ITEM, rank=1, feedback=True)
    assert "not for me" in fmt.card_html(ITEM, rank=1, feedback=False)


def test_a_bounded_match_is_shown_as_a_percentage():
    assert "87% match" in fmt.card_html({**ITEM, "match": 0.87}, rank=1)
    assert fmt.match_text({"match": 1.7}) == "100% match"  # never past the bounds
    assert fmt.match_text({"match": float("nan")}) is None
    assert fmt.match_text({"score": -999999999.0}) is None  # a raw score is never a match


def test_agent_bar_shows_shares_that_sum_to_one():
    shares = fmt.agent_shares({"history": 0.3, "tower": 0.0, "text": 0.6, "final": 9.0})
    labels = [label for label, _ in shares]
    assert "final" not in " ".join(labels) and len(shares) == 3
    assert sum(share for _, share in shares) == pytest.approx(1.0)
    by_label = dict(shares)
    assert by_label["story and themes (text)"] > by_label["films like the ones you liked"]
    html = fmt.evidence_html({"agent_scores": {"history": 0.3, "tower": 0.0, "text": 0.6}})
    assert "ra-bar" in html and "What pointed here" in html and "%" in html
    assert fmt.agent_shares({"final": 3.0}) == [] and fmt.agent_shares({}) == []


def test_titles_are_markdown_escaped_in_chat_text():
    assert fmt.escape_chat("M*A*S*H (1970)") == "M\\*A\\*S\\*H (1970)"
    assert fmt.escape_chat("[x](javascript:y) _a_ `b`") == "\\[x\\](javascript:y) \\_a\\_ \\`b\\`"
    profile = fmt.profile_markdown({"liked": ["i1"]}, lambda _: "M*A*S*H (1970)")
    assert "M\\*A\\*S\\*H (1970)" in profile


def test_the_chat_bubble_says_one_sentence_and_leaves_reasons_to_the_cards():
    text = (
        "Only 2 films match.\nHere are my picks (Comedy):\n"
        "1. M*A*S*H (1970): Because you liked Film 9.\n2. Film 8 (1991): It shares Comedy."
    )
    items = [{"title": "M*A*S*H (1970)"}, {"title": "Film 8 (1991)"}]
    bubble = fmt.chat_summary(text, items)
    assert bubble == (
        "Only 2 films match.\nHere are my picks (Comedy): 2 films on the cards, "
        "led by M\\*A\\*S\\*H (1970)."
    )
    assert "Because you liked" not in bubble
    # a reply of another shape (a why? answer, a question) is kept whole
    assert fmt.chat_summary("I picked Film 8 because...", []) == "I picked Film 8 because..."
    assert fmt.chat_summary("1. a\n2. b", items) == "1. a\n2. b"


def test_a_draft_reason_is_marked_as_a_draft():
    html = fmt.card_html(ITEM, rank=1, drafting=" it tells the same <b>story</b>")
    assert "✍️ draft" in html and "ra-drafting" in html and "Because you liked" not in html
    assert "&lt;b&gt;story" in html


def test_card_shows_a_bounded_match_never_the_raw_score():
    """The card says "97% match"; a raw score (once a -1e9 sentinel) is never the headline."""
    html = fmt.card_html(ITEM, rank=1)
    score_line = html.split("<div class='ra-score'>")[1].split("</div>")[0]
    assert score_line == "97% match"
    sentinel = {**ITEM, "score": -999999999.09, "match": 0.0}
    assert "999999" not in fmt.card_html(sentinel, rank=1).split("<details")[0]
    for bad, shown in ((1.7, "100% match"), (-0.2, "0% match")):
        card = fmt.card_html({**ITEM, "match": bad}, rank=1)
        assert f"<div class='ra-score'>{shown}</div>" in card
    for bad in (float("nan"), "x"):  # no figure rather than a made-up one
        assert "ra-score" not in fmt.card_html({**ITEM, "match": bad}, rank=1)


def test_catalog_text_is_escaped():
    evil = {
        **ITEM,
        "title": "<img src=x onerror=alert(1)> (1999)",
        "reason": "<script>alert(2)</script>",
        "evidence": {"because_of": [{"item_id": "x", "title": "<b>bold</b>", "weight": 1.0}]},
    }
    html = fmt.card_html(evil, rank=1, genres="<i>Drama</i>")
    assert "<img" not in html and "<script>" not in html and "<b>bold" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "&lt;i&gt;Drama&lt;/i&gt;" in html
    assert fmt.escape_chat("<script>x</script>") == "&lt;script&gt;x&lt;/script&gt;"


def test_evidence_without_liked_items_says_so():
    html = fmt.evidence_html({"agent_scores": {"popularity": 1.0}})
    assert "no film you liked yet" in html and "popularity <b>100%</b>" in html


def test_message_checks_are_friendly():
    assert "type a message" in fmt.check_message("  ")
    assert "type a message" in fmt.check_message(None)
    assert "20,000" in fmt.check_message("x" * 20_001)
    assert fmt.check_message("x" * 20_000) is None


def test_error_messages_never_show_a_traceback():
    assert fmt.error_message(DataError("k must be between 1 and 50")).startswith(
        "I couldn't do that: k must be"
    )
    assert "unknown item id 'z'" in fmt.error_message(UnknownEntityError("item", "z"))
    text = fmt.error_message(RuntimeError("boom"))
    assert text.startswith("Sorry, something went wrong: boom") and "Traceback" not in text
    assert "ZeroDivisionError" in fmt.error_message(ZeroDivisionError())


def test_titles_and_genres():
    assert fmt.split_title("Toy Story (1995)") == ("Toy Story", "1995")
    assert fmt.split_title("Heat", 1995.0) == ("Heat", "1995")
    assert fmt.split_title("Heat", float("nan")) == ("Heat", "")
    assert fmt.genres_text("Crime|Drama") == "Crime, Drama"
    assert fmt.genres_text(["Crime"]) == "Crime" and fmt.genres_text(None) == ""


def test_profile_lists_what_the_thread_learned():
    titles = {"i1": "Film 1 (1990)", "i2": "<Film 2>"}
    text = fmt.profile_markdown({"liked": ["i1"], "disliked": ["i2"]}, titles.get)
    assert "Film 1 (1990)" in text and "&lt;Film 2&gt;" in text and "a new user" in text
    assert "MovieLens user 42" in fmt.profile_markdown({"user_id": "42"}, titles.get)


REPORT = {
    "rounds": [
        {"round": 0, "valid": {"ndcg@10": 0.1, "recall@10": 0.2}, "agents": {}},
        {"round": 1, "valid": {"ndcg@10": 0.3, "recall@10": 0.4}, "agents": {}},
    ],
    "best_round": 1,
    "stopped": "reached max_rounds=1",
    "run_dir": "/tmp/run",
}


def test_learning_summary_tables_and_plot():
    text = fmt.learning_markdown(REPORT, {"state": "running", "message": "round 1"})
    assert "chosen round 1" in text and "0.3000" in text and "reached max_rounds=1" in text
    assert "round 1" in text.split("Training:")[1]
    assert fmt.learning_markdown({}) == "No training run recorded yet."
    headers, rows = fmt.rounds_table(REPORT)
    assert headers == ["round", "ndcg@10", "recall@10"] and rows[1] == [1, 0.3, 0.4]
    headers, rows = fmt.agents_table(
        [
            {
                "name": "item",
                "role": "item",
                "status": "ok",
                "last_round": 3,
                "metrics": {"loss": 0.5},
                "serving_round": 2,
                "serving_metrics": {"loss": 0.25},
            },
            {"name": "new", "role": "new", "status": "not trained"},
        ]
    )
    assert headers[-2:] == ["served round metrics", "last round metrics"]
    assert rows == [
        ["item", "item", "ok", "round 2: loss 0.2500", "round 3: loss 0.5000"],
        ["new", "new", "not trained", "—", "—"],
    ]
    figure = fmt.rounds_figure(REPORT)
    assert [line.get_label() for line in figure.axes[0].lines][:2] == [
        "valid ndcg@10",
        "valid recall@10",
    ]
    assert fmt.rounds_figure({}).axes
    assert len(figure.axes) == 1  # no agent measured its own model: no ablation panel


def test_rounds_figure_plots_each_agent_alone_next_to_together():
    own = "own_valid_ndcg@10"
    report = {
        **REPORT,
        "rounds": [
            {"round": 0, "valid": {"ndcg@10": 0.1}, "agents": {"item": {own: 0.05}}},
            {
                "round": 1,
                "valid": {"ndcg@10": 0.3},
                "agents": {"item": {own: 0.2}, "user_profile": {own: 0.25}, "ranking": {}},
            },
        ],
    }
    curves = fmt.agent_curves(report)
    assert curves == {
        "item alone": [(0, 0.05), (1, 0.2)],
        "together": [(0, 0.1), (1, 0.3)],
        "user_profile alone": [(1, 0.25)],
    }
    figure = fmt.rounds_figure(report)
    panel = figure.axes[1]
    assert {line.get_label() for line in panel.lines} == set(curves)
    together = next(line for line in panel.lines if line.get_label() == "together")
    assert list(together.get_ydata()) == [0.1, 0.3]


def test_learning_summary_says_where_a_ray_run_trained():
    report = {
        **REPORT,
        "cluster": {
            "engine": "ray",
            "nodes": [
                {"node_id": "a1", "cpus": 1.0, "memory_gb": 2.5},
                {"node_id": "b2", "cpus": 1.0, "memory_gb": 2.0},
            ],
            "actors": [
                {"instance": "user_profile-0", "node_id": "a1"},
                {"instance": "user_profile-1", "node_id": "b2"},
                {"instance": "ranking", "node_id": "gone"},
            ],
            "retried_rounds": [2],
        },
    }
    text = fmt.learning_markdown(report)
    line = text.split("**Trained on a Ray cluster:**")[1].split("  \n")[0]
    assert "2 node(s)" in line and "node 2: 1 CPU, 2 GB" in line
    assert "user_profile-0 on node 1" in line and "user_profile-1 on node 2" in line
    assert "ranking on a lost node" in line and "[2]" in line
    assert "Ray cluster" not in fmt.learning_markdown(REPORT)
