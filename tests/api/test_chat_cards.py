"""The chat tab's card items: the bounded ``match`` shows as a percentage, a raw score never."""

from __future__ import annotations

from recagents.types import Evidence, Recommendation
from recagents.ui import formatting as fmt
from recagents.ui.gradio.chat import card_item


def test_the_match_reaches_the_card_as_a_percentage_and_the_raw_score_never():
    far = Recommendation("i1", "Film 1 (1990)", -999999999.09, Evidence(), match=0.0)
    item = card_item(far)
    assert item["match"] == 0.0
    html = fmt.card_html(item, rank=1)
    assert "0% match" in html and "999" not in html  # no raw score on the card, ever
    matched = card_item(Recommendation("i1", "Film 1 (1990)", 3.2, Evidence(), match=0.734))
    assert matched["match"] == 0.734
    assert "73% match" in fmt.card_html(matched, rank=1)
