"""Trakt fake: each rule of EXTERNAL_APIS.md, the bad request refused as Trakt refuses it and
the good one accepted."""

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from scrobble_sandbox import Sandbox
from scrobble_sandbox.core.clock import parse_iso
from scrobble_sandbox.core.pkce import s256

MOVIE = {"title": "Heat", "year": 1995, "ids": {"imdb": "tt0113277", "tmdb": 949}}
SHOW = {"title": "The Wire", "year": 2002, "ids": {"tvdb": 79126}}


def headers(sb: Sandbox, token: str | None, **override: str | None) -> dict[str, str]:
    base: dict[str, str | None] = {
        "trakt-api-key": sb.env["TRAKT_CLIENT_ID"],
        "trakt-api-version": "2",
        "Content-Type": "application/json",
        "User-Agent": "scrobble-tests/1.0",
        "Authorization": f"Bearer {token}" if token else None,
    }
    base.update(override)
    return {k: v for k, v in base.items() if v is not None}


HEADER_CASES = [
    ("good", {}, 201),
    ("missing api key", {"trakt-api-key": None}, 403),
    ("wrong api key", {"trakt-api-key": "nope"}, 403),
    ("missing version", {"trakt-api-version": None}, 400),
    ("version 1", {"trakt-api-version": "1"}, 400),
    ("missing bearer", {"Authorization": None}, 401),
    ("unknown bearer", {"Authorization": "Bearer not-a-token"}, 401),
    ("basic scheme", {"Authorization": "Basic abc"}, 401),
    ("form content type", {"Content-Type": "application/x-www-form-urlencoded"}, 400),
]


@pytest.mark.parametrize(
    ("case", "override", "status"), HEADER_CASES, ids=[c[0] for c in HEADER_CASES]
)
async def test_required_headers(sb, client, token, case, override, status):
    response = await client.post(
        f"{sb.env['TRAKT_API_URL']}/scrobble/start",
        json={"progress": 5.0, "movie": MOVIE},
        headers=headers(sb, token, **override),
    )
    assert response.status_code == status, response.text
    if status == 401:
        assert "invalid_token" in response.headers["WWW-Authenticate"]


SCROBBLE_CASES = [
    ("start at 0", "start", {"progress": 0, "movie": MOVIE}, 201, "start"),
    ("pause", "pause", {"progress": 40.5, "movie": MOVIE}, 201, "pause"),
    ("stop at 80 is watched", "stop", {"progress": 80, "movie": MOVIE}, 201, "scrobble"),
    ("stop at 79.9 kept as pause", "stop", {"progress": 79.9, "movie": MOVIE}, 201, "pause"),
    ("stop at 1 kept as pause", "stop", {"progress": 1, "movie": MOVIE}, 201, "pause"),
    ("stop below 1% refused", "stop", {"progress": 0.5, "movie": MOVIE}, 422, None),
    ("progress over 100", "start", {"progress": 101, "movie": MOVIE}, 422, None),
    ("progress as string", "start", {"progress": "50", "movie": MOVIE}, 422, None),
    ("no item", "start", {"progress": 10}, 400, None),
    ("movie without ids or year", "start", {"progress": 10, "movie": {"title": "X"}}, 404, None),
    (
        "movie by title and year",
        "stop",
        {"progress": 95, "movie": {"title": "X", "year": 1990}},
        201,
        "scrobble",
    ),
    (
        "episode by ids",
        "stop",
        {"progress": 90, "episode": {"ids": {"tvdb": 123}}},
        201,
        "scrobble",
    ),
    (
        "show + episode",
        "stop",
        {"progress": 90, "show": SHOW, "episode": {"season": 1, "number": 2}},
        201,
        "scrobble",
    ),
    (
        "show + episode without number",
        "stop",
        {"progress": 90, "show": SHOW, "episode": {"season": 1}},
        404,
        None,
    ),
]


