"""Asking a tracker whose token a user gave: the one call behind the gateway's connect
route for trackers whose users paste a token (ListenBrainz, Maloja) and the CLI's
``connection add --token``. The request and what its answer means are the tracker's
(:class:`~scrobble_shared.trackers.connect.UserToken`, pure); this module makes the call.
"""

from __future__ import annotations

import httpx

from scrobble_shared.json_limits import json_or_none
from scrobble_shared.trackers.connect import UserToken


async def check_user_token(
    http: httpx.AsyncClient, flow: UserToken, api_url: str, token: str
) -> str | None:
    """The name of the account ``token`` belongs to at the tracker at ``api_url`` (None when
    the tracker names nobody). Raises :class:`~scrobble_shared.trackers.connect.InvalidUserToken`
    when the tracker refuses the token, :class:`~scrobble_shared.trackers.connect.ExchangeFailed`
    when the tracker failed rather than the token, and ``httpx.HTTPError`` when it was not
    reached: the caller decides what each means to its user."""
    call = flow.validate(api_url, token)
    answer = await http.get(call.url, headers=call.headers)
    return flow.parse(answer.status_code, json_or_none(answer.content))
