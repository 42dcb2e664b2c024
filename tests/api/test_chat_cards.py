"""The chat tab's card items: a bounded ``match`` shows as a percentage, a raw score never."""

from __future__ import annotations

from dataclasses import dataclass

from recagents.types import Evidence, Recommendation
from recagents.ui import formatting as fmt
from recagents.ui.gradio.chat import card_item


@dataclass(frozen=True)
class Matched(Recommendation):
    """An engine item that carries the bounded match (0..1) beside its raw score."""

    match: float | None = None


def test_a_match_attribute_reaches_the_card_as_a_percentage():
    plain = Recommendation("i1", "Film 1 (1990)", -999999999.09, Evidence())
    item = card_item(plain)
    assert "match" not in item or item["match"] is None
    assert "999" not in fmt.card_html(item, rank=1)  # no raw score on the card, ever
    matched = card_item(Matched("i1", "Film 1 (1990)", 3.2, Evidence(), match=0.734))
    assert matched["match"] == 0.734
    assert "73% match" in fmt.card_html(matched, rank=1)