@pytest.mark.parametrize(
    ("case", "action", "body", "status", "result"),
    SCROBBLE_CASES,
    ids=[c[0] for c in SCROBBLE_CASES],
)
async def test_scrobble_semantics(sb, client, token, case, action, body, status, result):
    response = await client.post(
        f"{sb.env['TRAKT_API_URL']}/scrobble/{action}", json=body, headers=headers(sb, token)
    )
    assert response.status_code == status, response.text
    if result is not None:
        data = response.json()
        assert data["action"] == result
        assert (data["id"] > 0) == (result == "scrobble")
    watched = [h for h in sb.trakt.snapshot()["history"]]
    assert len(watched) == (1 if result == "scrobble" else 0)


async def test_repeat_stop_is_409_with_watched_and_expires(sb, client, token):
    url = f"{sb.env['TRAKT_API_URL']}/scrobble/stop"
    first = await client.post(
        url, json={"progress": 99, "movie": MOVIE}, headers=headers(sb, token)
    )
    again = await client.post(
        url, json={"progress": 99, "movie": MOVIE}, headers=headers(sb, token)
    )
    assert first.status_code == 201
    assert again.status_code == 409
    assert set(again.json()) == {"watched_at", "expires_at"}
    watched_at, expires_at = (parse_iso(again.json()[k]) for k in ("watched_at", "expires_at"))
    assert expires_at > watched_at
    assert expires_at - watched_at == pytest.approx(sb.trakt.state.duplicate_window, abs=0.01)
    assert len(sb.trakt.snapshot()["history"]) == 1


EPISODE = {"season": 1, "number": 2}
# Each case: the items stopped one after the other (progress 95) and the statuses expected.
# Trakt resolves an item to one catalogue entry whatever ids name it: the fake matches any id
# kind in common, or title + year of an item it has seen, and learns new ids as it goes.
REPEAT_CASES: list[tuple[str, list[dict[str, Any]], list[int]]] = [
    ("movie, then tmdb only", [{"movie": MOVIE}, {"movie": {"ids": {"tmdb": 949}}}], [201, 409]),
    (
        "movie, then imdb only",
        [{"movie": MOVIE}, {"movie": {"ids": {"imdb": "tt0113277"}}}],
        [201, 409],
    ),
    (
        "movie, then tmdb as text",
        [{"movie": MOVIE}, {"movie": {"ids": {"tmdb": "949"}}}],
        [201, 409],
    ),
    (
        "movie, then title + year",
        [{"movie": MOVIE}, {"movie": {"title": "Heat", "year": 1995}}],
        [201, 409],
    ),
    (
        "title + year, then ids",
        [{"movie": {"title": "Heat", "year": 1995}}, {"movie": MOVIE}],
        [201, 409],
    ),
    (
        "ids learnt along the way",
        [
            {"movie": {"ids": {"imdb": "tt0113277"}}},
            {"movie": {"ids": {"imdb": "tt0113277", "trakt": 12}}},
            {"movie": {"ids": {"trakt": 12}}},
        ],
        [201, 409, 409],
    ),
    ("another movie", [{"movie": MOVIE}, {"movie": {"ids": {"tmdb": 950}}}], [201, 201]),
    (
        "same title, other ids",
        [{"movie": MOVIE}, {"movie": {"title": "Heat", "year": 1995, "ids": {"tmdb": 1}}}],
        [201, 201],
    ),
    (
        "same title, other year",
        [{"movie": MOVIE}, {"movie": {"title": "Heat", "year": 1986}}],
        [201, 201],
    ),
    (
        "episode, then show by title + year",
        [
            {"show": SHOW, "episode": EPISODE},
            {"show": {"title": "The Wire", "year": 2002}, "episode": EPISODE},
        ],
        [201, 409],
    ),
    (
        "episode, then show by more ids",
        [
            {"show": SHOW, "episode": EPISODE},
            {"show": {"ids": {"tvdb": 79126, "imdb": "tt0306414"}}, "episode": EPISODE},
        ],
        [201, 409],
    ),
    (
        "episode with ids, then its ids alone",
        [
            {"show": SHOW, "episode": EPISODE | {"ids": {"tvdb": 349232}}},
            {"episode": {"ids": {"tvdb": 349232}}},
        ],
        [201, 409],
    ),
    (
        "episode ids alone, then show + number and those ids",
        [
            {"episode": {"ids": {"trakt": 73640}}},
            {"show": SHOW, "episode": EPISODE | {"ids": {"trakt": 73640}}},
        ],
        [201, 409],
    ),
    (
        "next episode",
        [{"show": SHOW, "episode": EPISODE}, {"show": SHOW, "episode": {"season": 1, "number": 3}}],
        [201, 201],
    ),
]


