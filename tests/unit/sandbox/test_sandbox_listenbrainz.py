"""ListenBrainz fake: token auth, submit-listens validated as the server does, paging by
max_ts, recording feedback, X-RateLimit headers."""

import json
import time
from typing import Any

import pytest

UUID = "bd1fbd09-5b3c-45c4-a0e1-3a5d5f3a1f11"
NOW = int(time.time())


def listen(**meta: Any) -> dict[str, Any]:
    return {
        "listened_at": NOW - 60,
        "track_metadata": {"artist_name": "Aphex Twin", "track_name": "Xtal"} | meta,
    }


def info(**extra: Any) -> dict[str, Any]:
    return listen(additional_info=extra)


def single(item: dict[str, Any]) -> dict[str, Any]:
    return {"listen_type": "single", "payload": [item]}


PLAYING = {"track_metadata": {"artist_name": "A", "track_name": "B"}}

SUBMIT_CASES: list[tuple[str, Any, int, str | None]] = [
    ("single ok", single(listen()), 200, None),
    ("playing_now ok", {"listen_type": "playing_now", "payload": [PLAYING]}, 200, None),
    (
        "import of 1000 ok",
        {
            "listen_type": "import",
            "payload": [
                listen(track_name=f"T{i}") | {"listened_at": NOW - 1000 - i} for i in range(1000)
            ],
        },
        200,
        None,
    ),
    (
        "import of 1001",
        {
            "listen_type": "import",
            "payload": [listen() | {"listened_at": NOW - 1000 - i} for i in range(1001)],
        },
        400,
        "Too many listens",
    ),
    (
        "two in single",
        {"listen_type": "single", "payload": [listen(), listen()]},
        400,
        "more than listen",
    ),
    (
        "two playing_now",
        {"listen_type": "playing_now", "payload": [PLAYING, PLAYING]},
        400,
        "more than listen",
    ),
    (
        "empty payload",
        {"listen_type": "import", "payload": []},
        400,
        "does not contain any listens",
    ),
    ("bad listen_type", {"listen_type": "loved", "payload": [listen()]}, 400, "valid listen_type"),
    ("payload not a list", {"listen_type": "single", "payload": listen()}, 400, "should be a list"),
    ("no listen_type", {"payload": [listen()]}, 400, "Invalid JSON document"),
    (
        "listened_at missing",
        single({"track_metadata": listen()["track_metadata"]}),
        400,
        "key listened_at",
    ),
    (
        "listened_at text",
        single(listen() | {"listened_at": "noon"}),
        400,
        "int value for listened_at",
    ),
    ("listened_at before 2002-10", single(listen() | {"listened_at": 1033430399}), 400, "too low"),
    # Far past the hour of slack, so the case holds however long after import it runs.
    ("listened_at a day ahead", single(listen() | {"listened_at": NOW + 86_400}), 400, "too high"),
    (
        "listened_at on playing_now",
        {"listen_type": "playing_now", "payload": [listen()]},
        400,
        "must not contain listened_at",
    ),
    (
        "extra top-level key",
        single(listen() | {"user": "x"}),
        400,
        "may only contain listened_at and track_metadata",
    ),
    ("no track_metadata", single({"listened_at": NOW}), 400, "key track_metadata"),
    ("empty artist", single(listen(artist_name="")), 400, "track_metadata.artist_name"),
    (
        "whitespace artist",
        single(listen(artist_name=" \t ")),
        400,
        "field track_metadata.artist_name is empty",
    ),
    (
        "whitespace track",
        single(listen(track_name="\u00a0 ")),
        400,
        "field track_metadata.track_name is empty",
    ),
    (
        "playing_now whitespace",
        {
            "listen_type": "playing_now",
            "payload": [{"track_metadata": {"artist_name": "A", "track_name": " "}}],
        },
        400,
        "is empty",
    ),
    ("artist list", single(listen(artist_name=["A", "B"])), 400, "single string"),
    (
        "no track name",
        single({"listened_at": NOW, "track_metadata": {"artist_name": "A"}}),
        400,
        "track_metadata.track_name",
    ),
    ("duration ok", single(info(duration=241)), 200, None),
    ("duration_ms ok", single(info(duration_ms=241000)), 200, None),
    (
        "duration and duration_ms",
        single(info(duration=241, duration_ms=241000)),
        400,
        "both duration and duration_ms",
    ),
    ("negative duration", single(info(duration=-1)), 400, "positive integer"),
    ("duration over 24 days", single(info(duration=24 * 86400 + 1)), 400, "too large"),
    ("recording mbid ok", single(info(recording_mbid=UUID, artist_mbids=[UUID])), 200, None),
    (
        "recording mbid bad",
        single(info(recording_mbid="not-a-uuid")),
        400,
        "recording_mbid MBID format invalid",
    ),
    (
        "artist_mbids not a list",
        single(info(artist_mbids=UUID)),
        400,
        "artist_mbids MBID format invalid",
    ),
    (
        "work_mbids bad item",
        single(info(work_mbids=[UUID, "x"])),
        400,
        "work_mbids MBID format invalid",
    ),
    ("50 tags ok", single(info(tags=["t"] * 50)), 200, None),
    ("51 tags", single(info(tags=["t"] * 51)), 400, "more than 50 items"),
    ("65-char tag", single(info(tags=["x" * 65])), 400, "longer than 64"),
    ("NUL in track", single(listen(track_name="Xt\x00al")), 400, "NUL"),
    ("NUL in additional_info", single(info(media_player="vlc\x00")), 400, "NUL"),
]


