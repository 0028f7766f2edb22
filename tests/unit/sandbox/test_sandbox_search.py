"""The catalogue reads of the fakes (Trakt and Simkl text search and id lookup, AniList
`Media(search:)`), with the shapes the real services answer, the rules they enforce, a
seeded catalogue, and requests recorded so tests can count lookups."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from scrobble_sandbox import Sandbox


def trakt_headers(sb: Sandbox, token: str | None = None, **override: str | None) -> dict[str, str]:
    base: dict[str, str | None] = {
        "trakt-api-key": sb.env["TRAKT_CLIENT_ID"],
        "trakt-api-version": "2",
        "User-Agent": "scrobble-tests/1.0",
        "Authorization": f"Bearer {token}" if token else None,
    }
    base.update(override)
    return {k: v for k, v in base.items() if v is not None}


def simkl_headers(sb: Sandbox, token: str | None = None) -> dict[str, str]:
    found = {"simkl-api-key": sb.env["SIMKL_CLIENT_ID"], "User-Agent": "scrobble-tests/1.0"}
    if token:
        found["Authorization"] = f"Bearer {token}"
    return found


# --- Trakt ---------------------------------------------------------------------------------


async def test_trakt_text_search_ranks_and_filters_by_year(
    sb: Sandbox, client: httpx.AsyncClient, token: str
) -> None:
    url = sb.env["TRAKT_API_URL"] + "/search/movie"
    both = await client.get(url, params={"query": "heat"}, headers=trakt_headers(sb))
    assert both.status_code == 200
    assert both.headers["X-Pagination-Item-Count"] == "2"
    assert [r["movie"]["year"] for r in both.json()] == [1995, 1986]
    first = both.json()[0]
    assert first["type"] == "movie"
    assert first["score"] == 1000.0
    assert first["movie"] == {
        "title": "Heat",
        "year": 1995,
        "ids": {"trakt": 1074, "slug": "heat-1995", "imdb": "tt0113277", "tmdb": 949},
    }
    one = await client.get(
        url, params={"query": "Heat", "years": "1986"}, headers=trakt_headers(sb, token)
    )
    assert [r["movie"]["ids"]["trakt"] for r in one.json()] == [10239]
    accents = await client.get(url, params={"query": "amelie"}, headers=trakt_headers(sb))
    assert [r["movie"]["title"] for r in accents.json()] == ["Amélie"]
    none = await client.get(url, params={"query": "Heat Wave"}, headers=trakt_headers(sb))
    assert none.json() == []
    assert len(sb.trakt.requests("/search/movie")) == 4


async def test_trakt_search_checks_headers_and_an_optional_token(
    sb: Sandbox, client: httpx.AsyncClient
) -> None:
    url = sb.env["TRAKT_API_URL"] + "/search/movie"
    params = {"query": "heat"}
    no_key = await client.get(
        url, params=params, headers=trakt_headers(sb, **{"trakt-api-key": None})
    )
    assert no_key.status_code == 403
    bad_token = await client.get(url, params=params, headers=trakt_headers(sb, "not-a-token"))
    assert bad_token.status_code == 401
    unknown_type = await client.get(
        sb.env["TRAKT_API_URL"] + "/search/planet", params=params, headers=trakt_headers(sb)
    )
    assert unknown_type.status_code == 404


async def test_trakt_id_lookup_of_an_episode_gives_episode_and_show(
    sb: Sandbox, client: httpx.AsyncClient, token: str
) -> None:
    url = sb.env["TRAKT_API_URL"] + "/search/imdb/tt0959621"
    found = await client.get(url, params={"type": "episode"}, headers=trakt_headers(sb, token))
    assert found.status_code == 200
    [result] = found.json()
    assert result["type"] == "episode"
    assert result["episode"]["ids"]["trakt"] == 73482
    assert (result["episode"]["season"], result["episode"]["number"]) == (1, 1)
    assert result["show"]["title"] == "Breaking Bad"
    movie = await client.get(url, params={"type": "movie"}, headers=trakt_headers(sb))
    assert movie.json() == []


async def test_trakt_catalogue_is_seedable(sb: Sandbox, client: httpx.AsyncClient) -> None:
    sb.trakt.seed(
        "catalog", [{"type": "movie", "title": "Obscure Film", "year": 1970, "ids": {"trakt": 9}}]
    )
    found = await client.get(
        sb.env["TRAKT_API_URL"] + "/search/movie",
        params={"query": "obscure film", "years": "1970"},
        headers=trakt_headers(sb),
    )
    assert [r["movie"]["ids"] for r in found.json()] == [{"trakt": 9}]
    with pytest.raises(ValueError, match="needs ids"):
        sb.trakt.seed("catalog", [{"type": "movie", "title": "No Ids"}])


# --- Simkl ---------------------------------------------------------------------------------


async def test_simkl_text_search_answers_simkl_ids_without_year_filter(
    sb: Sandbox, client: httpx.AsyncClient, token: str
) -> None:
    url = sb.env["SIMKL_API_URL"] + "/search/movie"
    found = await client.get(url, params={"q": "Heat"}, headers=simkl_headers(sb, token))
    assert found.status_code == 200
    results: list[dict[str, Any]] = found.json()
    assert {(r["title"], r["year"], r["ids"]["simkl_id"]) for r in results} == {
        ("Heat", 1995, 53452),
        ("Heat", 1986, 94011),
    }
    assert all(r["endpoint_type"] == "movies" for r in results)
    anime = await client.get(
        sb.env["SIMKL_API_URL"] + "/search/anime",
        params={"q": "frieren beyond"},
        headers=simkl_headers(sb),
    )
    [frieren] = anime.json()
    assert frieren["title_en"] == "Frieren: Beyond Journey's End"
    no_app = await client.get(url, params={"q": "Heat"})
    assert no_app.status_code == 401
    assert no_app.json()["error"] == "client_id_failed"
    by_query = await client.get(url, params={"q": "Heat", "client_id": sb.env["SIMKL_CLIENT_ID"]})
    assert by_query.status_code == 200
    assert (await client.get(url, headers=simkl_headers(sb))).status_code == 400


async def test_simkl_id_lookup(sb: Sandbox, client: httpx.AsyncClient) -> None:
    url = sb.env["SIMKL_API_URL"] + "/search/id"
    found = await client.get(url, params={"traktslug": "heat-1995"}, headers=simkl_headers(sb))
    [result] = found.json()
    assert (result["type"], result["ids"]["simkl"]) == ("movie", 53452)
    by_mal = await client.get(url, params={"mal": "52991"}, headers=simkl_headers(sb))
    assert [r["ids"]["simkl"] for r in by_mal.json()] == [2185386]
    missing = await client.get(url, params={"imdb": "tt0000001"}, headers=simkl_headers(sb))
    assert missing.status_code == 200
    assert missing.json() == []
    assert len(sb.simkl.requests("/search/id")) == 3


# --- AniList -------------------------------------------------------------------------------

SEARCH = """query ($search: String!) { Media(search: $search, type: ANIME) {
  id idMal title { romaji english } startDate { year } seasonYear } }"""


async def test_anilist_search_answers_the_best_match(
    sb: Sandbox, client: httpx.AsyncClient, token: str
) -> None:
    url = sb.env["ANILIST_API_URL"]

    async def search(text: str) -> httpx.Response:
        return await client.post(
            url,
            json={"query": SEARCH, "variables": {"search": text}},
            headers={"Authorization": f"Bearer {token}"},
        )

    exact = (await search("Frieren: Beyond Journey's End")).json()["data"]["Media"]
    assert exact == {
        "id": 154587,
        "idMal": 52991,
        "title": {"romaji": "Sousou no Frieren", "english": "Frieren: Beyond Journey's End"},
        "startDate": {"year": 2023},
        "seasonYear": 2023,
    }
    sb.anilist.seed("media", [{"id": 999, "title": "Frieren Recap", "year": 2024}])
    # Best match: all words and the fewest extra ones, not the first in the catalogue.
    assert (await search("frieren")).json()["data"]["Media"]["id"] == 999
    missing = await search("No Such Anime")
    assert missing.status_code == 404
    assert missing.json()["errors"][0]["message"] == "Not Found."
    assert len(sb.anilist.requests("/")) == 3