@pytest.mark.parametrize(
    ("case", "items", "statuses"), REPEAT_CASES, ids=[c[0] for c in REPEAT_CASES]
)
async def test_repeat_stop_is_409_whatever_ids_name_the_item(
    sb, client, token, case, items, statuses
):
    url = f"{sb.env['TRAKT_API_URL']}/scrobble/stop"
    answers = [
        await client.post(url, json={"progress": 95} | item, headers=headers(sb, token))
        for item in items
    ]
    assert [a.status_code for a in answers] == statuses, [a.text for a in answers]
    assert len(sb.trakt.snapshot()["history"]) == statuses.count(201)


async def test_history_add_makes_the_item_known(sb, client, token):
    """An item seen in a history add (with title, year and ids) is the same item when a later
    scrobble names it by title + year only: the repeat stop after it is 409."""
    api = sb.env["TRAKT_API_URL"]
    added = await client.post(
        f"{api}/sync/history", json={"movies": [MOVIE]}, headers=headers(sb, token)
    )
    assert added.status_code == 201
    stops = [
        await client.post(
            f"{api}/scrobble/stop",
            json={"progress": 95, "movie": movie},
            headers=headers(sb, token),
        )
        for movie in ({"ids": {"tmdb": 949}}, {"title": "Heat", "year": 1995})
    ]
    assert [r.status_code for r in stops] == [201, 409]


@pytest.mark.parametrize("how", ["empty", "removed"])
async def test_request_without_user_agent_is_refused(sb, client, token, how):
    """httpx sends its own User-Agent by default: send an empty one, or none at all."""
    sent = headers(sb, token)
    del sent["User-Agent"]
    url = f"{sb.env['TRAKT_API_URL']}/scrobble/start"
    body = {"progress": 5.0, "movie": MOVIE}
    async with httpx.AsyncClient(timeout=10.0) as bare:
        if how == "empty":
            response = await bare.post(url, json=body, headers=sent | {"User-Agent": ""})
        else:
            del bare.headers["User-Agent"]
            response = await bare.post(url, json=body, headers=sent)
    [record] = sb.trakt.requests("/scrobble/start")
    assert record.headers.get("user-agent", "") == ""
    assert response.status_code == 403, response.text
    assert response.json()["error"] == "forbidden"
    assert sb.trakt.snapshot()["playback"] == []


async def test_unknown_ids_answer_404(sb, client, token):
    sb.trakt.seed("unknown_ids", [{"imdb": "tt0000000"}])
    body = {"progress": 90, "movie": {"title": "Nope", "year": 2000, "ids": {"imdb": "tt0000000"}}}
    response = await client.post(
        f"{sb.env['TRAKT_API_URL']}/scrobble/stop", json=body, headers=headers(sb, token)
    )
    assert response.status_code == 404


HISTORY_CASES = [
    (
        "movies",
        {"movies": [MOVIE | {"watched_at": "2026-01-02T03:04:05.000Z"}]},
        201,
        {"movies": 1, "episodes": 0},
    ),
    (
        "show seasons episodes",
        {
            "shows": [
                SHOW | {"seasons": [{"number": 1, "episodes": [{"number": 1}, {"number": 2}]}]}
            ]
        },
        201,
        {"movies": 0, "episodes": 2},
    ),
    (
        "episodes by ids",
        {"episodes": [{"ids": {"trakt": 73640}, "watched_at": "2026-01-01T00:00:00Z"}]},
        201,
        {"movies": 0, "episodes": 1},
    ),
    ("bad watched_at", {"movies": [MOVIE | {"watched_at": "yesterday"}]}, 400, None),
    ("movies not a list", {"movies": MOVIE}, 400, None),
    ("not an object", [MOVIE], 400, None),
]


