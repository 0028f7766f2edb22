"""The environment a client needs to talk to the sandbox, and its `export` lines."""

import shlex

from scrobble_sandbox import credentials

CREDENTIALS = {
    "TRAKT_CLIENT_ID": credentials.TRAKT_CLIENT_ID,
    "TRAKT_CLIENT_SECRET": credentials.TRAKT_CLIENT_SECRET,
    "LASTFM_API_KEY": credentials.LASTFM_API_KEY,
    "LASTFM_API_SECRET": credentials.LASTFM_API_SECRET,
    "SIMKL_CLIENT_ID": credentials.SIMKL_CLIENT_ID,
    "SIMKL_CLIENT_SECRET": credentials.SIMKL_CLIENT_SECRET,
    "ANILIST_CLIENT_ID": credentials.ANILIST_CLIENT_ID,
    "ANILIST_CLIENT_SECRET": credentials.ANILIST_CLIENT_SECRET,
}

# Each *_URL has the shape of the real one, so a client only swaps the base:
# the real value is in the comment.
URL_PATHS = {
    "TRAKT_API_URL": "/trakt-api",  # https://api.trakt.tv
    "TRAKT_AUTH_URL": "/trakt-auth",  # https://auth.trakt.tv (then /oauth/...)
    "LASTFM_API_URL": "/lastfm-api/2.0/",  # https://ws.audioscrobbler.com/2.0/
    "LASTFM_AUTH_URL": "/lastfm-www/api/auth/",  # https://www.last.fm/api/auth/
    "LISTENBRAINZ_API_URL": "/listenbrainz/1",  # https://api.listenbrainz.org/1
    "SIMKL_API_URL": "/simkl-api",  # https://api.simkl.com
    "SIMKL_AUTH_URL": "/simkl-www",  # https://simkl.com (then /oauth/authorize)
    "ANILIST_API_URL": "/anilist-graphql",  # https://graphql.anilist.co
    "ANILIST_AUTH_URL": "/anilist-www/api/v2/oauth",  # https://anilist.co/api/v2/oauth
}


def url_host(host: str) -> str:
    """The host to put in URLs: a wildcard bind is reached on loopback; IPv6 is bracketed."""
    if host in ("", "0.0.0.0"):  # noqa: S104 - a bind address, not a choice to listen widely
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def sandbox_env(base_url: str) -> dict[str, str]:
    """Every variable `scrobble sandbox` exports, in a stable order."""
    env = {name: base_url + path for name, path in URL_PATHS.items()}
    env.update(CREDENTIALS)
    env["SANDBOX_TOKEN"] = credentials.SANDBOX_TOKEN
    return env


def export_lines(env: dict[str, str]) -> list[str]:
    return [f"export {name}={shlex.quote(value)}" for name, value in env.items()]
