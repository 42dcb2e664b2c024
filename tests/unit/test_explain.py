"""Explanations: template sentences, verification of model phrasing, and what the model sees.

A scripted fake chat model stands in for the LLM, so these run in milliseconds.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatResult
from pydantic import Field

from recagents.errors import ConfigError
from recagents.graph.explain import (
    DEFAULT_TEXT,
    Explanation,
    build_messages,
    build_prompt,
    check_reply,
    display_title,
    explain,
    mentions_title,
    template_reason,
    tidy_reply,
    verify_titles,
)
from recagents.prompts import available_prompts, load_prompt
from recagents.types import Contribution, Evidence, Recommendation

FARGO = Recommendation(
    item_id="100",
    title="Fargo (1996)",
    score=0.91,
    evidence=Evidence(
        because_of=(Contribution("56", "Pulp Fiction (1994)", 0.8),),
        shared_attributes=("genre: Crime", "genre: Thriller", "director: Joel Coen"),
        agent_scores={"tower": 0.4, "history": 0.7, "final": 0.91},
    ),
)
HEAT = Recommendation(
    item_id="6",
    title="Heat (1995)",
    score=0.7,
    evidence=Evidence(
        because_of=(Contribution("12", "Usual Suspects, The (1995)", 0.6),),
        shared_attributes=("cast: Al Pacino",),
    ),
)
TOY_STORY = Recommendation(
    item_id="1",
    title="Toy Story (1995)",
    score=0.6,
    evidence=Evidence(shared_attributes=("genre: Animation",)),
)


class RecordingFake(GenericFakeChatModel):
    """Replies from a script and records every list of messages it was given."""

    calls: list[list[BaseMessage]] = Field(default_factory=list)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.calls.append(list(messages))
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)


class PrefillFake(RecordingFake):
    """A model that continues a trailing assistant message, like the local SmolLM2."""

    supports_prefill: bool = True


class FailingFake(RecordingFake):
    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        self.calls.append(list(messages))
        raise RuntimeError("provider unavailable")


class StuckFake(RecordingFake):
    release: Any = Field(default_factory=threading.Event)

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        self.release.wait(5)
        return super()._generate(messages, *args, **kwargs)


def fake(*replies: str) -> RecordingFake:
    return RecordingFake(messages=iter([AIMessage(content=r) for r in replies]))


def as_text(messages: list[BaseMessage]) -> str:
    return "\n".join(m.text for m in messages)


# ----------------------------------------------------------------------------- model phrasing


def test_good_phrasing_is_kept() -> None:
    reply = "Fargo (1996) is a darkly tense crime story directed by Joel Coen, like Pulp Fiction."
    model = fake(reply)
    [explanation] = explain([FARGO], model, request="something dark")
    assert explanation == Explanation("100", reply, "llm", None)


def test_invented_title_is_rejected_and_reported() -> None:
    model = fake("You will love Fargo (1996), just like Titanic (1997).")
    [explanation] = explain([FARGO], model)
    assert explanation.source == "template"
    assert explanation.text == template_reason(FARGO)
    assert explanation.rejected_reason is not None
    assert "Titanic (1997)" in explanation.rejected_reason
    assert "Titanic" not in explanation.text


def test_invented_title_found_by_the_catalog_matcher_is_rejected() -> None:
    catalog = ["Fargo (1996)", "Pulp Fiction (1994)", "Heat (1995)"]

    def matcher(text: str) -> list[str]:
        return [t for t in catalog if display_title(t).split(" (")[0].lower() in text.lower()]

    model = fake("Fargo is a crime gem that fans of Heat will enjoy too.")
    [explanation] = explain([FARGO], model, catalog_titles=matcher)
    assert explanation.source == "template"
    assert explanation.rejected_reason == "names titles outside the evidence: Heat (1995)"


def test_missing_recommended_title_falls_back_to_the_template() -> None:
    model = fake("A darkly tense crime story with a great cast that you will enjoy.")
    [explanation] = explain([FARGO], model)
    assert explanation.source == "template"
    assert explanation.text == template_reason(FARGO)
    assert "does not name the recommended title" in (explanation.rejected_reason or "")


def test_model_error_falls_back_to_the_template() -> None:
    model = FailingFake(messages=iter([]))
    [explanation] = explain([FARGO], model)
    assert explanation.source == "template"
    assert explanation.text == template_reason(FARGO)
    assert explanation.rejected_reason == "model call failed: RuntimeError: provider unavailable"


def test_model_timeout_falls_back_to_the_template() -> None:
    model = StuckFake(messages=iter([AIMessage(content="Fargo (1996) is great fun for you.")]))
    try:
        [explanation] = explain([FARGO], model, timeout_s=0.05)
    finally:
        model.release.set()
    assert explanation.source == "template"
    assert "TimeoutError" in (explanation.rejected_reason or "")


def test_prefill_models_get_the_opening_and_continue_it() -> None:
    model = PrefillFake(messages=iter([AIMessage(content=" it is dark, tense and violent.")]))
    [explanation] = explain([FARGO], model)
    assert model.calls[0][-1].type == "ai"
    assert model.calls[0][-1].text == (
        "Since you liked Pulp Fiction (1994), you will enjoy Fargo (1996) because"
    )
    assert explanation.text == (
        "Since you liked Pulp Fiction (1994), you will enjoy Fargo (1996) because it is dark, "
        "tense and violent."
    )
    assert explanation.source == "llm"


def test_prefill_without_liked_titles_opens_with_the_title() -> None:
    model = PrefillFake(messages=iter([AIMessage(content=" it is a charming animated film.")]))
    [explanation] = explain([TOY_STORY], model)
    assert model.calls[0][-1].text == "You will enjoy Toy Story (1995) because"
    assert explanation.source == "llm"


def test_models_without_prefill_get_no_assistant_message() -> None:
    model = fake("Fargo (1996) is a darkly tense crime story you will enjoy.")
    explain([FARGO], model)
    assert [m.type for m in model.calls[0]] == ["system", "human"]


def test_only_max_llm_items_go_to_the_model() -> None:
    model = fake(
        "Fargo (1996) is a darkly tense crime story you will enjoy.",
        "Heat (1995) gives you more of Al Pacino.",
        "Toy Story (1995) is a joyful animated adventure.",
    )
    explanations = explain([FARGO, HEAT, TOY_STORY], model, max_llm_items=2)
    assert len(model.calls) == 2
    assert [e.source for e in explanations] == ["llm", "llm", "template"]
    assert explanations[2].text == template_reason(TOY_STORY)
    assert [e.item_id for e in explanations] == ["100", "6", "1"]


def test_no_model_or_zero_budget_means_templates_only() -> None:
    model = fake("unused")
    assert all(e.source == "template" for e in explain([FARGO, HEAT], model, max_llm_items=0))
    assert model.calls == []
    explanations = explain([FARGO, HEAT], None)
    assert [e.text for e in explanations] == [template_reason(FARGO), template_reason(HEAT)]
    assert all(e.rejected_reason is None for e in explanations)


def test_prompt_holds_only_the_one_item_and_its_evidence() -> None:
    model = fake(
        "Fargo (1996) is a darkly tense crime story you will enjoy.",
        "Heat (1995) is a tense crime epic with Al Pacino.",
    )
    explain([FARGO, HEAT, TOY_STORY], model, request="a tense crime film", max_llm_items=2)
    first, second = as_text(model.calls[0]), as_text(model.calls[1])
    assert "Fargo (1996)" in first and "Pulp Fiction (1994)" in first
    assert "Crime" in first and "Joel Coen" in first and "a tense crime film" in first
    for other in ("Heat", "Usual Suspects", "Toy Story", "Al Pacino"):
        assert other not in first
    assert "Heat (1995)" in second and "The Usual Suspects (1995)" in second
    for other in ("Fargo", "Pulp Fiction", "Toy Story", "Joel Coen"):
        assert other not in second
    assert "{" not in first and "<!--" not in first


def test_build_prompt_fills_every_placeholder() -> None:
    text = build_prompt(TOY_STORY)
    assert "Toy Story (1995)" in text
    assert "nothing specific" in text  # empty request
    assert "They liked: none" in text
    assert "{" not in text and "}" not in text
    assert [m.type for m in build_messages(TOY_STORY, prefill=True)] == ["system", "human", "ai"]


# ------------------------------------------------------------------------- template sentences


def test_template_with_liked_titles_and_attributes() -> None:
    rec = Recommendation(
        "9",
        "Jackie Brown (1997)",
        0.5,
        Evidence(
            because_of=(
                Contribution("1", "Pulp Fiction (1994)", 0.5),
                Contribution("2", "Fargo (1996)", 0.9),
            ),
            shared_attributes=(
                "genre: Crime",
                "genre: Thriller",
                "director: Quentin Tarantino",
            ),
        ),
    )
    assert template_reason(rec) == (
        "Because you liked Fargo (1996) and Pulp Fiction (1994); "
        "it shares Crime and Thriller, directed by Quentin Tarantino."
    )


def test_template_moves_articles_and_caps_the_list() -> None:
    rec = Recommendation(
        "9",
        "Heat (1995)",
        0.5,
        Evidence(
            because_of=tuple(
                Contribution(str(i), t, w)
                for i, (t, w) in enumerate(
                    [
                        ("Usual Suspects, The (1995)", 0.9),
                        ("Godfather, The (1972)", 0.8),
                        ("Casino (1995)", 0.7),
                        ("Se7en (1995)", 0.1),
                    ]
                )
            ),
            shared_attributes=("cast: Al Pacino", "cast: Robert De Niro"),
        ),
    )
    assert template_reason(rec) == (
        "Because you liked The Usual Suspects (1995), The Godfather (1972) and Casino (1995); "
        "it stars Al Pacino and Robert De Niro."
    )


@pytest.mark.parametrize(
    ("evidence", "expected"),
    [
        (
            Evidence(because_of=(Contribution("1", "Alien (1979)", 1.0),)),
            "Because you liked Alien (1979).",
        ),
        (
            Evidence(shared_attributes=("genre: Sci-Fi", "director: Ridley Scott")),
            "Matches what you like: Sci-Fi, directed by Ridley Scott.",
        ),
        (
            Evidence(shared_attributes=("language: French",)),
            "Matches what you like: same language: French.",
        ),
        (
            Evidence(agent_scores={"text": 0.9, "tower": 0.1}),
            "A close match for what you asked for.",
        ),
        # "popular" is written only when the catalog facts say the film is among the most rated
        (Evidence(agent_scores={"popularity": 0.9, "final": 2.0}), DEFAULT_TEXT),
        (
            Evidence(
                agent_scores={"popularity": 0.9, "ratings": 480, "mean_rating": 4.36, "popular": 1}
            ),
            "One of the most-rated films in the catalog: average rating 4.4 from 480 ratings.",
        ),
        (
            Evidence(
                agent_scores={"popularity": 0.4, "ratings": 30, "mean_rating": 4.1, "popular": 0}
            ),
            "Well rated: average rating 4.1 from 30 ratings.",
        ),
        (
            Evidence(agent_scores={"popularity": 0.4, "ratings": 30, "mean_rating": 2.5}),
            "Average rating 2.5 from 30 ratings.",
        ),
        (Evidence(agent_scores={"tower": 0.9}), "Close to the films you rate highly."),
        (Evidence(), DEFAULT_TEXT),
    ],
)
def test_template_for_each_evidence_shape(evidence: Evidence, expected: str) -> None:
    assert template_reason(Recommendation("7", "Blade Runner (1982)", 0.5, evidence)) == expected


# ------------------------------------------------------------------------------- verification


def test_title_variants_count_as_mentions() -> None:
    title = "Usual Suspects, The (1995)"
    for text in (
        "The Usual Suspects is sharp.",
        "Usual Suspects, The (1995) is sharp.",
        "the usual suspects (1995) is sharp",
        "Usual Suspects is sharp.",
    ):
        assert mentions_title(text, title), text
    assert not mentions_title("The usual suspect is the butler.", title)
    assert mentions_title(
        "La Cité des enfants perdus is strange.",
        "City of Lost Children, The (Cité des enfants perdus, La) (1995)",
    )
    assert mentions_title("Wallace and Gromit are back", "Wallace & Gromit (1996)")


def test_verify_titles_reports_only_titles_outside_the_allowed_set() -> None:
    allowed = ["Fargo (1996)", "Pulp Fiction (1994)"]
    assert verify_titles("Fargo (1996) is like Pulp Fiction (1994).", allowed) == []
    assert verify_titles('Fargo, but also "Heat" and *Casino*.', allowed) == ["Heat", "Casino"]
    assert verify_titles("Fans of The Big Lebowski (1998) love Fargo.", allowed) == [
        "The Big Lebowski (1998)"
    ]
    assert verify_titles("Fargo is a *Crime* story with **Frances McDormand**.", allowed, None,
                         not_titles=["Frances McDormand"]) == []  # fmt: skip


def test_verify_titles_with_a_catalog_matcher() -> None:
    def matcher(text: str) -> list[str]:
        found = []
        if "Godfather" in text:
            found.append("Godfather, The (1972)")
        if "Part II" in text:
            found.append("Godfather: Part II, The (1974)")
        return found

    allowed = ["Godfather: Part II, The (1974)"]
    # "The Godfather" inside the allowed title is not a second film...
    assert verify_titles("The Godfather: Part II is a worthy sequel.", allowed, matcher) == []
    # ...but the first film named on its own is.
    assert verify_titles(
        "Like The Godfather, The Godfather: Part II is great.", allowed, matcher
    ) == ["Godfather, The (1972)"]


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("Fargo.", "too short"),
        ("Fargo (1996) is " + "very " * 90 + "good.", "too long"),
        ("As an AI, I think Fargo (1996) is a good crime film.", "assistant"),
        ("I'd be happy to help: Fargo (1996) is a good crime film.", "assistant"),
        ("Fargo (1996) is at https://example.com/fargo for you.", "link"),
        ("Fargo (1996) is on www.example.org for you tonight.", "link"),
        ("Fargo (1996): write one or two sentences telling them why.", "echoes"),
        ("The user will enjoy Fargo (1996) for its dark humour.", "echoes"),
        ("<|im_start|>Fargo (1996) is a good crime film.", "echoes"),
        ("Fargo (1996).", "nothing beyond"),
        ("Fargo (1996) came out on March 8 and is a dark thriller.", "date"),
        ("Fargo (1996) has a 2003 sequel that you will enjoy.", "year"),
        ("Fargo (1996) won an Oscar for its crackling script.", "no Oscar on record"),
        ("Fargo (1996) is a crime film starring Michael Caine.", "Michael Caine"),
        ("Fargo (1996) is a crime film, just like Heat (1995).", "Heat (1995)"),
        ("You will enjoy Fargo (1996) because it is a dark comedy that never fails", "unfinished"),
    ],
)
def test_check_reply_rejects(reply: str, reason: str) -> None:
    result = check_reply(tidy_reply(reply), FARGO)
    assert result is not None and reason in result, result


@pytest.mark.parametrize(
    "reply",
    [
        "Fargo (1996) is a darkly tense crime thriller from Joel Coen.",
        "You will enjoy Fargo because, like Pulp Fiction, it is violent and very tense.",
        "Fargo (1996) is a crime thriller directed by Joel Coen; fans of Pulp Fiction (1994) "
        "will enjoy it.",
    ],
)
def test_check_reply_accepts(reply: str) -> None:
    assert check_reply(tidy_reply(reply), FARGO) is None


def test_titles_are_not_mistaken_for_facts() -> None:
    rec = Recommendation(
        "135",
        "2001: A Space Odyssey (1968)",
        0.8,
        Evidence(because_of=(Contribution("1", "Oscar (1991)", 0.5),)),
    )
    reply = (
        "Since you liked Oscar (1991), you will enjoy 2001: A Space Odyssey (1968) "
        "because you will enjoy it too."
    )
    assert check_reply(reply, rec) is None


def test_failing_catalog_matcher_means_template() -> None:
    def broken(text: str) -> list[str]:
        raise KeyError("index not built")

    model = fake("Fargo (1996) is a darkly tense crime story you will enjoy.")
    [explanation] = explain([FARGO], model, catalog_titles=broken)
    assert explanation.source == "template"
    assert (explanation.rejected_reason or "").startswith("title check failed")


def test_tidy_reply_keeps_two_complete_sentences() -> None:
    assert tidy_reply('  "Fargo is great.  E.T. the Extra-Terrestrial too. More. And') == (
        "Fargo is great. E.T. the Extra-Terrestrial too."
    )
    assert tidy_reply("Mr. Pink likes Fargo. It is cut off and") == "Mr. Pink likes Fargo."
    assert tidy_reply('You will enjoy Fargo because of the cast."') == (
        "You will enjoy Fargo because of the cast."
    )


def test_explanation_to_dict() -> None:
    assert Explanation("1", "t", "template", "x").to_dict() == {
        "item_id": "1",
        "text": "t",
        "source": "template",
        "rejected_reason": "x",
    }


# -------------------------------------------------------------------------- prompts and imports


def test_prompt_loader() -> None:
    assert "explain" in available_prompts()
    text = load_prompt("explain")
    for placeholder in ("{title}", "{request}", "{liked}", "{attributes}"):
        assert placeholder in text
    with pytest.raises(ConfigError, match="available"):
        load_prompt("no-such-prompt")
    with pytest.raises(ConfigError, match="bare file name"):
        load_prompt("../explain")


def test_importing_explain_and_llm_does_not_import_torch() -> None:
    code = (
        "import sys, recagents.graph.explain, recagents.graph.llm; "
        "heavy = [m for m in ('torch', 'transformers') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_allowed_titles_with_nested_parentheses_are_not_flagged():
    from recagents.graph.explain import verify_titles

    text = (
        "Because you liked Queen Margot (Reine Margot, La) (1994) and Priest (1994); "
        "it shares Drama."
    )
    allowed = ["Queen Margot (Reine Margot, La) (1994)", "Priest (1994)", "Kolya (1996)"]
    assert verify_titles(text, allowed) == []
    assert verify_titles(text + " Also Titanic (1997).", allowed) == ["Titanic (1997)"]


def test_displayed_forms_of_allowed_titles_are_not_flagged():
    from recagents.graph.explain import verify_titles

    text = "Because you liked The Tin Drum (Blechtrommel, Die) (1979); it shares Drama."
    assert verify_titles(text, ["Tin Drum, The (Blechtrommel, Die) (1979)"]) == []


# ------------------------------------------------------------------- a busy or cancelled model


class ControlRecordingFake(RecordingFake):
    """Records the call control each call ran under (what the embedded model reads)."""

    seen: list[Any] = Field(default_factory=list)
    busy: bool = False
    release: Any = Field(default_factory=threading.Event)
    stuck: bool = False

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        from recagents.graph.generation import ModelBusy, current_call

        control = current_call()
        self.seen.append(control)
        if self.busy:
            raise ModelBusy(f"busy (waited {control.wait_s if control else None} s)")
        if self.stuck:
            self.release.wait(5)
        return super()._generate(messages, *args, **kwargs)


def test_a_busy_model_gives_template_busy_reasons_with_one_wait_per_turn() -> None:
    model = ControlRecordingFake(messages=iter([]), busy=True)
    first, second = explain([FARGO, FARGO], model, max_llm_items=2, busy_wait_s=0.25)
    assert [first.source, second.source] == ["template-busy", "template-busy"]
    assert first.text == template_reason(FARGO)
    assert "busy" in (first.rejected_reason or "") and "0.25" in (first.rejected_reason or "")
    assert len(model.seen) == 1  # the second item did not wait again
    assert model.seen[0] is not None and model.seen[0].wait_s == 0.25


def test_a_timed_out_call_is_cancelled_for_the_model_to_see() -> None:
    model = ControlRecordingFake(
        messages=iter([AIMessage(content="Fargo (1996) is great fun for you.")]), stuck=True
    )
    try:
        [explanation] = explain([FARGO], model, timeout_s=0.05)
        [control] = model.seen
        assert control is not None and control.cancelled  # set before explain returned
    finally:
        model.release.set()
    assert explanation.source == "template" and "TimeoutError" in (
        explanation.rejected_reason or ""
    )


def test_a_call_in_time_is_not_cancelled() -> None:
    model = ControlRecordingFake(messages=iter([AIMessage(content="x")]))
    explain([FARGO], model, timeout_s=30)
    [control] = model.seen
    assert control is not None and not control.cancelled and control.wait_s is None