@pytest.mark.parametrize(
    ("case", "body", "status", "added"), HISTORY_CASES, ids=[c[0] for c in HISTORY_CASES]
)
async def test_sync_history_bodies(sb, client, token, case, body, status, added):
    response = await client.post(
        f"{sb.env['TRAKT_API_URL']}/sync/history", json=body, headers=headers(sb, token)
    )
    assert response.status_code == status, response.text
    if added is not None:
        assert response.json()["added"] == added


async def test_history_is_not_deduplicated_and_not_found_reported(sb, client, token):
    url = f"{sb.env['TRAKT_API_URL']}/sync/history"
    body = {"movies": [MOVIE | {"watched_at": "2026-01-02T03:04:05Z"}, {"title": "?"}]}
    for _ in range(2):
        response = await client.post(url, json=body, headers=headers(sb, token))
        assert response.status_code == 201
        assert response.json()["not_found"]["movies"] == [{"title": "?"}]
    assert len(sb.trakt.snapshot()["history"]) == 2


RATING_CASES = [
    ("rating 10", 10, 201),
    ("rating 1", 1, 201),
    ("rating 0", 0, 422),
    ("rating 11", 11, 422),
    ("rating 7.5", 7.5, 422),
]


@pytest.mark.parametrize(
    ("case", "rating", "status"), RATING_CASES, ids=[c[0] for c in RATING_CASES]
)
async def test_sync_ratings(sb, client, token, case, rating, status):
    body = {"movies": [MOVIE | {"rating": rating, "rated_at": "2026-01-02T03:04:05Z"}]}
    response = await client.post(
        f"{sb.env['TRAKT_API_URL']}/sync/ratings", json=body, headers=headers(sb, token)
    )
    assert response.status_code == status, response.text
    assert len(sb.trakt.snapshot()["ratings"]) == (1 if status == 201 else 0)


NESTED_RATING_CASES = [
    ("show", SHOW | {"rating": 9}, {"shows": 1, "seasons": 0, "episodes": 0}, ["show"]),
    (
        "season",
        SHOW | {"seasons": [{"number": 1, "rating": 7}]},
        {"shows": 0, "seasons": 1, "episodes": 0},
        ["season"],
    ),
    (
        "episode",
        SHOW | {"seasons": [{"number": 1, "episodes": [{"number": 2, "rating": 8}]}]},
        {"shows": 0, "seasons": 0, "episodes": 1},
        ["episode"],
    ),
    (
        "all three levels",
        SHOW
        | {
            "rating": 9,
            "seasons": [{"number": 1, "rating": 7, "episodes": [{"number": 2, "rating": 8}]}],
        },
        {"shows": 1, "seasons": 1, "episodes": 1},
        ["show", "season", "episode"],
    ),
]


@pytest.mark.parametrize(
    ("case", "show", "added", "types"),
    NESTED_RATING_CASES,
    ids=[c[0] for c in NESTED_RATING_CASES],
)
async def test_sync_ratings_show_season_episode(sb, client, token, case, show, added, types):
    response = await client.post(
        f"{sb.env['TRAKT_API_URL']}/sync/ratings",
        json={"shows": [show]},
        headers=headers(sb, token),
    )
    assert response.status_code == 201, response.text
    assert response.json()["added"] == {"movies": 0} | added
    assert not any(response.json()["not_found"].values())
    ratings = sb.trakt.snapshot()["ratings"]
    assert [r["type"] for r in ratings] == types


async def test_sync_ratings_nested_episode_is_stored_with_its_show(sb, client, token):
    body = {
        "shows": [
            SHOW
            | {
                "seasons": [
                    {
                        "number": 1,
                        "episodes": [
                            {"number": 2, "rating": 8, "rated_at": "2026-01-02T03:04:05Z"}
                        ],
                    }
                ]
            }
        ]
    }
    url = f"{sb.env['TRAKT_API_URL']}/sync/ratings"
    response = await client.post(url, json=body, headers=headers(sb, token))
    assert response.status_code == 201, response.text
    [rating] = sb.trakt.snapshot()["ratings"]
    assert rating["type"] == "episode"
    assert rating["rating"] == 8
    assert rating["episode"] == {"season": 1, "number": 2}
    assert rating["show"] == SHOW
    assert parse_iso(rating["rated_at"]) == parse_iso("2026-01-02T03:04:05Z")
    listed = await client.get(f"{url}/episodes", headers=headers(sb, token))
    assert [r["episode"] for r in listed.json()] == [{"season": 1, "number": 2}]


