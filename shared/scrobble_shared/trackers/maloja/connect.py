"""Connecting Maloja: the user gives the address of their server and one of its API keys
(Maloja's admin pages, "API Keys"; the first is printed at the server's first start). The
key is checked and named by the ListenBrainz protocol's ``validate-token`` at the server's
ListenBrainz-compatible API, as for ListenBrainz; Maloja answers 401 for a key it does not
know and names the server's owner (its ``NAME`` setting) for one it does. A key is revoked
on the user's own server: nothing to call on disconnect."""

from __future__ import annotations

from typing import Final

from scrobble_shared.trackers.connect import GetRequest, UserToken, join_url
from scrobble_shared.trackers.listenbrainz.connect import parse_validate_token, validate_request
from scrobble_shared.trackers.maloja.client import LISTENBRAINZ_API


def validate_at_server(server_url: str, token: str) -> GetRequest:
    """``validate-token`` at the ListenBrainz-compatible API of the server at ``server_url``."""
    return validate_request(join_url(server_url, LISTENBRAINZ_API), token)


FLOW: Final = UserToken(
    validate=validate_at_server,
    parse=parse_validate_token,
    where='your Maloja server\'s admin pages ("API Keys")',
    user_api_url=True,
)
