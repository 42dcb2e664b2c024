"""Schema-driven fuzzing (issue 11): schemathesis generates requests from ``/openapi.json`` of a
real running server, in both modes, and checks every answer: no 5xx, a documented status, the
documented content type and a body that matches its schema.

The spec is the contract people and generated clients trust, so these checks keep it truthful:
a loopback server without a token must not declare a bearer token, a spec-valid empty filter
must be accepted, and so on. Examples per operation are bounded so both runs take well under a
minute on two busy cores.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, assume, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.api.conftest import TOKEN

#: Examples per operation and phase; 9 operations, two servers.
EXAMPLES = 4

FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same cases every run: a failure here reproduces
    suppress_health_check=list(HealthCheck),
    database=None,
)


def _possible(case, positive: bool) -> bool:  # type: ignore[no-untyped-def]
    """Whether ``case`` keeps the one rule JSON Schema cannot state (one parameter against
    another): ``year_from`` not after ``year_to``. The spec says it in words, and the server
    answers 400 (test_http_api checks that)."""
    query = case.query or {}
    years = (query.get("year_from"), query.get("year_to"))
    return not (positive and all(isinstance(y, int) for y in years) and years[0] > years[1])


def _checker(operation, mode: GenerationMode, headers: dict[str, str] | None, calls: list[int]):  # type: ignore[no-untyped-def]
    """A hypothesis test sending ``operation``'s generated cases and validating the answers."""

    @FUZZ_SETTINGS
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case) -> None:  # type: ignore[no-untyped-def]
        assume(_possible(case, mode is GenerationMode.POSITIVE))
        calls.append(1)
        # The first turns load the encoder: generous on a busy machine.
        case.call_and_validate(headers=headers, timeout=60)

    return check


def fuzz(url: str, headers: dict[str, str] | None = None) -> int:
    """Generate and check requests for every operation of the server's spec; return how many.

    Valid requests (positive) must be answered as documented; invalid ones (negative) must be
    refused with a 4xx, never accepted, never a 5xx.
    """
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8, [op.label for op in operations]
    calls: list[int] = []
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        for operation in operations:
            try:
                _checker(operation, mode, headers, calls)()
            except Unsatisfiable:
                # No invalid request exists for it (no parameters, no body): nothing to check.
                assert mode is GenerationMode.NEGATIVE, operation.label
    return len(calls)


def test_open_server_honours_its_spec(api_server):  # type: ignore[no-untyped-def]
    assert fuzz(api_server.url) >= EXAMPLES * 8


def test_guarded_server_honours_its_spec(tmp_path):  # type: ignore[no-untyped-def]
    """Its own server: the negative cases send wrong tokens, whose backoff (raised here so the
    fuzzing goes on) must not reach the session's shared server."""
    from recagents.ui.app import create_app
    from tests.api.server import LiveServer, block_recommender

    app = create_app(block_recommender(tmp_path), auth_token=TOKEN, auth_backoff={"limit": 10_000})
    with LiveServer(app) as server:
        calls = fuzz(server.url, {"Authorization": f"Bearer {TOKEN}"})
    assert calls >= EXAMPLES * 8