BAD_NESTED_RATING_CASES = [
    ("episode rating 0", {"seasons": [{"number": 1, "episodes": [{"number": 2, "rating": 0}]}]}),
    (
        "episode rating 7.5",
        {"seasons": [{"number": 1, "episodes": [{"number": 2, "rating": 7.5}]}]},
    ),
    ("episode without rating", {"seasons": [{"number": 1, "episodes": [{"number": 2}]}]}),
    ("season rating 11", {"seasons": [{"number": 1, "rating": 11}]}),
    ("season without rating", {"seasons": [{"number": 1}]}),
    (
        "good show, bad episode",
        {"rating": 9, "seasons": [{"number": 1, "episodes": [{"number": 2, "rating": "8"}]}]},
    ),
]


@pytest.mark.parametrize(
    ("case", "nested"), BAD_NESTED_RATING_CASES, ids=[c[0] for c in BAD_NESTED_RATING_CASES]
)
async def test_sync_ratings_bad_nested_rating_is_422(sb, client, token, case, nested):
    response = await client.post(
        f"{sb.env['TRAKT_API_URL']}/sync/ratings",
        json={"shows": [SHOW | nested]},
        headers=headers(sb, token),
    )
    assert response.status_code == 422, response.text
    assert response.json()["error_description"] == "rating must be an integer 1-10"
    assert sb.trakt.snapshot()["ratings"] == []


async def test_sync_ratings_nested_not_found(sb, client, token):
    body = {
        "shows": [
            {"title": "?", "seasons": [{"number": 1, "episodes": [{"number": 1, "rating": 5}]}]},
            SHOW | {"seasons": [{"number": "one", "rating": 5}]},
        ]
    }
    response = await client.post(
        f"{sb.env['TRAKT_API_URL']}/sync/ratings", json=body, headers=headers(sb, token)
    )
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["added"] == {"movies": 0, "shows": 0, "seasons": 0, "episodes": 0}
    assert answer["not_found"]["shows"] == [body["shows"][0]]
    assert answer["not_found"]["seasons"] == [{"number": "one", "rating": 5}]
    assert sb.trakt.snapshot()["ratings"] == []


async def test_history_pagination_headers_and_clamped_limit(sb, client, token):
    items = [
        {
            "type": "movie",
            "watched_at": f"2025-01-01T00:{i // 60:02d}:{i % 60:02d}Z",
            "movie": {"title": f"M{i}", "year": 2000, "ids": {"trakt": i + 1}},
        }
        for i in range(250)
    ]
    sb.trakt.seed_history(items)
    url = f"{sb.env['TRAKT_API_URL']}/sync/history/movies"
    response = await client.get(url, params={"page": 2, "limit": 1000}, headers=headers(sb, token))
    assert response.status_code == 200
    assert response.headers["X-Pagination-Page"] == "2"
    assert response.headers["X-Pagination-Limit"] == "100"  # clamped
    assert response.headers["X-Pagination-Page-Count"] == "3"
    assert response.headers["X-Pagination-Item-Count"] == "250"
    body = response.json()
    assert len(body) == 100
    # Newest first: page 2 starts with the 101st newest item.
    assert body[0]["movie"]["title"] == "M149"


async def test_history_read_needs_token(sb, client):
    response = await client.get(
        f"{sb.env['TRAKT_API_URL']}/sync/history/movies", headers=headers(sb, None)
    )
    assert response.status_code == 401


# --- OAuth -----------------------------------------------------------------------------------
def authorize_params(sb: Sandbox, **extra: str) -> dict[str, str]:
    """The authorize request's query: our client, a loopback redirect, state "xyz"."""
    return {
        "response_type": "code",
        "client_id": sb.env["TRAKT_CLIENT_ID"],
        "redirect_uri": "http://127.0.0.1:9/cb",
        "state": "xyz",
    } | extra


