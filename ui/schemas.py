"""The HTTP API's request and response models: what ``/openapi.json`` documents.

Kept apart from the routes so the contract reads in one place; the class names are the schema
names of the OpenAPI document, so renaming one changes the published API.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from recagents.graph.context import MAX_MESSAGE_CHARS

#: Longest user or item id the API accepts.
MAX_ID_CHARS = 200
#: Longest thread id, and the characters one may hold: the same rule on write (chat, feedback)
#: and on read (``/threads/{thread_id}``), so every thread written can be read back by its id.
MAX_THREAD_ID_CHARS = 128
THREAD_ID_PATTERN = r"^[A-Za-z0-9._:-]+$"
THREAD_ID_RULE = f"1 to {MAX_THREAD_ID_CHARS} of A-Z a-z 0-9 . _ : -"


class Contribution(BaseModel):
    """One of the person's items that pushed a recommendation up."""

    item_id: str
    title: str
    weight: float


class Evidence(BaseModel):
    """Why an item was recommended: the facts the reason was written from."""

    model_config = ConfigDict(extra="allow")

    because_of: list[Contribution] = Field(
        default_factory=list, description="liked items that drove the pick, strongest first"
    )
    shared_attributes: list[str] = Field(
        default_factory=list, description="e.g. 'genre: Crime', 'director: Bryan Singer'"
    )
    agent_scores: dict[str, float | None] = Field(
        default_factory=dict,
        description="each agent's score: tower, history, text, popularity, final",
    )


class Item(BaseModel):
    """A recommended item."""

    id: str = Field(description="catalog item id")
    title: str = Field(description="display title with year")
    score: float = Field(
        description="the ranking agent's raw final score (higher is better; for sorting and "
        "debugging, on a per-user scale; show `match` to people)"
    )
    match: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="how well it fits, in [0, 1]: the share of the person's unseen catalog "
        "items that score below it",
    )
    reason: str = Field(description="one-line reason built from the evidence")
    evidence: Evidence
    reason_source: Literal["llm", "template", "template-busy"] = Field(
        "template",
        description="llm: the chat model phrased the reason and it passed the checks; "
        "template: written by code from the evidence; template-busy: written by code because "
        "the chat model was busy with other replies beyond a short wait",
    )


class ChatRequest(BaseModel):
    """One chat message."""

    # strict: ``k: true`` or ``"k": "5"`` is a mistake to report, not a value to guess at.
    model_config = ConfigDict(extra="forbid", strict=True)

    message: str = Field(
        min_length=1,
        max_length=MAX_MESSAGE_CHARS,
        description=f"what the person says (1 to {MAX_MESSAGE_CHARS} characters)",
        examples=["I loved Heat, something like it but funnier"],
    )
    thread_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_THREAD_ID_CHARS,
        pattern=THREAD_ID_PATTERN,
        description=f"conversation id ({THREAD_ID_RULE}); memory is per thread. Omit it to "
        "start a new thread (the response carries the new id)",
    )
    user_id: str | None = Field(
        default=None,
        max_length=MAX_ID_CHARS,
        description="a known user id starts from that user's learned profile; omit for a new user",
    )
    k: int = Field(default=5, ge=1, le=50, description="how many items to recommend")

    @field_validator("k", mode="before")
    @classmethod
    def _integral(cls, value: Any) -> Any:
        # JSON Schema's "integer" admits 5.0, so the spec allows it; strict mode would not.
        # true stays a bool and is refused.
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value

    @field_validator("message")
    @classmethod
    def _has_text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("message must contain some text, not only spaces")
        return value


class ChatResponse(BaseModel):
    """A chat turn's answer."""

    reply: str = Field(description="the text answer")
    items: list[Item] = Field(description="recommendations of this turn (empty for other turns)")
    thread_id: str


class RecommendationsResponse(BaseModel):
    """Top-k for one user."""

    user_id: str
    known_user: bool = Field(
        description="false: the id is not in the catalog and the cold-start route served it"
    )
    items: list[Item]


class FeedbackRequest(BaseModel):
    """A thumbs up or down on an item in a thread."""

    # strict: ``liked: "yes"`` is refused rather than read as true.
    model_config = ConfigDict(extra="forbid", strict=True)

    thread_id: str = Field(
        min_length=1,
        max_length=MAX_THREAD_ID_CHARS,
        pattern=THREAD_ID_PATTERN,
        description=f"conversation id ({THREAD_ID_RULE})",
    )
    item_id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    liked: bool = Field(description="true for 👍, false for 👎 (JSON true/false only)")


class FeedbackResponse(BaseModel):
    """The thread's profile after the feedback (used from the next turn on)."""

    thread_id: str
    item_id: str
    liked: bool
    liked_items: list[str]
    disliked_items: list[str]


class CatalogItem(BaseModel):
    """A catalog entry."""

    id: str
    title: str
    year: int | None
    genres: list[str]


class ItemsResponse(BaseModel):
    """Catalog search results."""

    query: str
    items: list[CatalogItem]


class AgentInfo(BaseModel):
    """One registered agent and its last round."""

    name: str = Field(description="instance name (replicas get a suffix)")
    role: str = Field(description="registered role name")
    order: int
    publishes: str | None
    consumes: list[str]
    scores: bool
    rounds_trained: int
    status: str
    last_round: int | None
    metrics: dict[str, Any] = Field(description="what the agent reported in the last round")
    serving_round: int | None = Field(description="the round whose weights are served (best)")
    serving_metrics: dict[str, Any] = Field(
        description="what the agent reported in the served round"
    )


class RunInfo(BaseModel):
    """The last training run."""

    rounds: int
    best_round: int
    best_valid_ndcg: float | None = Field(alias="best_valid_ndcg@10")
    stopped: str
    run_dir: str = Field(description="the run's folder name under the server's runs folder")
    last_valid: dict[str, float | None]
    dialogues: dict[str, Any] | None = Field(
        default=None,
        description="the dialogue corpora the run learned from with the catalog (corpora, "
        "weight, users, interactions, accepted_holdout), or null",
    )

    model_config = ConfigDict(populate_by_name=True)


class AgentsResponse(BaseModel):
    """Registered roles, their last round's metrics and the training status."""

    agents: list[AgentInfo]
    run: RunInfo
    training: dict[str, Any]


class Message(BaseModel):
    """One message of a thread."""

    role: str = Field(description="user or assistant")
    text: str


class ThreadResponse(BaseModel):
    """A thread's memory."""

    thread_id: str
    user_id: str | None
    messages: list[Message]
    liked: list[str]
    disliked: list[str]
    seen: list[str]
    rejected: list[str]
    shown: list[str]


class ForgetResponse(BaseModel):
    """What forgetting a thread removed."""

    thread_id: str
    forgotten: bool = Field(description="always true: an unknown thread is a 404")
    log_entries: int = Field(description="interaction-log entries of the thread removed")


class HealthResponse(BaseModel):
    """Liveness and what is served."""

    status: str
    version: str
    dataset: str
    users: int
    items: int
    auth: bool = Field(description="whether the API requires a bearer token")
    training: str
    parts: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="readiness of each part a turn needs (agents, store, memory, chat_model): "
        "status ok or failing, and a detail",
    )


class ErrorBody(BaseModel):
    """What went wrong and what to do."""

    type: str
    message: str


class ErrorResponse(BaseModel):
    """Every 4xx/5xx body."""

    error: ErrorBody


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 404, 422)
}
#: What a route that reads a body may also answer: its body is over the route's limit.
TOO_LARGE: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorResponse, "description": "the request body is over the route's limit"}
}
