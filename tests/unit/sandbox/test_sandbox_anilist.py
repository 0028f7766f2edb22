"""AniList fake: every document validated against the schema, errors[] with the statuses
the README documents, Viewer, SaveMediaListEntry, chunks, idMal lookup, code flow."""

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

VIEWER = "query { Viewer { id name } }"
SAVE = """mutation ($mediaId: Int, $progress: Int, $status: MediaListStatus, $scoreRaw: Int) {
  SaveMediaListEntry(mediaId: $mediaId, progress: $progress, status: $status, scoreRaw: $scoreRaw) {
    id mediaId progress status score(format: POINT_100)
  }
}"""
BY_MAL = "query ($idMal: Int) { Media(idMal: $idMal, type: ANIME) { id idMal episodes } }"
COLLECTION = """query ($userId: Int, $chunk: Int, $perChunk: Int) {
  MediaListCollection(userId: $userId, type: ANIME, chunk: $chunk, perChunk: $perChunk) {
    hasNextChunk lists { status entries { mediaId progress } }
  }
}"""

CASES: list[tuple[str, str, dict[str, Any], bool, int, str | None]] = [
    ("viewer", VIEWER, {}, True, 200, None),
    ("viewer without token", VIEWER, {}, False, 401, "Unauthorized."),
    ("unknown field", "query { Viewer { id nickname } }", {}, True, 400, "Cannot query field"),
    ("syntax error", "query { Viewer { id ", {}, True, 400, "Syntax Error"),
    (
        "scoreFormat argument does not exist",
        "mutation { SaveMediaListEntry(mediaId: 1, scoreFormat: POINT_10) { id } }",
        {},
        True,
        400,
        "Unknown argument",
    ),
    ("bad enum", SAVE, {"mediaId": 1, "status": "WATCHING"}, True, 400, "WATCHING"),
    ("variable of wrong type", SAVE, {"mediaId": "one"}, True, 400, "Int"),
    (
        "save ok",
        SAVE,
        {"mediaId": 1, "progress": 3, "status": "CURRENT", "scoreRaw": 85},
        True,
        200,
        None,
    ),
    ("save without token", SAVE, {"mediaId": 1, "progress": 3}, False, 401, "Unauthorized."),
    ("scoreRaw 101", SAVE, {"mediaId": 1, "scoreRaw": 101}, True, 400, "validation"),
    ("progress -1", SAVE, {"mediaId": 1, "progress": -1}, True, 400, "validation"),
    ("unknown media", SAVE, {"mediaId": 999999, "progress": 1}, True, 400, "validation"),
    ("mal lookup", BY_MAL, {"idMal": 16498}, False, 200, None),
    ("mal lookup missing", BY_MAL, {"idMal": 424242}, False, 404, "Not Found."),
    (
        "collection needs a user",
        "query { MediaListCollection(type: ANIME) { hasNextChunk } }",
        {},
        False,
        400,
        "validation",
    ),
]


@pytest.mark.parametrize(
    ("case", "query", "variables", "auth", "status", "message"), CASES, ids=[c[0] for c in CASES]
)
async def test_graphql_rules(sb, client, token, case, query, variables, auth, status, message):
    headers = {"Authorization": f"Bearer {token}"} if auth else {}
    response = await client.post(
        sb.env["ANILIST_API_URL"], json={"query": query, "variables": variables}, headers=headers
    )
    assert response.status_code == status, response.text
    body = response.json()
    if message is None:
        assert "errors" not in body
        assert body["data"]
    else:
        assert any(message in e["message"] for e in body["errors"]), body
        assert all("status" in e for e in body["errors"])
    saved = sb.anilist.snapshot()["saves"]
    assert len(saved) == (1 if case == "save ok" else 0)