async def authorized(sb: Sandbox, client: httpx.AsyncClient, **extra: str) -> dict[str, list[str]]:
    """The query of the fake's redirect back, auto-approving."""
    sb.trakt.auto_approve = True
    params = authorize_params(sb, **extra)
    response = await client.get(f"{sb.env['TRAKT_AUTH_URL']}/oauth/authorize", params=params)
    assert response.status_code == 302
    return parse_qs(urlsplit(response.headers["Location"]).query)


async def authorize_code(sb: Sandbox, client: httpx.AsyncClient, **extra: str) -> str:
    query = await authorized(sb, client, **extra)
    assert query["state"] == ["xyz"]
    return query["code"][0]


def token_body(sb: Sandbox, **fields: Any) -> dict[str, Any]:
    return {
        "client_id": sb.env["TRAKT_CLIENT_ID"],
        "client_secret": sb.env["TRAKT_CLIENT_SECRET"],
        "redirect_uri": "http://127.0.0.1:9/cb",
        "grant_type": "authorization_code",
    } | fields


TOKEN_CASES = [
    ("good", {}, 200, None),
    ("wrong secret", {"client_secret": "x"}, 401, "invalid_client"),
    ("other redirect", {"redirect_uri": "http://evil/cb"}, 400, "invalid_grant"),
    ("bad grant type", {"grant_type": "password"}, 400, "unsupported_grant_type"),
]


@pytest.mark.parametrize(
    ("case", "fields", "status", "error"), TOKEN_CASES, ids=[c[0] for c in TOKEN_CASES]
)
async def test_code_exchange(sb, client, case, fields, status, error):
    code = await authorize_code(sb, client)
    response = await client.post(
        f"{sb.env['TRAKT_AUTH_URL']}/oauth/token", json=token_body(sb, code=code, **fields)
    )
    assert response.status_code == status, response.text
    if error:
        assert response.json()["error"] == error
    else:
        data = response.json()
        assert {
            "access_token",
            "token_type",
            "expires_in",
            "refresh_token",
            "scope",
            "created_at",
        } <= set(data)
        assert data["expires_in"] == 7 * 24 * 3600


async def test_code_is_single_use(sb, client):
    code = await authorize_code(sb, client)
    url = f"{sb.env['TRAKT_AUTH_URL']}/oauth/token"
    assert (await client.post(url, json=token_body(sb, code=code))).status_code == 200
    again = await client.post(url, json=token_body(sb, code=code))
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(("verifier", "status"), [("v" * 50, 200), ("w" * 50, 400), (None, 400)])
async def test_pkce_s256(sb, client, verifier, status):
    code = await authorize_code(
        sb, client, code_challenge=s256("v" * 50), code_challenge_method="S256"
    )
    fields: dict[str, Any] = {"code": code}
    if verifier is not None:
        fields["code_verifier"] = verifier
    response = await client.post(
        f"{sb.env['TRAKT_AUTH_URL']}/oauth/token", json=token_body(sb, **fields)
    )
    assert response.status_code == status


async def test_pkce_without_a_method_is_plain(sb, client):
    # RFC 7636 4.3, as Trakt's authorization server (Doorkeeper) reads it.
    code = await authorize_code(sb, client, code_challenge="v" * 50)
    url = f"{sb.env['TRAKT_AUTH_URL']}/oauth/token"
    hashed = await client.post(url, json=token_body(sb, code=code, code_verifier="x" * 50))
    plain = await client.post(url, json=token_body(sb, code=code, code_verifier="v" * 50))
    assert (hashed.status_code, plain.status_code) == (400, 200)


@pytest.mark.parametrize("method", ["s256", "SHA256", "PLAIN"])
async def test_pkce_method_names_are_case_sensitive(sb, client, method):
    query = await authorized(
        sb, client, code_challenge=s256("v" * 50), code_challenge_method=method
    )
    assert query == {"error": ["invalid_request"], "state": ["xyz"]}


