"""ReDial benchmark: conversational recommendation on real dialogues, MovieLens-small catalog.

Usage:
    .venv/bin/python bench/redial.py [--dialogues ../shared/data/redial/valid.jsonl]
        [--redial-train ../shared/data/redial/train.jsonl | none] [--seed 2020] [--home DIR]
        [--with-dialogues ../shared/data/redial/train.jsonl [--dialogue-weight W]]
        [--score-slice A:B] [--quick] [--json]

Relative ``--dialogues`` / ``--redial-train`` paths that do not exist from the working directory
are taken relative to the repository root, so the defaults are ``/work/shared/data/redial/*``
when the repo is ``/work/main``. The data is read in place, never copied.

ReDial (Li et al., NeurIPS 2018, CC BY 4.0) holds crowd-sourced dialogues where a seeker asks for
movies and a recommender suggests some; every movie is written ``@<movieId>`` and
``movieMentions`` names it ``Title (Year)``. Published Recall@10 on the full ReDial test set,
with their own ~6.9k-movie catalog: KBRD 0.169, UniCRS 0.215. The numbers here are not directly
comparable: the catalog is MovieLens-small (9k movies, none after 2016), the dialogues are a
100-dialogue subset, and only targets that exist in the catalog are scored.

Protocol (nothing from the target message or later is ever read):

1. Agents: ``train_agents(rs_split(movielens-small, seed), run_name="redial")`` in ``--home`` (a
   temporary folder by default; a finished run already there is reused with ``resume=True``).
2. Catalog mapping: every ReDial movie id maps to a catalog item through
   :meth:`CatalogMatcher.find` on its ``Title (Year)`` (cached per title). A match is kept only
   when the ReDial title has no year or the years differ by at most one: without that check the
   fuzzy matcher sends "Sing (2016)" to "The Sting (1973)" and "Beauty and the Beast (2017)" to
   the 1991 film, because the catalog stops in 2016 and ReDial is mostly 2017-2018 talk.
3. Targets: at each recommender message (``senderWorkerId == respondentWorkerId``), every
   ``@id`` the recommender suggested (``respondentQuestions[id]["suggested"] == 1``, falling back
   to ``initiatorQuestions`` when the recommender's form lacks the movie) that was not mentioned
   earlier in the dialogue is a target mention. ``matched_share`` is the share of those that map
   to the catalog; only mapped ones are scored (``targets``). Repeated mentions are skipped
   (standard practice: re-naming a movie already on the table is not a recommendation).
4. Input: the messages before that recommender message, with every ``@id`` replaced by the
   movie's catalog display title in quotes (or, when it is not in the catalog, its ReDial title
   without the year, so the year is not misread as "from 2017"). Each seeker message goes through
   :meth:`IntentParser.parse` on its own (a concatenation would pass the parser's 2,000-character
   cap) with ``shown`` = the catalog movies of the recommender's messages since the seeker last
   spoke, so "loved that one" and "seen it" land on the right movie. Sentiment about the
   ``@``-marked movies (liked / disliked / rejected / seen / anchor), genres, years and people
   accumulate over the dialogue the way the chat graph folds turns (latest non-empty genre
   request and people win; genre exclusions add up; a year bound stays until replaced). ReDial
   marks every movie mention with ``@``, so titles the parser spots in plain text ("It was good"
   -> "It (1990)") are ignored. The questionnaire labels (``liked``/``seen``) are never used:
   they are filled in after the dialogue.
5. Profile: every catalog movie mentioned so far by either side (a real CRS sees its own
   suggestions too), minus those the seeker disliked or rejected, is the cold user's ``liked``
   list, and the seeker's words so far (all-MiniLM-L6-v2, unit length, :data:`TEXT_WEIGHT`) its
   ``text_vector``: ``TrainedAgents.profile_scores(None, liked, text_vector)``, the chat graph's
   cold-start route.
6. Ranking: movies mentioned earlier are excluded; a genre request is a hard filter (any of the
   genres), a year range and people too, as in the chat graph. Recall@k = the target is in the
   top k, averaged over targets, for k = 1, 10, 50.

The product's own path (the rows the issue asks for): :class:`ProductPath` runs the chat graph's
``score_candidates`` and ``pick`` nodes on the state a cold chat thread holds after the dialogue
so far (liked = the profile of step 5, disliked/rejected/seen and the hard constraints as parsed;
no text vector, as the server passes none), so the ColdStart blend (one to three films), the
popular-and-well-liked list (none), candidate retrieval from the item agent's serving vectors
under the constraints and the blocked films are the server's; ``pick`` lists 50 films and a
target outside them is a miss. ``--with-dialogues FILE`` ingests FILE into the bench home with
the library's ReDial reader (``recagents ingest --dialogues``), leaves out every dialogue that
is scored, and trains the agents on the union (``train_agents(..., dialogues=[name])``, what
``recagents train --with-dialogues`` does; run ``redial-<corpus>-w<weight>``); its product-path
row is then the main method. ``--score-slice 400:500`` with ``--dialogues train.jsonl`` is the
inner split the dialogue weight was chosen on (the 100 scored dialogues are left out of the
training corpus); ``--quick`` scores only that row. The MovieLens test NDCG@10 of both runs
(catalog users only) is printed under the table.

Rows of the table (same targets, exclusions and hard filters unless said otherwise):

- popularity (MovieLens train interaction counts); text only (cosine of the seeker's words with
  item texts); agents fed only the mentioned movies, no understanding and no filters;
- agents + understanding: the protocol above, MovieLens-trained only, calling
  ``TrainedAgents.profile_scores`` directly (with the seeker's words as a text vector): not the
  server's path, kept for comparison with earlier figures;
- product path, MovieLens-trained agents; product path, agents trained with the dialogues (with
  ``--with-dialogues``): see above. The main method (top-level ``recall@1/10/50`` keys) is the
  product path, with dialogues when given.
- With ``--redial-train`` (default ``train.jsonl``, 500 dialogues): ReDial-train popularity
  (dialogues mentioning the movie), ReDial-train co-mentions (:class:`CoMentions`: dialogues
  mentioning the movie together with the ones mentioned so far, older mentions decayed by
  :data:`CO_MENTION_DECAY`), and that ranking fused with the agents' (log-rank, agents weighted
  :data:`FUSION_WEIGHT`); the last is ``with_redial_train`` in the JSON. This is the signal
  KBRD/UniCRS learn from ReDial's training dialogues; a scored dialogue that is itself in the
  training file is left out of the counts, so ``--dialogues train.jsonl`` is leave-one-out.

Tuning (all on ``train.jsonl``, 1,277 targets, Recall@10; valid was only run at the end):
popularity 0.092 (0.027 without the hard filters; the people filter alone adds 0.02); text only
0.046; agents on the mentioned movies 0.067 (0.096 with the filters); minus disliked/rejected
movies 0.096 (no change); a second profile on the last 1/2/3 mentions, z-scores added: 0.087 /
0.092 / 0.095 (dropped); the ranking agent's EASE item-item alone on the mentions 0.104; MovieLens
popularity restricted to recent ratings or recent films: at most 0.093; genres the recommender
names as filters too: no gain; the seeker's words as ``text_vector`` (weight 0.5 / 1 / 2): 0.110 /
0.112 / 0.112 (kept, weight 1). ReDial-train popularity 0.149; co-mentions 0.188 (decay 1) / 0.190
(0.7); popularity-normalised co-mentions 0.177-0.182; co-mentions of later suggestions only 0.179;
fusion with the agents at weight 0 / 0.05 / 0.25 / 0.5: 0.191 / 0.193 / 0.192 / 0.182 (0.25 kept:
Recall@50 0.341 -> 0.359).

``hallucinated_titles``: at each target turn the top-10 of the main method gets its template
reason (:func:`recagents.graph.explain.template_reason`, built from the ranking agent's
evidence), and :func:`recagents.graph.explain.verify_titles` counts titles in it that are neither
the recommended movie
nor its cited evidence (``explained_items`` reasons checked), with the chat graph's detector
settings (exact catalog matches, attribute values are not titles; see :class:`TitleAudit`). No
other text is generated.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recagents.env import ensure_offline

ensure_offline()

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import torch  # noqa: E402

from recagents.agents.trainer import TrainedAgents, run_dir_for, train_agents  # noqa: E402
from recagents.config import Settings  # noqa: E402
from recagents.data import Dataset, load_dataset  # noqa: E402
from recagents.data.splits import rs_split  # noqa: E402
from recagents.encoder import encoder_from_settings  # noqa: E402
from recagents.graph.context import Context  # noqa: E402
from recagents.graph.deps import GraphDeps  # noqa: E402
from recagents.graph.engine import Engine  # noqa: E402
from recagents.graph.explain import template_reason, verify_titles  # noqa: E402
from recagents.graph.nodes import pick, score_candidates  # noqa: E402
from recagents.graph.understand import CatalogMatcher, IntentParser  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
REDIAL_DIR = REPO / ".." / "shared" / "data" / "redial"
DEFAULT_DIALOGUES = REDIAL_DIR / "valid.jsonl"
DEFAULT_TRAIN = REDIAL_DIR / "train.jsonl"
DATASET = "movielens-small"
KS = (1, 10, 50)
#: Scale of the seeker's text vector next to the liked movies in the cold user's profile.
TEXT_WEIGHT = 1.0
#: Each older mention counts this much less in the co-mention scores (tuned on train.jsonl).
CO_MENTION_DECAY = 0.7
#: Weight of the agents' log-rank next to the co-mentions' log-rank (tuned on train.jsonl).
FUSION_WEIGHT = 0.25
#: Largest gap between a ReDial year and the catalog year for a title match to count.
YEAR_TOLERANCE = 1

AGENTS = "agents + understanding"
FUSED = "ReDial-train co-mentions + agents + understanding"
PRODUCT = "product path (server's cold thread), MovieLens-trained agents"
PRODUCT_DIALOGUES = "product path, agents trained with ReDial-train dialogues"
#: Name of the corpus ``--with-dialogues`` ingests into the bench home.
CORPUS = "redial-train"

_MENTION = re.compile(r"@(\d+)")
_YEAR = re.compile(r"\(\s*(\d{4})\s*\)\s*$")


# ------------------------------------------------------------------------------ data model


@dataclass
class Turn:
    """What is known right before one recommender message, and the movies it suggests.

    Attributes:
        dialogue: Index of the dialogue in the file.
        conversation: ReDial ``conversationId``.
        targets: Catalog item indices suggested in this message (first mentions only).
        mentioned: Catalog item indices mentioned earlier (either side), in order of mention.
        liked: Items the seeker's words liked (including "loved that one" about a suggestion).
        disliked: Items the seeker's words disliked.
        rejected: Items the seeker turned down ("not that one").
        seen: Items the seeker said they had seen.
        anchors: Items the seeker named without a sentiment cue.
        constraints: Hard filters: ``genres_include``, ``genres_exclude``, ``year_from``,
            ``year_to``, ``people`` (only the keys the seeker asked for).
        seeker_text: The seeker's messages so far, one per line, mentions spelled out.
    """

    dialogue: int
    conversation: str
    targets: list[int]
    mentioned: list[int]
    liked: list[int] = field(default_factory=list)
    disliked: list[int] = field(default_factory=list)
    rejected: list[int] = field(default_factory=list)
    seen: list[int] = field(default_factory=list)
    anchors: list[int] = field(default_factory=list)
    constraints: dict[str, Any] = field(default_factory=dict)
    seeker_text: str = ""


@dataclass
class Corpus:
    """The target turns of a dialogue file and the counts behind ``matched_share``."""

    turns: list[Turn]
    dialogues: int
    target_mentions: int
    matched_mentions: int

    @property
    def matched_share(self) -> float:
        """Share of target mentions (new suggestions) that map to a catalog item."""
        return self.matched_mentions / max(1, self.target_mentions)


def read_dialogues(path: Path) -> list[dict[str, Any]]:
    """One dict per JSON line (ReDial's original format)."""
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _unique(values: Iterable[int]) -> list[int]:
    return list(dict.fromkeys(values))


class TitleMap:
    """ReDial ``Title (Year)`` -> catalog item index, with the year check, cached per title."""

    def __init__(self, dataset: Dataset, matcher: CatalogMatcher) -> None:
        self.dataset = dataset
        self.matcher = matcher
        self._years = dataset.items["year"].astype("float").to_numpy()
        self._cache: dict[str, int | None] = {}

    def __call__(self, title: str | None) -> int | None:
        """The catalog index a ReDial title means, or None when the catalog lacks it."""
        if not title or not title.strip():
            return None
        if title not in self._cache:
            self._cache[title] = self._map(title)
        return self._cache[title]

    def _map(self, title: str) -> int | None:
        found = self.matcher.find(title)
        if found is None:
            return None
        idx = self.dataset.item_map.index(found)
        year = _YEAR.search(title)
        if year is None:
            return idx
        catalog_year = self._years[idx]
        if np.isnan(catalog_year) or abs(int(year.group(1)) - catalog_year) > YEAR_TOLERANCE:
            return None
        return idx


def _suggested(dialogue: dict[str, Any], movie: str) -> bool:
    """Whether the recommender suggested ``movie``, per their form (else the seeker's)."""
    for key in ("respondentQuestions", "initiatorQuestions"):
        answers = dialogue.get(key) or {}
        if isinstance(answers, dict) and movie in answers:
            return answers[movie].get("suggested") == 1
    return False


# ---------------------------------------------------------------------------- dialogue walk


class DialogueReader:
    """Turns ReDial dialogues into :class:`Turn` objects (the text understanding lives here)."""

    def __init__(self, dataset: Dataset, parser: IntentParser, titles: TitleMap) -> None:
        self.dataset = dataset
        self.parser = parser
        self.titles = titles

    def _spell_out(self, text: str, mentions: dict[str, str]) -> str:
        """``@id`` -> ``"Catalog Title (Year)"``, or the ReDial title without its year."""

        def replace(match: re.Match[str]) -> str:
            raw = mentions.get(match.group(1)) or ""
            idx = self.titles(raw)
            if idx is not None:
                return f'"{self.titles.matcher.display(self.dataset.item_map.external(idx))}"'
            return f'"{_YEAR.sub("", raw).strip()}"' if raw.strip() else "a movie"

        return _MENTION.sub(replace, text)

    def read(self, dialogues: Sequence[dict[str, Any]]) -> Corpus:
        """All target turns of ``dialogues``, in order."""
        turns: list[Turn] = []
        target_mentions = matched = 0
        for number, dialogue in enumerate(dialogues):
            found, n_targets, n_matched = self._walk(number, dialogue)
            turns.extend(found)
            target_mentions += n_targets
            matched += n_matched
        return Corpus(turns, len(dialogues), target_mentions, matched)

    def _walk(self, number: int, dialogue: dict[str, Any]) -> tuple[list[Turn], int, int]:
        mentions: dict[str, str] = dialogue.get("movieMentions") or {}
        if not isinstance(mentions, dict):
            mentions = {}
        recommender = dialogue.get("respondentWorkerId")
        external = self.dataset.item_map.external
        state = Turn(number, str(dialogue.get("conversationId")), [], [])
        seen_ids: set[str] = set()
        shown: list[int] = []
        seeker_lines: list[str] = []
        turns: list[Turn] = []
        n_targets = n_matched = 0
        for message in dialogue.get("messages") or []:
            text = str(message.get("text") or "")
            ids = list(dict.fromkeys(_MENTION.findall(text)))
            items = [i for i in (self.titles(mentions.get(m)) for m in ids) if i is not None]
            if message.get("senderWorkerId") == recommender:
                new = [m for m in ids if m not in seen_ids and _suggested(dialogue, m)]
                targets = [i for i in (self.titles(mentions.get(m)) for m in new) if i is not None]
                n_targets += len(new)
                n_matched += len(targets)
                targets = [i for i in _unique(targets) if i not in state.mentioned]
                if targets:
                    turns.append(self._snapshot(state, targets, seeker_lines))
                shown = _unique([*shown, *items])
            else:
                spelled = self._spell_out(text, mentions)
                seeker_lines.append(spelled)
                intent = self.parser.parse(spelled, [external(i) for i in shown])
                # only @-marked movies and the suggestions the seeker answers count
                self._fold(state, intent, set(items) | set(shown), items)
                shown = []
            state.mentioned = _unique([*state.mentioned, *items])
            seen_ids.update(ids)
        return turns, n_targets, n_matched

    def _fold(self, state: Turn, intent: Any, allowed: set[int], items: list[int]) -> None:
        """Accumulate one seeker turn into the running state (chat-graph semantics)."""
        index = self.dataset.item_map.index

        def ours(values: Sequence[str]) -> list[int]:
            return [index(v) for v in values if index(v) in allowed]

        liked, disliked = ours(intent.liked), ours(intent.disliked)
        state.liked = [i for i in _unique([*state.liked, *liked]) if i not in disliked]
        state.disliked = [i for i in _unique([*state.disliked, *disliked]) if i not in liked]
        state.rejected = _unique([*state.rejected, *ours(intent.rejected)])
        state.seen = _unique([*state.seen, *ours(intent.seen)])
        classified = (
            set(liked) | set(disliked) | set(ours(intent.rejected)) | set(ours(intent.seen))
        )
        anchors = [*ours(intent.anchors), *(i for i in items if i not in classified)]
        state.anchors = _unique([*state.anchors, *anchors])
        constraints = state.constraints
        if intent.genres_exclude:
            constraints["genres_exclude"] = list(
                dict.fromkeys([*constraints.get("genres_exclude", []), *intent.genres_exclude])
            )
        for key in ("genres_include", "people"):
            if getattr(intent, key):
                constraints[key] = list(getattr(intent, key))
        for key in ("year_from", "year_to"):
            if getattr(intent, key) is not None:
                constraints[key] = int(getattr(intent, key))

    @staticmethod
    def _snapshot(state: Turn, targets: list[int], seeker_lines: list[str]) -> Turn:
        return Turn(
            dialogue=state.dialogue,
            conversation=state.conversation,
            targets=targets,
            mentioned=list(state.mentioned),
            liked=list(state.liked),
            disliked=list(state.disliked),
            rejected=list(state.rejected),
            seen=list(state.seen),
            anchors=list(state.anchors),
            constraints={
                k: (list(v) if isinstance(v, list) else v) for k, v in state.constraints.items()
            },
            seeker_text="\n".join(seeker_lines),
        )


# -------------------------------------------------------------------------------- scoring


def log_rank(scores: np.ndarray) -> np.ndarray:
    """``-log(1 + rank)``: a scale-free score for fusing rankings (ties by item index)."""
    order = np.argsort(-scores, kind="stable")
    ranks = np.empty(len(scores), dtype=np.float64)
    ranks[order] = np.arange(len(scores))
    return -np.log1p(ranks)


class CoMentions:
    """Movies mentioned in the same ReDial training dialogue (the one ReDial-trained signal).

    ``scores(turn)`` sums, over the movies mentioned so far, how many training dialogues also
    mention each catalog movie; older mentions count :data:`CO_MENTION_DECAY` times less per
    later mention. Ties (and turns with no mention yet) fall back to the number of training
    dialogues mentioning the movie, then MovieLens popularity. A dialogue that is itself in the
    training file is left out of the counts (leave-one-dialogue-out), so the train file can be
    scored without reading its own answers.

    Args:
        dialogues: ReDial training dialogues.
        titles: ReDial title -> catalog index.
        popularity: Last-resort tie-break (MovieLens train counts).
    """

    def __init__(
        self, dialogues: Sequence[dict[str, Any]], titles: TitleMap, popularity: np.ndarray
    ) -> None:
        n = len(popularity)
        self.popularity = np.log1p(np.asarray(popularity, dtype=np.float64))
        self.own: dict[str, list[int]] = {}
        rows: list[int] = []
        cols: list[int] = []
        for number, dialogue in enumerate(dialogues):
            mentions = dialogue.get("movieMentions") or {}
            items: list[int] = []
            for message in dialogue.get("messages") or []:
                for movie in _MENTION.findall(str(message.get("text") or "")):
                    idx = titles(mentions.get(movie) if isinstance(mentions, dict) else None)
                    if idx is not None:
                        items.append(idx)
            items = _unique(items)
            self.own[str(dialogue.get("conversationId"))] = items
            rows.extend([number] * len(items))
            cols.extend(items)
        matrix = sp.csr_matrix(
            (np.ones(len(rows), dtype=np.float64), (rows, cols)), shape=(len(dialogues), n)
        )
        self.counts = np.asarray(matrix.sum(axis=0)).ravel()
        self.pairs = (matrix.T @ matrix).tocsr()
        self.dialogues = len(dialogues)

    def prior(self, turn: Turn) -> np.ndarray:
        """Training dialogues mentioning each movie (this dialogue left out)."""
        counts = self.counts.copy()
        own = self.own.get(turn.conversation, [])
        counts[own] -= 1
        return counts

    def popularity_scores(self, turn: Turn) -> np.ndarray:
        """ReDial-train popularity, MovieLens popularity as tie-break."""
        return np.log1p(self.prior(turn)) + 1e-6 * self.popularity

    def scores(self, turn: Turn) -> np.ndarray:
        """Recency-weighted co-mention counts with the movies mentioned so far."""
        base = 1e-3 * np.log1p(self.prior(turn)) + 1e-6 * self.popularity
        mentioned = turn.mentioned
        if not mentioned:
            return base
        weights = CO_MENTION_DECAY ** np.arange(len(mentioned) - 1, -1, -1, dtype=np.float64)
        rows = self.pairs[mentioned]
        scores = np.asarray(rows.T @ weights).ravel()
        own = self.own.get(turn.conversation)
        if own:  # leave this dialogue out: it mentions every pair (mentioned x own) once
            scores[own] -= weights.sum()
        return scores + base


class Scorers:
    """The ranking methods compared, each ``turn -> scores over all catalog items``."""

    def __init__(
        self,
        engine: TrainedAgents,
        settings: Settings,
        co_mentions: CoMentions | None = None,
        *,
        text_weight: float = TEXT_WEIGHT,
        fusion_weight: float = FUSION_WEIGHT,
    ) -> None:
        self.engine = engine
        self.dataset = engine.context.dataset
        self.settings = settings
        self.co_mentions = co_mentions
        self.text_weight = text_weight
        self.fusion_weight = fusion_weight
        self.popularity = np.asarray(engine.context.train.sum(axis=0)).ravel().astype(np.float64)
        items = self.dataset.items
        self.genres = [{g for g in str(v).split("|") if g} for v in items["genres"].tolist()]
        self.years = items["year"].astype("float").to_numpy()
        self.people = [
            {p.strip().lower() for p in f"{row.director},{row.cast}".split(",") if p.strip()}
            for row in items.itertuples()
        ]
        self._text: dict[str, np.ndarray] = {}
        item_text = engine.context.item_text
        self._item_text = item_text / np.maximum(
            np.linalg.norm(item_text, axis=1, keepdims=True), 1e-9
        )
        self._agents_cache: dict[int, np.ndarray] = {}
        self.last_profile: Any = None

    # -- inputs

    @staticmethod
    def profile_items(turn: Turn) -> list[int]:
        """Mentioned movies the seeker did not dislike or turn down (the cold user's ``liked``)."""
        negative = set(turn.disliked) | set(turn.rejected)
        return [i for i in turn.mentioned if i not in negative]

    def encode(self, texts: Sequence[str]) -> None:
        """Encode (and cache) seeker texts in one batch; vectors are L2-normalised."""
        missing = [t for t in dict.fromkeys(texts) if t.strip() and t not in self._text]
        if not missing:
            return
        vectors = encoder_from_settings(self.settings).encode(missing)
        for text, vec in zip(missing, vectors, strict=True):
            self._text[text] = vec / (float(np.linalg.norm(vec)) or 1.0)

    def text_vector(self, turn: Turn) -> np.ndarray | None:
        """The seeker's words so far as one unit vector (None before they said anything)."""
        if not turn.seeker_text.strip():
            return None
        self.encode([turn.seeker_text])
        return self._text[turn.seeker_text]

    # -- methods

    def popularity_scores(self, turn: Turn) -> np.ndarray:
        """MovieLens train interaction counts."""
        return self.popularity.copy()

    def text_scores(self, turn: Turn) -> np.ndarray:
        """Cosine between the seeker's words and each item's text (no learning)."""
        vector = self.text_vector(turn)
        if vector is None:
            return self.popularity_scores(turn)
        return self._item_text @ vector + 1e-9 * self.popularity

    def mentions_scores(self, turn: Turn) -> np.ndarray:
        """Agents fed every mentioned movie as liked; no text understanding."""
        external = self.dataset.item_map.external
        profile = self.engine.profile_scores(None, [external(i) for i in turn.mentioned])
        return np.asarray(profile.scores, dtype=np.float64)

    def agents_scores(self, turn: Turn) -> np.ndarray:
        """Agents on the understood profile: liked movies plus the seeker's words."""
        key = id(turn)
        if key not in self._agents_cache:
            external = self.dataset.item_map.external
            vector = self.text_vector(turn)
            if vector is not None:
                vector = (self.text_weight * vector).astype(np.float32)
            liked = [external(i) for i in self.profile_items(turn)]
            profile = self.engine.profile_scores(None, liked, vector)
            self.last_profile = profile
            self._agents_cache = {key: np.asarray(profile.scores, dtype=np.float64)}
        return self._agents_cache[key]

    def redial_popularity_scores(self, turn: Turn) -> np.ndarray:
        """How many ReDial training dialogues mention each movie."""
        assert self.co_mentions is not None
        return self.co_mentions.popularity_scores(turn)

    def co_mention_scores(self, turn: Turn) -> np.ndarray:
        """ReDial-train co-mentions with the movies mentioned so far."""
        assert self.co_mentions is not None
        return self.co_mentions.scores(turn)

    def fused_scores(self, turn: Turn) -> np.ndarray:
        """Co-mention ranking fused with the agents' ranking (log-rank, weighted)."""
        return log_rank(self.co_mention_scores(turn)) + self.fusion_weight * log_rank(
            self.agents_scores(turn)
        )

    # -- filters

    def allowed(self, constraints: dict[str, Any]) -> np.ndarray | None:
        """Boolean mask of items passing the hard constraints (None: no constraint)."""
        if not constraints:
            return None
        mask = np.ones(self.dataset.n_items, dtype=bool)
        include = set(constraints.get("genres_include", []))
        exclude = set(constraints.get("genres_exclude", []))
        if include or exclude:
            mask &= np.array(
                [(not include or bool(include & g)) and not (exclude & g) for g in self.genres]
            )
        with np.errstate(invalid="ignore"):
            if constraints.get("year_from") is not None:
                mask &= self.years >= constraints["year_from"]
            if constraints.get("year_to") is not None:
                mask &= self.years <= constraints["year_to"]
        people = [p.lower() for p in constraints.get("people", [])]
        if people:
            mask &= np.array([all(p in names for p in people) for names in self.people])
        return mask


class ProductPath:
    """The server's own path for a cold chat thread: the graph's nodes on the thread's state.

    At each target turn the thread state is what the chat graph holds for a new user (no user
    id) after the dialogue so far: ``liked`` = the mentioned films the seeker did not dislike or
    turn down (as :meth:`Scorers.profile_items`), ``disliked``/``rejected``/``seen`` as the
    parser read them, the hard ``constraints``. The graph's own ``score_candidates`` and
    ``pick`` nodes then run, exactly as in a chat turn: :func:`~recagents.graph.deps.
    profile_for` -> :meth:`Engine.profile_scores` (ColdStart: the popular, well-liked list
    with no film, the blend with one to three, the agents beyond), candidates from the item
    agent's serving vectors under the hard constraints plus the best-scored items, blocked
    films dropped, ``pick``'s order (``choose``: a cold list is spread over genres). The
    seeker's words are not a text vector here because the server passes none. ``pick`` is
    asked for ``max(KS)`` films; a target outside that list is a miss at every k.
    """

    def __init__(self, engine: Engine, parser: IntentParser) -> None:
        self.engine = engine
        self.deps = GraphDeps(engine=engine, parser=parser)
        self.runtime: Any = type("Runtime", (), {"context": Context(k=max(KS))})()

    def state(self, turn: Turn) -> dict[str, Any]:
        """The cold thread's state after the dialogue so far."""
        external = self.engine.dataset.item_map.external
        return {
            "user_id": None,
            "liked": [external(i) for i in Scorers.profile_items(turn)],
            "disliked": [external(i) for i in turn.disliked],
            "rejected": [external(i) for i in turn.rejected],
            "seen": [external(i) for i in turn.seen],
            "anchors": [],
            "shown": [],
            "constraints": dict(turn.constraints),
            "intent": {},
        }

    def ranked(self, turn: Turn) -> list[int]:
        """The item indices the server would list, best first."""
        state = self.state(turn)
        state.update(score_candidates(self.deps, state, self.runtime))  # type: ignore[arg-type]
        out = pick(self.deps, state, self.runtime)  # type: ignore[arg-type]
        index = self.engine.dataset.item_map.index
        return [index(r["item_id"]) for r in out.get("ranked") or []]


def evaluate_product(corpus: Corpus, path: ProductPath, name: str) -> MethodResult:
    """Recall@k of the server's list at every target turn (see :class:`ProductPath`)."""
    result = MethodResult(name)
    began = time.perf_counter()
    for turn in corpus.turns:
        ranked = path.ranked(turn)
        position = {item: rank for rank, item in enumerate(ranked)}
        seeds = len(Scorers.profile_items(turn))
        bucket = "0 films" if not seeds else "1-3 films" if seeds <= 3 else "4+ films"
        counts = result.buckets.setdefault(bucket, [0, 0])
        for target in turn.targets:
            rank = position.get(target, len(ranked) + max(KS))
            result.targets += 1
            counts[0] += 1
            counts[1] += int(rank < 10)
            for k in KS:
                result.hits[k] += int(rank < k)
    result.seconds = time.perf_counter() - began
    return result


def target_rank(scores: np.ndarray, target: int) -> int:
    """0-based rank of ``target`` (ties broken by item index, as a stable sort would)."""
    value = scores[target]
    if not np.isfinite(value):
        return len(scores)
    ahead = int((scores > value).sum())
    ties = int((scores[:target] == value).sum())
    return ahead + ties


@dataclass
class MethodResult:
    """Recall@k of one method over the target turns."""

    name: str
    hits: dict[int, int] = field(default_factory=lambda: dict.fromkeys(KS, 0))
    targets: int = 0
    seconds: float = 0.0
    #: Product path only: targets and hits@10 by how many films the profile held.
    buckets: dict[str, list[int]] = field(default_factory=dict)

    def recall(self, k: int) -> float:
        """Share of targets ranked in the top ``k``."""
        return self.hits[k] / max(1, self.targets)


def evaluate(
    corpus: Corpus,
    scorer: Callable[[Turn], np.ndarray],
    name: str,
    scorers: Scorers,
    *,
    filters: bool = True,
    on_turn: Callable[[Turn, np.ndarray], None] | None = None,
) -> MethodResult:
    """Rank the catalog at every target turn with ``scorer``; mentioned movies excluded."""
    result = MethodResult(name)
    began = time.perf_counter()
    for turn in corpus.turns:
        scores = np.asarray(scorer(turn), dtype=np.float64).copy()
        if turn.mentioned:
            scores[turn.mentioned] = -np.inf
        if filters:
            mask = scorers.allowed(turn.constraints)
            if mask is not None and mask.any():
                scores[~mask] = -np.inf
        if on_turn is not None:
            on_turn(turn, scores)
        for target in turn.targets:
            rank = target_rank(scores, target)
            result.targets += 1
            for k in KS:
                result.hits[k] += int(rank < k)
    result.seconds = time.perf_counter() - began
    return result


def attribute_values(attributes: Iterable[str]) -> list[str]:
    """Evidence attribute values: ``["genre: Crime|Drama", "cast: X"]`` -> Crime, Drama, X."""
    values: list[str] = []
    for attribute in attributes:
        _, sep, value = attribute.partition(":")
        value = value if sep else attribute
        values.extend(v.strip() for v in value.split("|") if v.strip())
    return values


class TitleAudit:
    """Counts titles in the top-10's template reasons that nothing supports.

    The catalog detector follows the chat graph's (exact matches only, see
    ``recagents.graph.nodes.catalog_titles``); a match whose text is one of the evidence's own
    attribute values (a director or cast name) is counted apart, in ``person_names``: the catalog
    has "Will Ferrell: You're Welcome America..." whose colon alias is exactly "Will Ferrell", so
    "starring Will Ferrell" would otherwise read as naming that film.
    """

    def __init__(self, scorers: Scorers, matcher: CatalogMatcher) -> None:
        self.scorers = scorers
        self.matcher = matcher
        self.reasons = 0
        self.hallucinated = 0
        self.person_names = 0
        self.examples: list[str] = []

    def _catalog_titles(self, text: str, people: set[str]) -> list[str]:
        dataset = self.scorers.dataset
        found = []
        for mention in self.matcher.mentions(text):
            if mention.score < 100.0:
                continue
            if mention.text.strip().lower() in people:
                self.person_names += 1
                continue
            found.append(dataset.item_title(dataset.item_map.index(mention.item_id)))
        return found

    def __call__(self, turn: Turn, scores: np.ndarray) -> None:
        """Explain the top-10 of this turn and count unsupported titles."""
        profile = self.scorers.last_profile
        if profile is None:
            return
        top = np.argsort(-scores, kind="stable")[:10]
        for item in top:
            if not np.isfinite(scores[item]):
                continue
            rec = self.scorers.engine.recommendation(profile, int(item))
            allowed = [rec.title, *(c.title for c in rec.evidence.because_of)]
            attributes = attribute_values(rec.evidence.shared_attributes)
            people = {v.lower() for v in attributes}
            reason = template_reason(rec)
            self.reasons += 1
            offending = verify_titles(
                reason,
                allowed,
                lambda text, people=people: self._catalog_titles(text, people),
                not_titles=attributes,
            )
            self.hallucinated += len(offending)
            if offending and len(self.examples) < 5:
                self.examples.append(f"{offending}: {reason}")


# ------------------------------------------------------------------------------------ main


def finished_run(settings: Settings, dataset: Dataset, run_name: str = "redial") -> bool:
    """Whether ``settings.home`` already holds a finished run of that name to resume."""
    return (run_dir_for(settings, dataset.name, run_name) / "metrics.json").exists()


def build_engine(settings: Settings, dataset: Dataset, seed: int) -> TrainedAgents:
    """Train (or reuse a finished run of) the agents on movielens-small's RS split."""
    split = rs_split(dataset, seed)
    resume = finished_run(settings, dataset)
    return train_agents(split, settings, run_name="redial", progress=False, resume=resume)


def dialogue_engine(
    settings: Settings,
    dataset: Dataset,
    seed: int,
    path: Path,
    scored: set[str],
    weight: float | None,
) -> tuple[TrainedAgents, dict[str, Any]]:
    """Ingest ``path`` into the home (minus the scored dialogues), train the agents with it.

    The corpus is read by the library's ReDial reader with the matcher ``recagents ingest
    --dialogues`` uses, saved under the home like an ingested corpus, and the run trained by
    name (``train_agents(..., dialogues=[name])``, what ``recagents train --with-dialogues``
    does). A scored dialogue is never in the training corpus: with ``--dialogues`` drawn from
    the same file, its dialogues are left out before saving.
    """
    from recagents.data.dialogues import read_redial, save_dialogues
    from recagents.data.union import DIALOGUE_WEIGHT

    corpus = read_redial(path, dataset, CatalogMatcher(dataset).find, name=CORPUS)
    kept = [d for d in corpus.dialogues if d.dialogue_id not in scored]
    left_out = len(corpus.dialogues) - len(kept)
    name = CORPUS if not left_out else f"{CORPUS}-minus{left_out}"
    corpus.name, corpus.dialogues = name, kept
    save_dialogues(corpus, settings.home)
    weight = DIALOGUE_WEIGHT if weight is None else weight
    run_name = f"redial-{name}-w{weight:g}"
    resume = finished_run(settings, dataset, run_name)
    trained = train_agents(
        rs_split(dataset, seed),
        settings,
        run_name=run_name,
        progress=False,
        resume=resume,
        dialogues=[name],
        dialogue_weight=weight,
    )
    facts = {
        "corpus": name,
        "dialogues_in_corpus": len(kept),
        "scored_dialogues_left_out": left_out,
        "run": run_name,
        "resumed": resume,
        "train_seconds": round(trained.seconds, 1),
        **(trained.dialogues or {}),
    }
    return trained, facts


def movielens_metrics(trained: TrainedAgents, dataset: Dataset, seed: int) -> dict[str, Any]:
    """The run's MovieLens figures: chosen round, its valid NDCG@10, test NDCG/Recall@10.

    Test as ``recagents train`` reports it (full ranking, train and valid excluded), over the
    catalog's own users only (a union's dialogue users have no valid or test items).
    """
    from recagents.eval.metrics import evaluate_ranking

    split = rs_split(dataset, seed)
    train, valid, test = split.matrix("train"), split.matrix("valid"), split.matrix("test")
    metrics = evaluate_ranking(trained.score, test, train + valid)
    return {
        "best_round": trained.report.best_round,
        "valid_ndcg@10": round(float(trained.report.best_ndcg), 4),
        "test_ndcg@10": round(float(metrics["ndcg@10"]), 4),
        "test_recall@10": round(float(metrics["recall@10"]), 4),
        "test_users": int(metrics["users"]),
    }


def peak_rss_mb() -> float:
    """Peak resident memory of this process, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _resolve(path: Path) -> Path:
    """A relative path that does not exist from here is taken relative to the repo root."""
    if not path.is_absolute() and not path.exists():
        path = REPO / path
    return path.resolve()


def _row(result: MethodResult) -> dict[str, Any]:
    row: dict[str, Any] = {
        **{f"recall@{k}": round(result.recall(k), 4) for k in KS},
        "seconds": round(result.seconds, 1),
    }
    if result.buckets:
        row["recall@10_by_profile"] = {
            key: {"targets": n, "recall@10": round(hits / max(1, n), 4)}
            for key, (n, hits) in sorted(result.buckets.items())
        }
    return row


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Train, read the dialogues, score every method; returns the JSON report."""
    torch.set_num_threads(1)
    settings = Settings.load(home=args.home, seed=args.seed, dataset=DATASET)
    began = time.perf_counter()
    dataset = load_dataset(DATASET)
    load_seconds = time.perf_counter() - began
    resumed = finished_run(settings, dataset)

    began = time.perf_counter()
    # MovieLens train counts (what the agents' context holds), for the parser's tie-breaks
    popularity = np.asarray(rs_split(dataset, args.seed).matrix("train").sum(axis=0)).ravel()
    parser = IntentParser(dataset, popularity)
    titles = TitleMap(dataset, parser.matcher)
    scored_dialogues = read_dialogues(args.dialogues)
    if args.score_slice:
        start, _, stop = args.score_slice.partition(":")
        scored_dialogues = scored_dialogues[int(start or 0) : int(stop) if stop else None]
    corpus = DialogueReader(dataset, parser, titles).read(scored_dialogues)
    co_mentions = None
    if args.redial_train is not None:
        co_mentions = CoMentions(read_dialogues(args.redial_train), titles, popularity)
    read_seconds = time.perf_counter() - began

    union: dict[str, Any] = {}
    with_dialogues = None
    if args.with_dialogues is not None:
        scored = {str(d.get("conversationId")) for d in scored_dialogues}
        trained, union = dialogue_engine(
            settings, dataset, args.seed, args.with_dialogues, scored, args.dialogue_weight
        )
        print(f"  agents with dialogues ready in {trained.seconds:.0f}s", file=sys.stderr)
        union["movielens"] = movielens_metrics(trained, dataset, args.seed)
        with_dialogues = evaluate_product(
            corpus, ProductPath(Engine(trained), parser), PRODUCT_DIALOGUES
        )
        del trained
        if args.quick:  # tuning: only this row
            return {
                "recall@10": round(with_dialogues.recall(10), 4),
                "product_path_with_dialogues": _row(with_dialogues),
                "targets": with_dialogues.targets,
                "turns": len(corpus.turns),
                "dialogues": corpus.dialogues,
                "matched_share": round(corpus.matched_share, 4),
                "dialogue_union": union,
                "score_slice": args.score_slice,
                "dialogues_file": str(args.dialogues),
                "peak_rss_mb": round(peak_rss_mb()),
            }
    engine = build_engine(settings, dataset, args.seed)
    print(f"  agents ready in {engine.seconds:.0f}s", file=sys.stderr, flush=True)
    product = evaluate_product(corpus, ProductPath(Engine(engine), parser), PRODUCT)
    movielens_only = movielens_metrics(engine, dataset, args.seed)

    scorers = Scorers(engine, settings, co_mentions)
    scorers.encode([t.seeker_text for t in corpus.turns])
    audit = TitleAudit(scorers, parser.matcher)
    agents_row = evaluate(corpus, scorers.agents_scores, AGENTS, scorers, on_turn=audit)
    main = with_dialogues or product
    methods = [
        evaluate(corpus, scorers.popularity_scores, "popularity (MovieLens train)", scorers),
        evaluate(corpus, scorers.text_scores, "text only (seeker's words)", scorers),
        evaluate(
            corpus, scorers.mentions_scores, "agents, mentioned movies only", scorers, filters=False
        ),
        agents_row,
        product,
    ]
    if with_dialogues is not None:
        methods.append(with_dialogues)
    fused = None
    if co_mentions is not None and not args.quick:
        fused = evaluate(corpus, scorers.fused_scores, FUSED, scorers)
        methods += [
            evaluate(corpus, scorers.redial_popularity_scores, "ReDial-train popularity", scorers),
            evaluate(corpus, scorers.co_mention_scores, "ReDial-train co-mentions", scorers),
            fused,
        ]
    report: dict[str, Any] = {
        "recall@1": round(main.recall(1), 4),
        "recall@10": round(main.recall(10), 4),
        "recall@50": round(main.recall(50), 4),
        "matched_share": round(corpus.matched_share, 4),
        "hallucinated_titles": audit.hallucinated,
        "explained_items": audit.reasons,
        "person_names_read_as_titles": audit.person_names,
        "hallucinated_examples": audit.examples,
        "targets": main.targets,
        "target_mentions": corpus.target_mentions,
        "dialogues": corpus.dialogues,
        "turns": len(corpus.turns),
        "main_method": main.name,
        "agents_understanding_direct": _row(agents_row),
        "product_path_movielens": _row(product),
        "product_path_with_dialogues": _row(with_dialogues) if with_dialogues else None,
        "dialogue_union": union or None,
        "movielens_only": movielens_only,
        "score_slice": args.score_slice,
        "with_redial_train": _row(fused) if fused is not None else None,
        "methods": {m.name: _row(m) for m in methods},
        "train_seconds": round(engine.seconds, 1),
        "agents_resumed": resumed,
        "load_seconds": round(load_seconds, 1),
        "read_seconds": round(read_seconds, 1),
        "peak_rss_mb": round(peak_rss_mb()),
        "dialogues_file": str(args.dialogues),
        "redial_train_file": str(args.redial_train) if args.redial_train else None,
        "redial_train_dialogues": co_mentions.dialogues if co_mentions else 0,
        "catalog": DATASET,
        "seed": args.seed,
        "published_recall@10": {"KBRD": 0.169, "UniCRS": 0.215},
    }
    return report


def print_table(report: dict[str, Any]) -> None:
    """Markdown table of every method, then the run facts."""
    print(
        f"ReDial {Path(report['dialogues_file']).name}: {report['dialogues']} dialogues, "
        f"{report['target_mentions']} suggested first mentions, "
        f"{report['matched_share']:.1%} of them in the {report['catalog']} catalog -> "
        f"{report['targets']} targets at {report['turns']} recommender turns"
    )
    print()
    print("| method | Recall@1 | Recall@10 | Recall@50 |")
    print("|---|---|---|---|")
    for name, row in report["methods"].items():
        label = f"**{name}**" if name == report["main_method"] else name
        print(
            f"| {label} | {row['recall@1']:.3f} | {row['recall@10']:.3f} | {row['recall@50']:.3f} |"
        )
    for name, value in report["published_recall@10"].items():
        print(f"| {name} (published: full ReDial test, own catalog) | | {value:.3f} | |")
    print()
    print(
        f"hallucinated titles: {report['hallucinated_titles']} in "
        f"{report['explained_items']} template reasons (top-10 of the direct agents row; "
        f"{report['person_names_read_as_titles']} person names read as titles set apart); "
        f"agents {'reloaded' if report['agents_resumed'] else 'trained'} in "
        f"{report['train_seconds']}s, peak RSS {report['peak_rss_mb']} MiB"
    )
    ml = report.get("movielens_only") or {}
    union = report.get("dialogue_union") or {}
    if ml:
        print(
            f"MovieLens-only agents: round {ml['best_round']}, valid NDCG@10 "
            f"{ml['valid_ndcg@10']:.4f}, test NDCG@10 {ml['test_ndcg@10']:.4f} "
            f"({ml['test_users']} users)"
        )
    if union:
        uml = union.get("movielens") or {}
        print(
            f"agents with dialogues: corpus {union['corpus']} ({union['users']} dialogue users, "
            f"{union['interactions']} films, weight {union['weight']:g}, "
            f"{union['scored_dialogues_left_out']} scored dialogues left out), run "
            f"{union['run']} ({'reloaded' if union['resumed'] else 'trained'} in "
            f"{union['train_seconds']}s): round {uml.get('best_round')}, valid NDCG@10 "
            f"{uml.get('valid_ndcg@10', 0):.4f}, test NDCG@10 {uml.get('test_ndcg@10', 0):.4f}"
        )


def main() -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--dialogues",
        type=Path,
        default=DEFAULT_DIALOGUES,
        help="ReDial JSON lines to score (relative paths: from here, else from the repo root)",
    )
    parser.add_argument(
        "--redial-train",
        default=str(DEFAULT_TRAIN),
        help="ReDial dialogues for the co-mention rows ('none' to skip them)",
    )
    parser.add_argument(
        "--with-dialogues",
        type=Path,
        help="ReDial JSON lines to ingest into the home and train the agents with (the scored "
        "dialogues are left out of it); adds the product-path row with those agents",
    )
    parser.add_argument(
        "--dialogue-weight", type=float, help="a dialogue user's weight (default: the library's)"
    )
    parser.add_argument(
        "--score-slice",
        help="score only dialogues A:B of --dialogues (an inner split of train.jsonl for tuning)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="with --with-dialogues: score only the product path with dialogues (tuning runs)",
    )
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument(
        "--home", type=Path, help="settings home, kept for reuse (default: a temporary folder)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    args.dialogues = _resolve(args.dialogues)
    if args.with_dialogues is not None:
        args.with_dialogues = _resolve(args.with_dialogues)
    train = str(args.redial_train or "").strip()
    args.redial_train = None if train.lower() in {"", "none"} else _resolve(Path(train))
    if args.home is None:  # a throw-away home: trained from scratch, removed afterwards
        with tempfile.TemporaryDirectory(
            prefix="recagents-bench-redial-", ignore_cleanup_errors=True
        ) as home:
            args.home = Path(home)
            report = run(args)
    else:
        report = run(args)
    if args.json or args.quick:
        print(json.dumps(report))
    else:
        print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