@pytest.mark.parametrize(
    ("case", "body", "status", "message"), SUBMIT_CASES, ids=[c[0] for c in SUBMIT_CASES]
)
async def test_submit_listens_validation(sb, client, token, case, body, status, message):
    response = await client.post(
        f"{sb.env['LISTENBRAINZ_API_URL']}/submit-listens",
        content=json.dumps(body),
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )
    assert response.status_code == status, response.text
    if message is None:
        assert response.json() == {"status": "ok"}
    else:
        assert response.json()["code"] == 400
        assert message in response.json()["error"]
        assert sb.listenbrainz.snapshot()["listens"] == []
    assert "X-RateLimit-Remaining" in response.headers


# The server: listened_at >= int(time.time()) + 3600 is too high, < 1033430400 too low.
FROZEN = 1_800_000_000.75  # a clock between two seconds: bounds use its whole second
BOUND_CASES = [
    ("now + 3600", int(FROZEN) + 3600, 400, "too high"),
    ("now + 3599", int(FROZEN) + 3599, 200, None),
    ("1033430400", 1033430400, 200, None),
    ("1033430399", 1033430399, 400, "too low"),
]


@pytest.mark.parametrize(
    ("case", "listened_at", "status", "message"), BOUND_CASES, ids=[c[0] for c in BOUND_CASES]
)
async def test_listened_at_bounds_exactly(
    sb, client, token, monkeypatch, case, listened_at, status, message
):
    monkeypatch.setattr("scrobble_sandbox.listenbrainz.api.now", lambda: FROZEN)
    response = await client.post(
        f"{sb.env['LISTENBRAINZ_API_URL']}/submit-listens",
        json=single(listen() | {"listened_at": listened_at}),
        headers={"Authorization": f"Token {token}"},
    )
    assert response.status_code == status, response.text
    if message is None:
        stored = sb.listenbrainz.snapshot()["listens"]
        assert [x["listened_at"] for x in stored] == [listened_at]
    else:
        assert response.json() == {"code": 400, "error": response.json()["error"]}
        assert message in response.json()["error"]


async def test_body_size_limits(sb, client, token):
    url = f"{sb.env['LISTENBRAINZ_API_URL']}/submit-listens"
    auth = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    # One listen padded past 10,240 bytes on average.
    big = single(info(comment="x" * 11_000))
    response = await client.post(url, content=json.dumps(big), headers=auth)
    assert response.status_code == 400
    assert "too large" in response.json()["error"]
    over = b'{"listen_type": "import", "payload": [' + b" " * 10_240_001 + b"]}"
    response = await client.post(url, content=over, headers=auth)
    assert response.status_code == 400
    assert "Payload too large" in response.json()["error"]


