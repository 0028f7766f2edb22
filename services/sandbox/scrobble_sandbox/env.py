"""The environment a client needs to talk to the sandbox, and its `export` lines."""

import shlex

from scrobble_sandbox import credentials
from scrobble_sandbox.registry import FAKES

# Each *_URL has the shape of the real one, so a client only swaps the base; the real
# value is beside each fake's own.
URL_PATHS = {name: path for fake in FAKES for name, path in fake.env_urls().items()}
CREDENTIALS = {name: value for fake in FAKES for name, value in fake.env_values.items()}


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
