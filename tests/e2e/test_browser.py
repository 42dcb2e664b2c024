"""The chat app in a real headless Chromium: what a person sees and clicks."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.api.server import block_of
from tests.e2e.conftest import TOKEN

# Gradio's queue calls a pandas option that pandas 3 deprecates: not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")

#: Records every text the newest assistant bubble shows, to prove the reply streams in.
WATCH_STREAM = """
() => {
  window.__replies = [];
  const chat = document.querySelector('#chat');
  new MutationObserver(() => {
    const bots = chat.querySelectorAll('.message.bot, [data-testid="bot"]');
    const last = bots[bots.length - 1];
    if (last) window.__replies.push(last.innerText.length);
  }).observe(chat, {subtree: true, childList: true, characterData: true});
}
"""


def _open(page, url: str) -> None:
    page.goto(url)
    expect(page.locator("#message textarea")).to_be_visible()
    expect(page.locator("#chat")).to_contain_text("Tell me a film you love")


def _send(page, text: str) -> None:
    page.fill("#message textarea", text)
    page.click("#send")


def _card_ids(page) -> list[str]:
    return page.eval_on_selector_all(
        ".ra-card", "cards => cards.filter(c => c.offsetParent).map(c => c.dataset.itemId)"
    )


def test_chat_cards_thumbs_up_and_why(ui_server, page, tmp_path, external_requests):
    _open(page, ui_server.url)
    page.evaluate(WATCH_STREAM)
    _send(page, "I loved Film 9")
    expect(page.locator("#card-4 .ra-card")).to_be_visible()
    expect(page.locator("#chat")).to_contain_text("Here are my picks")
    # No chat model: the reply appears at once (the "…" placeholder, then the reply), not
    # replayed word by word; and it is one sentence, the reasons are on the cards.
    assert len(set(page.evaluate("window.__replies"))) <= 4, "the reply was replayed"
    expect(page.locator("#chat")).to_contain_text("5 films on the cards, led by")
    expect(page.locator("#chat")).not_to_contain_text("Because you liked")
    first = _card_ids(page)
    assert len(first) == 5 and all(block_of(i) == 1 for i in first)
    card = page.locator("#card-0")
    expect(card.locator(".ra-year")).to_have_text("1991")
    expect(card.locator(".ra-genres")).to_have_text("Comedy")
    # a bounded match, never a raw score (a -1e9 sentinel once reached the cards)
    expect(card.locator(".ra-score")).to_have_text(re.compile(r"^\d{1,3}% match$"))
    cards_text = " ".join(page.locator(".ra-card").all_inner_texts())
    assert not re.search(r"-\d{5,}", cards_text), cards_text
    expect(card.locator(".ra-reason")).to_contain_text("Because you liked Film 9 (1991)")
    shot = Path(os.environ.get("E2E_SCREENSHOTS", tmp_path)) / "cards.png"
    page.screenshot(path=str(shot), full_page=True)

    liked_title = card.locator(".ra-title").inner_text()
    page.click("#like-0")
    expect(card.locator(".ra-liked")).to_be_visible()
    expect(page.locator("#profile")).to_contain_text(liked_title)
    expect(page.locator("#chat")).to_contain_text(f"Noted: you like {liked_title}")

    _send(page, "more please")
    expect(page.locator("#card-0 .ra-card")).not_to_have_attribute("data-item-id", first[0])
    second = _card_ids(page)
    assert first[0] not in second
    expect(page.locator("#card-0 .ra-reason")).to_contain_text(f"{liked_title} (1991)")

    why = page.locator("#card-0 details.ra-why")
    expect(why).not_to_have_attribute("open", "")
    page.click("#card-0 summary")
    expect(why).to_have_attribute("open", "")
    expect(why).to_contain_text("Rests on films you liked")
    expect(why).to_contain_text(f"{liked_title} (1991)")
    expect(why).to_contain_text("Shares with them: genre Comedy")
    expect(why.locator(".ra-bar")).to_be_visible()
    shares = [
        int(re.search(r"(\d+)%", t).group(1))
        for t in why.locator(".ra-legend li").all_inner_texts()
    ]
    assert shares and 98 <= sum(shares) <= 102, shares  # normalised shares, not raw scores
    expect(why).not_to_contain_text("final score")
    assert external_requests == [], f"the page fetched from outside: {external_requests}"


def test_thumbs_down_hides_the_item_and_sessions_do_not_share_memory(ui_server, new_page):
    alice, bob = new_page(), new_page()
    _open(alice, ui_server.url)
    _open(bob, ui_server.url)
    _send(alice, "I loved Film 9")
    _send(bob, "I loved Film 25")
    expect(alice.locator("#card-0 .ra-card")).to_be_visible()
    expect(bob.locator("#card-0 .ra-card")).to_be_visible()
    assert all(block_of(i) == 1 for i in _card_ids(alice))
    assert all(block_of(i) == 3 for i in _card_ids(bob))
    expect(alice.locator("#profile")).to_contain_text("Film 9 (1991)")
    expect(alice.locator("#profile")).not_to_contain_text("Film 25")
    expect(bob.locator("#profile")).not_to_contain_text("Film 9")

    rejected = _card_ids(bob)[0]
    bob.click("#dislike-0")
    expect(bob.locator("#card-0 .ra-disliked")).to_be_visible()
    _send(bob, "more please")
    expect(bob.locator("#card-0 .ra-card")).not_to_have_attribute("data-item-id", rejected)
    assert rejected not in _card_ids(bob)


def test_pick_a_user_start_over_and_search(ui_server, page):
    _open(page, ui_server.url)
    picker = page.locator("#user-pick input")
    picker.click()
    picker.fill("u17")
    picker.press("Enter")
    expect(page.locator("#chat")).to_contain_text("MovieLens user u17")
    _send(page, "recommend me something")
    expect(page.locator("#card-0 .ra-card")).to_be_visible()
    assert block_of(_card_ids(page)[0]) == 2  # u17 lives in block 2
    expect(page.locator("#profile")).to_contain_text("MovieLens user u17")

    page.click("#start-over")
    expect(page.locator("#card-0")).to_be_hidden()
    expect(page.locator("#chat")).not_to_contain_text("Here are my picks")

    page.get_by_text("Search the catalog").click()
    box = page.locator("#search-box textarea")
    box.fill("Film 3")
    box.press("Enter")
    expect(page.locator("#search-results")).to_contain_text("Film 31")
    expect(page.locator("#search-results")).to_contain_text("Drama")


def test_a_search_result_can_be_liked(ui_server, page):
    _open(page, ui_server.url)
    page.get_by_text("Search the catalog").click()
    box = page.locator("#search-box textarea")
    box.fill("Film 31")
    box.press("Enter")
    results = page.locator("#search-results")
    expect(results).to_contain_text("Film 31")
    results.get_by_role("gridcell", name="Film 31", exact=True).first.click()
    expect(page.locator("#search-picked")).to_contain_text("Picked Film 31 (1993)")
    page.click("#search-like")
    expect(page.locator("#profile")).to_contain_text("Film 31 (1993)")
    expect(page.locator("#chat")).to_contain_text("Noted: you like Film 31 (1993)")
    _send(page, "recommend me something")  # the liked film now drives the picks
    expect(page.locator("#card-0 .ra-card")).to_be_visible()
    assert all(block_of(i) == 3 for i in _card_ids(page))


def test_cards_are_usable_on_a_phone(ui_server, new_page):
    phone = new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    _open(phone, ui_server.url)
    _send(phone, "I loved Film 9")
    expect(phone.locator("#card-4 .ra-card")).to_be_visible()
    width = phone.evaluate("document.documentElement.clientWidth")
    assert phone.evaluate("document.documentElement.scrollWidth") <= width  # no sideways scroll
    for i in range(5):
        box = phone.locator(f"#card-{i}").bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width + 1, box
        like = phone.locator(f"#like-{i}").bounding_box()
        assert like is not None and like["x"] + like["width"] <= width + 1
        assert like["height"] >= 24  # a thumb can hit it
    phone.locator("#card-0 summary").scroll_into_view_if_needed()
    phone.click("#card-0 summary")
    expect(phone.locator("#card-0 .ra-bar")).to_be_visible()
    phone.click("#like-0")
    expect(phone.locator("#card-0 .ra-liked")).to_be_visible()


def test_titles_and_messages_are_shown_as_written_not_as_markdown(ui_server, page):
    _open(page, ui_server.url)
    _send(page, "I loved M*A*S*H and _Film 9_")
    bubble = page.locator("#chat .message.user, #chat [data-testid='user']").last
    expect(bubble).to_contain_text("I loved M*A*S*H and _Film 9_")
    assert bubble.locator("em, strong").count() == 0


def test_cards_come_first_and_the_model_phrasing_follows(phrasing_server, page):
    from recagents.ui.formatting import DRAFT_NOTE
    from tests.api.server import PHRASING

    _open(page, phrasing_server.url)
    _send(page, "I loved Film 9")
    note = DRAFT_NOTE.strip("_")
    # Within the model's 3 s: the picks with template reasons, and a note that more is coming.
    expect(page.locator("#chat")).to_contain_text(note, timeout=2_500)
    expect(page.locator("#card-4 .ra-card")).to_be_visible(timeout=2_500)
    draft = _card_ids(page)
    expect(page.locator("#card-0 .ra-reason")).not_to_contain_text(PHRASING.strip())
    # Then the model's words appear in the top card as it writes them, marked as a draft...
    drafting = page.locator("#card-0 .ra-drafting")
    first_words, last_word = " ".join(PHRASING.split()[:2]), PHRASING.split()[-1]
    expect(drafting).to_contain_text(first_words, timeout=6_000)
    expect(drafting).to_contain_text("draft")
    partial = drafting.inner_text()
    assert last_word not in partial, "the words did not come one by one"
    # ...and the verified phrasing replaces them, and the note goes.
    expect(page.locator("#card-0 .ra-reason")).to_contain_text(PHRASING.strip())
    expect(page.locator("#card-0 .ra-drafting")).to_have_count(0)
    expect(page.locator("#chat")).not_to_contain_text(note)
    expect(page.locator("#chat")).to_contain_text("led by")
    assert _card_ids(page) == draft  # same picks, same order


def test_errors_reach_the_person_as_readable_messages(ui_server, page):
    _open(page, ui_server.url)
    _send(page, "   ")
    expect(page.locator("#chat")).to_contain_text("Please type a message first")
    page.fill("#message textarea", "x" * 20_001)
    page.click("#send")
    expect(page.locator("#chat")).to_contain_text("I read at most 20,000")

    service = ui_server.app.state.service
    working = service.recommender

    class Broken:
        def __getattr__(self, name):
            return getattr(working, name)

        def chat(self, *args, **kwargs):
            raise RuntimeError("the vector store went away")

        def chat_stream(self, *args, **kwargs):  # fails once the turn is under way
            yield from ()
            raise RuntimeError("the vector store went away")

    service.swap(Broken())
    try:
        _send(page, "I loved Film 9")
        expect(page.locator("#chat")).to_contain_text(
            "Sorry, something went wrong: the vector store went away"
        )
    finally:
        service.swap(working)
    expect(page.locator("#chat")).not_to_contain_text("Traceback")
    _send(page, "I loved Film 9")  # and the next turn works again
    expect(page.locator("#card-0 .ra-card")).to_be_visible()


def test_learning_tab_shows_rounds_agents_and_trains(ui_server, page):
    _open(page, ui_server.url)
    page.get_by_role("tab", name="Learning").click()
    expect(page.locator("#learning-summary")).to_contain_text("chosen round")
    expect(page.locator("#rounds-plot img")).to_be_visible()
    agents = page.locator("#agents-table")
    for role in ("user_profile", "item", "ranking"):
        expect(agents).to_contain_text(role)
    expect(agents).to_contain_text("serving round 0 (text seeds); trained to round 2")

    before = ui_server.app.state.service.recommender
    page.click("#train")
    expect(page.locator("#train-status")).to_contain_text("Training finished", timeout=40_000)
    expect(agents).to_contain_text("trained to round 1")  # the new run's agents now serve
    assert ui_server.app.state.service.recommender is not before
    page.get_by_role("tab", name="Chat").click()
    _send(page, "I loved Film 9")  # the swapped-in model answers
    expect(page.locator("#card-0 .ra-card")).to_be_visible()


def test_exposed_ui_asks_for_a_login(login_server, page):
    page.goto(login_server.url)
    expect(page.get_by_text("Log in as 'recagents'")).to_be_visible()
    page.locator("input[type=text]").fill("recagents")
    page.locator("input[type=password]").fill("wrong")
    page.get_by_role("button", name="Login").click()
    expect(page.get_by_text("Incorrect Credentials")).to_be_visible()
    page.locator("input[type=text]").fill("recagents")  # the form clears itself on failure
    page.locator("input[type=password]").fill(TOKEN)
    page.get_by_role("button", name="Login").click()
    expect(page.locator("#message textarea")).to_be_visible()
    _send(page, "I loved Film 9")
    expect(page.locator("#card-0 .ra-card")).to_be_visible()


def test_api_docs_render_offline(ui_server, page, external_requests):
    page.goto(f"{ui_server.url}/docs")
    expect(page.get_by_text("/api/v1/chat/stream")).to_be_visible()
    expect(page.get_by_text("/api/v1/recommendations/{user_id}")).to_be_visible()
    assert external_requests == [], f"the docs fetched from outside: {external_requests}"


def test_the_page_shows_preparation_progress_then_becomes_the_chat(page, tmp_path):
    """What ``serve`` answers while it loads, in a browser: progress, then the chat by itself."""
    import httpx
    from langgraph.checkpoint.memory import InMemorySaver

    from recagents.ui.app import create_app
    from recagents.ui.server import Preparation, SwitchApp, preparing_app
    from tests.api.server import block_recommender
    from tests.support.server import BackgroundServer

    preparation = Preparation()
    app = SwitchApp(preparing_app(preparation))
    server = BackgroundServer(app)
    server.thread.start()  # not start(): that waits for a 200, which comes only once ready
    try:
        preparation.update(0.3, "round 2: valid ndcg@10 0.41")
        page.goto(server.url)
        expect(page.locator("#preparing")).to_contain_text("getting ready")
        expect(page.locator("#preparing")).to_contain_text("30%")
        expect(page.locator("#step")).to_have_text("round 2: valid ndcg@10 0.41")
        answer = httpx.get(f"{server.url}/api/v1/health", timeout=5)
        assert answer.status_code == 503 and answer.json()["status"] == "preparing"
        preparation.update(0.6, "round 5")
        expect(page.locator("#preparing")).to_contain_text("60%", timeout=10_000)  # reloads

        app.switch(create_app(block_recommender(tmp_path, InMemorySaver())))
        expect(page.locator("#message textarea")).to_be_visible(timeout=15_000)  # no click needed
        _send(page, "I loved Film 9")
        expect(page.locator("#card-0 .ra-card")).to_be_visible()
        assert httpx.get(f"{server.url}/api/v1/health", timeout=5).status_code == 200
    finally:
        server.stop()
