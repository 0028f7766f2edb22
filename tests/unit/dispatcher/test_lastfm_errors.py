"""The Last.fm protocol's one error table: each code's outcome, the same for a delivery and
for a history import (they used to differ on 8 and 14), and the same whichever of the two
JSON shapes the error comes in (Last.fm's, or GNU FM's nested one from Libre.fm)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from scrobble_shared.events import Content
from scrobble_shared.trackers.http import AppCredentials, HttpResponse, OutcomeKind
from scrobble_shared.trackers.lastfm.client import LastfmClient
from scrobble_shared.trackers.lastfm.history import LastfmReader
from scrobble_shared.work import WorkKind
from scrobble_shared.work_message import ScrobbleWork

APP = AppCredentials("key", "secret")
TABLE = [
    (2, OutcomeKind.PERMANENT),  # invalid service
    (3, OutcomeKind.PERMANENT),  # invalid method
    (4, OutcomeKind.PERMANENT),  # authentication failed
    (6, OutcomeKind.PERMANENT),  # invalid parameters
    (8, OutcomeKind.RETRY),  # operation failed: the backend failed, try again
    (9, OutcomeKind.RECONNECT),  # invalid session key
    (10, OutcomeKind.PERMANENT),  # invalid API key
    (11, OutcomeKind.RETRY),  # service offline
    (13, OutcomeKind.PERMANENT),  # invalid method signature
    (14, OutcomeKind.RECONNECT),  # unauthorized token
    (16, OutcomeKind.RETRY),  # temporary error
    (26, OutcomeKind.PERMANENT),  # suspended API key
    (29, OutcomeKind.RETRY),  # rate limit exceeded: waits, rate_limited
    (99, OutcomeKind.PERMANENT),  # a code the table does not know
]


SHAPES = ("flat", "nested")


def answer(code: int, status: int = 200, shape: str = "flat") -> HttpResponse:
    body: dict[str, object] = {"error": code, "message": f"message {code}"}
    if shape == "nested":
        # GNU FM's XML error element through its JSON encoder: the code an attribute (text).
        body = {"error": {"#text": f"message {code}", "code": str(code)}}
    return HttpResponse(status, {"content-type": "application/json"}, json.dumps(body).encode())


def scrobble() -> ScrobbleWork:
    return ScrobbleWork(
        scrobble_id=uuid.uuid4(),
        connection_id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        service="lastfm",
        kind=WorkKind.SCROBBLE,
        dedupe_key="k",
        occurred_at=datetime(2026, 12, 1, tzinfo=UTC),
        content=Content.model_validate(
            {"type": "track", "id": str(uuid.uuid4()), "title": "T", "artists": ["A"]}
        ),
    )


@pytest.mark.parametrize(("code", "kind"), TABLE)
@pytest.mark.parametrize("status", [200, 400, 503])
@pytest.mark.parametrize("shape", SHAPES)
def test_each_code_means_one_thing_for_delivery_and_import(
    code: int, kind: OutcomeKind, status: int, shape: str
) -> None:
    delivered = LastfmClient("https://last.fm/2.0/", APP).classify(
        scrobble(), answer(code, status, shape)
    )
    imported = LastfmReader("https://last.fm/2.0/", APP).judge(answer(code, status, shape))
    assert imported is not None
    assert delivered.kind is kind
    assert imported.kind is kind
    assert delivered.rate_limited == imported.rate_limited == (code == 29)
    assert delivered.reason == imported.reason == f"Last.fm error {code}: message {code}"
