"""Connecting ListenBrainz: the user pastes their user token (listenbrainz.org/settings),
checked and named by ``GET /1/validate-token``. ListenBrainz answers 200 ``valid: false``
for an unknown token (a 401 means the same); anything else is the service failing, not the
token. A token is reset by its user on listenbrainz.org: nothing to call on disconnect."""

from __future__ import annotations

from typing import Any, Final

from scrobble_shared.trackers.connect import (
    ExchangeFailed,
    GetRequest,
    InvalidUserToken,
    UserToken,
    error_text,
    join_url,
)


def validate_request(api_url: str, token: str) -> GetRequest:
    return GetRequest(
        join_url(api_url, "/validate-token"),
        {"Authorization": f"Token {token}", "Accept": "application/json"},
    )


def parse_validate_token(status: int, body: Any) -> str | None:
    """The user name of a valid token (None when ListenBrainz names nobody), or
    :class:`InvalidUserToken`."""
    if status == 401:
        raise InvalidUserToken
    if status != 200 or not isinstance(body, dict):
        raise ExchangeFailed(f"validate-token answered {status} ({error_text(body)})")
    if body.get("valid") is not True:
        raise InvalidUserToken
    name = body.get("user_name")
    return name if isinstance(name, str) and name else None


FLOW: Final = UserToken(
    validate=validate_request,
    parse=parse_validate_token,
    where='your ListenBrainz settings page ("User token")',
)