async def test_invalid_token_is_400_even_for_public_queries(sb, client):
    response = await client.post(
        sb.env["ANILIST_API_URL"],
        json={"query": BY_MAL, "variables": {"idMal": 1}},
        headers={"Authorization": "Bearer not.a.jwt"},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == "Invalid token"


async def test_partial_errors_come_with_200(sb, client):
    query = (
        "query { a: Media(idMal: 1, type: ANIME) { id } "
        "b: Media(idMal: 999999, type: ANIME) { id } }"
    )
    response = await client.post(sb.env["ANILIST_API_URL"], json={"query": query})
    assert response.status_code == 200
    body = response.json()
    assert body["data"]["a"] == {"id": 1}
    assert body["data"]["b"] is None
    assert body["errors"][0]["status"] == 404


async def test_save_updates_and_scores(sb, client, token):
    url, headers = sb.env["ANILIST_API_URL"], {"Authorization": f"Bearer {token}"}
    first = (
        await client.post(
            url,
            json={"query": SAVE, "variables": {"mediaId": 1, "progress": 5, "scoreRaw": 70}},
            headers=headers,
        )
    ).json()
    second = (
        await client.post(
            url, json={"query": SAVE, "variables": {"mediaId": 1, "progress": 6}}, headers=headers
        )
    ).json()
    a, b = first["data"]["SaveMediaListEntry"], second["data"]["SaveMediaListEntry"]
    assert a["id"] == b["id"]
    assert (b["progress"], b["score"]) == (6, 70.0)
    assert sb.anilist.snapshot()["entries"][0]["progress"] == 6


async def test_collection_chunks(sb, client):
    sb.anilist.seed(
        "entries", [{"mediaId": 100 + i, "status": "COMPLETED", "progress": 12} for i in range(7)]
    )
    url = sb.env["ANILIST_API_URL"]
    seen, chunk = [], 1
    while True:
        data = (
            await client.post(
                url,
                json={
                    "query": COLLECTION,
                    "variables": {"userId": 424242, "chunk": chunk, "perChunk": 3},
                },
            )
        ).json()
        collection = data["data"]["MediaListCollection"]
        seen += [e["mediaId"] for group in collection["lists"] for e in group["entries"]]
        if not collection["hasNextChunk"]:
            break
        chunk += 1
    assert chunk == 3
    assert seen == [100 + i for i in range(7)]


async def test_code_flow_and_token_works(sb, client):
    sb.anilist.auto_approve = True
    auth = sb.env["ANILIST_AUTH_URL"]
    redirect = await client.get(
        f"{auth}/authorize",
        params={
            "client_id": sb.env["ANILIST_CLIENT_ID"],
            "redirect_uri": "http://127.0.0.1:9/cb",
            "response_type": "code",
            "sandbox_user": "miko",
        },
    )
    code = parse_qs(urlsplit(redirect.headers["Location"]).query)["code"][0]
    body = {
        "grant_type": "authorization_code",
        "client_id": sb.env["ANILIST_CLIENT_ID"],
        "client_secret": sb.env["ANILIST_CLIENT_SECRET"],
        "redirect_uri": "http://127.0.0.1:9/cb",
        "code": code,
    }
    response = await client.post(f"{auth}/token", json=body)
    assert response.status_code == 200
    access = response.json()["access_token"]
    assert access.count(".") == 2
    assert response.json()["expires_in"] == 365 * 24 * 3600
    viewer = await client.post(
        sb.env["ANILIST_API_URL"],
        json={"query": VIEWER},
        headers={"Authorization": f"Bearer {access}"},
    )
    assert viewer.json()["data"]["Viewer"]["name"] == "miko"
    assert (await client.post(f"{auth}/token", json=body)).status_code == 400
    assert (
        await client.post(f"{auth}/token", json=body | {"client_secret": "x"})
    ).status_code == 401


# A valid document asking for a root field the fake does not implement gets that field null
# and an error naming it, HTTP 200: never a silent null. The status of a served field's own
# error still wins when every root field failed.
UNIMPLEMENTED_CASES: list[tuple[str, str, bool, int, dict[str, Any], list[str]]] = [
    (
        "query field alone",
        "{ GenreCollection }",
        True,
        200,
        {"GenreCollection": None},
        ["GenreCollection"],
    ),
    (
        "beside a served field",
        "{ Viewer { name } Page { pageInfo { total } } }",
        True,
        200,
        {"Viewer": {"name": "sandbox"}, "Page": None},
        ["Page"],
    ),
    (
        "mutation",
        'mutation { UpdateUser(about: "hi") { id } }',
        True,
        200,
        {"UpdateUser": None},
        ["UpdateUser"],
    ),
    (
        "with a served field that failed",
        "{ Viewer { id } SiteStatistics { users { nodes { count } } } }",
        False,
        401,
        {"Viewer": None, "SiteStatistics": None},
        ["SiteStatistics"],
    ),
]


@pytest.mark.parametrize(
    ("case", "query", "authed", "status", "data", "missing"),
    UNIMPLEMENTED_CASES,
    ids=[c[0] for c in UNIMPLEMENTED_CASES],
)
async def test_unimplemented_root_field_is_an_error_not_null(
    sb, client, token, case, query, authed, status, data, missing
):
    response = await client.post(
        sb.env["ANILIST_API_URL"],
        json={"query": query},
        headers={"Authorization": f"Bearer {token}"} if authed else {},
    )
    assert response.status_code == status, response.text
    body = response.json()
    assert body["data"] == data
    sandbox_errors = [e for e in body["errors"] if e["message"].startswith("sandbox:")]
    assert [e["message"] for e in sandbox_errors] == [
        f"sandbox: field {name} not implemented" for name in missing
    ]
    assert [e["path"] for e in sandbox_errors] == [[name] for name in missing]