async def test_a_verifier_for_a_code_issued_without_a_challenge_does_not_fit(sb, client):
    code = await authorize_code(sb, client)
    response = await client.post(
        f"{sb.env['TRAKT_AUTH_URL']}/oauth/token",
        json=token_body(sb, code=code, code_verifier="v" * 50),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_pkce_survives_the_consent_page(sb, client, browser):
    params = authorize_params(sb, code_challenge=s256("v" * 50), code_challenge_method="S256")
    page = await client.get(f"{sb.env['TRAKT_AUTH_URL']}/oauth/authorize", params=params)
    approved = await browser.submit(page, {}, "approve")
    code = parse_qs(urlsplit(approved.headers["Location"]).query)["code"][0]
    url = f"{sb.env['TRAKT_AUTH_URL']}/oauth/token"
    wrong = await client.post(url, json=token_body(sb, code=code, code_verifier="w" * 50))
    right = await client.post(url, json=token_body(sb, code=code, code_verifier="v" * 50))
    assert (wrong.status_code, right.status_code) == (400, 200)


async def test_refresh_tokens_are_single_use_and_kill_the_old_pair(sb, client):
    code = await authorize_code(sb, client)
    url = f"{sb.env['TRAKT_AUTH_URL']}/oauth/token"
    first = (await client.post(url, json=token_body(sb, code=code))).json()
    refresh = token_body(sb, grant_type="refresh_token", refresh_token=first["refresh_token"])
    second = await client.post(url, json=refresh)
    assert second.status_code == 200
    assert second.json()["refresh_token"] != first["refresh_token"]
    reused = await client.post(url, json=refresh)
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    api = f"{sb.env['TRAKT_API_URL']}/sync/history"
    old = await client.get(api, headers=headers(sb, first["access_token"]))
    new = await client.get(api, headers=headers(sb, second.json()["access_token"]))
    assert (old.status_code, new.status_code) == (401, 200)


async def test_revoke(sb, client):
    code = await authorize_code(sb, client)
    pair = (
        await client.post(f"{sb.env['TRAKT_AUTH_URL']}/oauth/token", json=token_body(sb, code=code))
    ).json()
    revoke = {
        "token": pair["access_token"],
        "client_id": sb.env["TRAKT_CLIENT_ID"],
        "client_secret": sb.env["TRAKT_CLIENT_SECRET"],
    }
    response = await client.post(f"{sb.env['TRAKT_AUTH_URL']}/oauth/revoke", json=revoke)
    assert response.status_code == 200
    after = await client.get(
        f"{sb.env['TRAKT_API_URL']}/sync/history", headers=headers(sb, pair["access_token"])
    )
    assert after.status_code == 401


async def test_expired_access_token_answers_401(sb, client):
    code = await authorize_code(sb, client)
    pair = (
        await client.post(f"{sb.env['TRAKT_AUTH_URL']}/oauth/token", json=token_body(sb, code=code))
    ).json()
    assert sb.trakt.expire_token(pair["access_token"])
    after = await client.get(
        f"{sb.env['TRAKT_API_URL']}/sync/history", headers=headers(sb, pair["access_token"])
    )
    assert after.status_code == 401


DEVICE_CASES = [
    ("pending", None, 400),
    ("approved", "approve", 200),
    ("denied", "deny", 418),
    ("expired", "expire", 410),
]


@pytest.mark.parametrize(("case", "step", "status"), DEVICE_CASES, ids=[c[0] for c in DEVICE_CASES])
async def test_device_flow_poll_statuses(sb, client, case, step, status):
    sb.trakt.state.device_interval = 0
    auth = sb.env["TRAKT_AUTH_URL"]
    created = (
        await client.post(
            f"{auth}/oauth/device/code", json={"client_id": sb.env["TRAKT_CLIENT_ID"]}
        )
    ).json()
    assert {"device_code", "user_code", "verification_url", "expires_in", "interval"} <= set(
        created
    )
    if step == "approve":
        sb.trakt.approve_device(created["user_code"])
    elif step == "deny":
        sb.trakt.set_device_status(created["user_code"], "denied")
    elif step == "expire":
        sb.trakt.set_device_status(created["user_code"], "expired")
    poll = {
        "code": created["device_code"],
        "client_id": sb.env["TRAKT_CLIENT_ID"],
        "client_secret": sb.env["TRAKT_CLIENT_SECRET"],
    }
    response = await client.post(f"{auth}/oauth/device/token", json=poll)
    assert response.status_code == status
    if status == 200:
        assert "access_token" in response.json()
        used = await client.post(f"{auth}/oauth/device/token", json=poll)
        assert used.status_code == 409


async def test_device_flow_bad_code_and_slow_down(sb, client):
    auth = sb.env["TRAKT_AUTH_URL"]
    created = (
        await client.post(
            f"{auth}/oauth/device/code", json={"client_id": sb.env["TRAKT_CLIENT_ID"]}
        )
    ).json()
    poll = {
        "code": created["device_code"],
        "client_id": sb.env["TRAKT_CLIENT_ID"],
        "client_secret": sb.env["TRAKT_CLIENT_SECRET"],
    }
    assert (await client.post(f"{auth}/oauth/device/token", json=poll)).status_code == 400
    assert (await client.post(f"{auth}/oauth/device/token", json=poll)).status_code == 429
    bad = poll | {"code": "nope"}
    assert (await client.post(f"{auth}/oauth/device/token", json=bad)).status_code == 404


async def _device_code(sb: Sandbox, client: httpx.AsyncClient) -> dict[str, Any]:
    sb.trakt.state.device_interval = 0
    created = await client.post(
        f"{sb.env['TRAKT_AUTH_URL']}/oauth/device/code",
        json={"client_id": sb.env["TRAKT_CLIENT_ID"]},
    )
    assert created.status_code == 200
    data: dict[str, Any] = created.json()
    return data


async def _device_poll(sb: Sandbox, client: httpx.AsyncClient, device_code: str) -> httpx.Response:
    return await client.post(
        f"{sb.env['TRAKT_AUTH_URL']}/oauth/device/token",
        json={
            "code": device_code,
            "client_id": sb.env["TRAKT_CLIENT_ID"],
            "client_secret": sb.env["TRAKT_CLIENT_SECRET"],
        },
    )


# (how the person reaches the page, what they type, which button) -> poll status
BROWSER_CASES = [
    ("type the code", "plain", "code", "approve", 200),
    ("type it in lower case with spaces", "plain", "messy", "approve", 200),
    ("link carries the code", "query", None, "approve", 200),
    ("deny", "plain", "code", "deny", 418),
]


@pytest.mark.parametrize(
    ("case", "link", "typed", "button", "status"), BROWSER_CASES, ids=[c[0] for c in BROWSER_CASES]
)
async def test_device_flow_completed_in_a_browser(
    sb, client, browser, case, link, typed, button, status
):
    created = await _device_code(sb, client)
    code = created["user_code"]
    url = created["verification_url"]
    page = await client.get(url, params={"code": code} if link == "query" else None)
    form = browser.form(page)
    assert form.inputs["user_code"][0] == "text"  # visible: a person can type into it
    assert form.inputs["user_code"][1] == (code if link == "query" else "")
    fill = {}
    if typed == "code":
        fill["user_code"] = code
    elif typed == "messy":
        fill["user_code"] = f" {code.lower()} "
    decided = await browser.submit(page, fill, button)
    assert decided.status_code == 200, decided.text
    polled = await _device_poll(sb, client, created["device_code"])
    assert polled.status_code == status, polled.text
    if status == 200:
        access = polled.json()["access_token"]
        me = await client.get(
            f"{sb.env['TRAKT_API_URL']}/users/settings", headers=headers(sb, access)
        )
        assert me.json()["user"]["username"] == "sandbox"


async def test_device_page_with_a_wrong_code_is_404(sb, client, browser):
    created = await _device_code(sb, client)
    page = await client.get(created["verification_url"])
    decided = await browser.submit(page, {"user_code": "NOTACODE"}, "approve")
    assert decided.status_code == 404
    assert (await _device_poll(sb, client, created["device_code"])).status_code == 400