AUTH_CASES = [
    ("no header", None, 401, "provide an Authorization header"),
    ("unknown token", "Token nope", 401, "Invalid authorization token"),
    ("bearer scheme", "Bearer {t}", 401, "Invalid authorization token"),
    ("token scheme", "Token {t}", 200, None),
]


@pytest.mark.parametrize(
    ("case", "header", "status", "message"), AUTH_CASES, ids=[c[0] for c in AUTH_CASES]
)
async def test_token_auth(sb, client, token, case, header, status, message):
    headers = {} if header is None else {"Authorization": header.format(t=token)}
    response = await client.post(
        f"{sb.env['LISTENBRAINZ_API_URL']}/submit-listens", json=single(listen()), headers=headers
    )
    assert response.status_code == status
    if message:
        assert message in response.json()["error"]


async def test_validate_token(sb, client, token):
    url = f"{sb.env['LISTENBRAINZ_API_URL']}/validate-token"
    good = (await client.get(url, headers={"Authorization": f"Token {token}"})).json()
    assert good == {"code": 200, "message": "Token valid.", "valid": True, "user_name": "sandbox"}
    bad = await client.get(url, params={"token": "nope"})
    assert bad.status_code == 200
    assert bad.json()["valid"] is False
    missing = await client.get(url)
    assert missing.status_code == 400


async def test_listens_paging_by_max_ts(sb, client):
    sb.listenbrainz.seed(
        "listens",
        [
            {
                "listened_at": 1_600_000_000 + i,
                "track_metadata": {"artist_name": "A", "track_name": f"T{i}"},
            }
            for i in range(30)
        ],
    )
    url = f"{sb.env['LISTENBRAINZ_API_URL']}/user/sandbox/listens"
    seen: list[int] = []
    params: dict[str, Any] = {"count": 12}
    while True:
        payload = (await client.get(url, params=params)).json()["payload"]
        if not payload["listens"]:
            break
        stamps = [x["listened_at"] for x in payload["listens"]]
        assert stamps == sorted(stamps, reverse=True)
        seen += stamps
        params = {"count": 12, "max_ts": stamps[-1]}
    assert seen == [1_600_000_000 + i for i in reversed(range(30))]
    assert (await client.get(url, params={"count": 5000})).json()["payload"]["count"] == 30
    assert (await client.get(url.replace("sandbox", "ghost"))).status_code == 404


async def test_duplicate_listens_are_stored_once(sb, client, token):
    url = f"{sb.env['LISTENBRAINZ_API_URL']}/submit-listens"
    for _ in range(2):
        await client.post(url, json=single(listen()), headers={"Authorization": f"Token {token}"})
    assert len(sb.listenbrainz.snapshot()["listens"]) == 1


FEEDBACK_CASES = [
    ("love", {"recording_mbid": UUID, "score": 1}, 200),
    ("hate", {"recording_mbid": UUID, "score": -1}, 200),
    ("score 2", {"recording_mbid": UUID, "score": 2}, 400),
    ("score true", {"recording_mbid": UUID, "score": True}, 400),
    ("no recording", {"score": 1}, 400),
    ("bad mbid", {"recording_mbid": "x", "score": 1}, 400),
    ("extra key", {"recording_mbid": UUID, "score": 1, "user": "x"}, 400),
]


@pytest.mark.parametrize(
    ("case", "body", "status"), FEEDBACK_CASES, ids=[c[0] for c in FEEDBACK_CASES]
)
async def test_recording_feedback(sb, client, token, case, body, status):
    response = await client.post(
        f"{sb.env['LISTENBRAINZ_API_URL']}/feedback/recording-feedback",
        json=body,
        headers={"Authorization": f"Token {token}"},
    )
    assert response.status_code == status, response.text
    assert len(sb.listenbrainz.snapshot()["feedback"]) == (1 if status == 200 else 0)
