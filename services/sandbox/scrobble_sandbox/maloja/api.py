"""Maloja routes, as Maloja 3.2.3 answers them (docs/EXTERNAL_APIS.md; its apis/
listenbrainz.py and native_v1.py):

- ``/apis/listenbrainz/1/validate-token`` and ``submit-listens``: the key from a ``token``
  field or ``Authorization: Token <key>`` (``token <key>`` too); none is 401 "You need to
  provide an Authorization header.", an unknown one 401 "Incorrect Authorization". A body
  without ``listen_type`` or ``payload`` is 400; ``playing_now`` is 200 and kept nowhere;
  ``single`` and ``import`` store listen after listen (``track_metadata.artist_name`` and
  ``track_name`` required, else 400; ``listened_at`` not a number is *now*), and stop at
  the first listen Maloja already has (200, the rest dropped) or cannot take: another track
  in that second, or no artist left after its rules (500 "Unspecified server error."). Any
  other listen type is 500 too; any other method 200 "Invalid Method".
- ``/apis/mlj_1/scrobbles``: public, newest first, ``page``/``perpage`` (no paging without
  ``perpage``), ``from``/``to`` (or ``since``/``until``, ``start``/``end``) as days
  ``YYYY[/M[/D]]`` in UTC; without ``from`` nothing older than the first scrobble bound
  (:class:`MalojaState`), without ``to`` nothing after today. Anything it cannot read is
  500 with Maloja's ``unknown_error`` body.
- ``/apis/mlj_1/serverinfo``; any other ``/apis/...`` path is 404 "Invalid API".
"""

import calendar
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from scrobble_sandbox.core.clock import now
from scrobble_sandbox.core.fake import RAW_BODY_KEY, USER_KEY
from scrobble_sandbox.core.http import json_response
from scrobble_sandbox.core.service import ServicePart
from scrobble_sandbox.maloja.state import MalojaState, Scrobble, parse_artists

LISTENBRAINZ = "/apis/listenbrainz/1"
NATIVE = "/apis/mlj_1"
VERSION = "3.2.3"


def lb_error(status: int, message: str) -> web.Response:
    return json_response({"code": status, "error": message}, status=status)


def server_error() -> web.Response:
    return lb_error(500, "Unspecified server error.")


def native_error(status: int, value: str) -> web.Response:
    return json_response(
        {
            "status": "failure",
            "error": {
                "type": "unknown_error",
                "value": value,
                "desc": "The server has encountered an exception.",
            },
        },
        status=status,
    )


class MalformedBody(ValueError):
    """A body Maloja's ListenBrainz API answers with 400."""


class MalojaApi(ServicePart[MalojaState]):
    def add_routes(self, router: web.UrlDispatcher, prefix: str) -> None:
        lb = f"{prefix}{LISTENBRAINZ}"
        router.add_route("*", f"{lb}/validate-token", self.validate_token)
        router.add_post(f"{lb}/submit-listens", self.submit_listens)
        router.add_route("*", f"{lb}/{{method:.*}}", self.unknown_method)
        router.add_get(f"{prefix}{NATIVE}/scrobbles", self.scrobbles)
        router.add_get(f"{prefix}{NATIVE}/serverinfo", self.serverinfo)
        router.add_route("*", f"{prefix}/apis/{{rest:.*}}", self.invalid_api)

    # --- the ListenBrainz-compatible API ---------------------------------------------------
    def _keys(self, request: web.Request) -> dict[str, Any]:
        """What Maloja reads a call's values from: the query, then the body's fields."""
        keys: dict[str, Any] = dict(request.query)
        raw: bytes = request.get(RAW_BODY_KEY, b"")
        if not raw:
            return keys
        if "json" in request.content_type:
            data = json.loads(raw.decode("utf-8"))  # ValueError: the caller's 400
            if isinstance(data, dict):
                keys.update(data)
        else:
            text = raw.decode("utf-8", errors="replace")
            keys.update(dict(p.split("=", 1) for p in text.split("&") if "=" in p))
        return keys

    def _client(self, request: web.Request, keys: dict[str, Any]) -> str | web.Response:
        token = None
        if isinstance(keys.get("token"), str):
            token = keys["token"].strip()
        else:
            header = request.headers.get("Authorization", "")
            for scheme in ("token ", "Token "):
                if header.startswith(scheme):
                    token = header[len(scheme) :].strip()
                    break
        if token is None:
            return lb_error(401, "You need to provide an Authorization header.")
        client = self.state.keys.user_for(token)
        if client is None:
            return lb_error(401, "Incorrect Authorization")
        request[USER_KEY] = client
        return client

    def _authorized(self, request: web.Request) -> tuple[str, dict[str, Any]] | web.Response:
        """The client whose API key the call carries and the call's keys; else Maloja's
        refusal."""
        try:
            keys = self._keys(request)
        except (ValueError, UnicodeDecodeError):
            return web.Response(status=400, text="Invalid JSON", content_type="text/html")
        client = self._client(request, keys)
        return client if isinstance(client, web.Response) else (client, keys)

    async def validate_token(self, request: web.Request) -> web.Response:
        authorized = self._authorized(request)
        if isinstance(authorized, web.Response):
            return authorized
        return json_response(
            {"code": 200, "message": "Token valid.", "valid": True, "user_name": self.state.name}
        )

    async def submit_listens(self, request: web.Request) -> web.Response:
        authorized = self._authorized(request)
        if isinstance(authorized, web.Response):
            return authorized
        client, keys = authorized
        if "listen_type" not in keys or "payload" not in keys:
            return lb_error(400, "Invalid JSON document submitted.")
        listen_type, payload = keys["listen_type"], keys["payload"]
        if listen_type == "playing_now":
            self.state.submissions.append(listen_type)
            return json_response({"status": "ok"})
        if listen_type not in ("single", "import"):
            return server_error()
        self.state.submissions.append(listen_type)
        # Python's iteration, as Maloja's loop does it: a dict gives its keys, a string
        # its characters (each then malformed).
        for listen in payload if isinstance(payload, list | dict | str) else []:
            try:
                scrobble = _scrobble_of(listen, client)
            except MalformedBody:
                return lb_error(400, "Invalid JSON document submitted.")
            if not scrobble.artists:
                return server_error()  # Maloja's MissingScrobbleParameters, unmapped
            held = self.state.scrobbles.get(scrobble.time)
            if held is not None:
                if held.same_track(scrobble):
                    # DuplicateScrobble ends the call: the listens after it are dropped.
                    return json_response({"status": "ok"})
                return server_error()  # DuplicateTimestamp, unmapped in 3.2.3
            self.state.scrobbles[scrobble.time] = scrobble
        return json_response({"status": "ok"})

    async def unknown_method(self, request: web.Request) -> web.Response:
        return json_response({"code": 200, "error": "Invalid Method"})

    # --- the native API --------------------------------------------------------------------
    async def scrobbles(self, request: web.Request) -> web.Response:
        query = request.query
        try:
            page = int(query.get("page", "0"))
            per_page = int(query["perpage"]) if "perpage" in query else None
            since = _first_of(_day_arg(query, "since", "from", "start"))
            until = _last_of(_day_arg(query, "to", "until", "end"))
        except (ValueError, IndexError) as exc:
            return native_error(500, repr(exc))
        low = self.state.first_scrobble if since is None else since
        high = _end_of_today() if until is None else until
        found = [s for s in self.state.newest_first() if low <= s.time <= high]
        if per_page is not None:
            found = found[page * per_page : (page + 1) * per_page]
        return json_response(
            {
                "status": "ok",
                "list": [s.to_json() for s in found],
                "pagination": _pagination(query, page, per_page, len(found)),
            }
        )

    async def serverinfo(self, request: web.Request) -> web.Response:
        return json_response(
            {
                "name": self.state.name,
                "version": VERSION.split("."),
                "versionstring": VERSION,
                "db_status": {"healthy": True, "rebuildinprogress": False, "complete": True},
            }
        )

    async def invalid_api(self, request: web.Request) -> web.Response:
        return json_response({"error": "Invalid API"}, status=404)


def _scrobble_of(listen: Any, client: str) -> Scrobble:
    try:
        metadata = listen["track_metadata"]
        artist, title = metadata["artist_name"], metadata["track_name"]
        album = metadata.get("release_name")
        additional = metadata.get("additional_info", {})
    except (KeyError, TypeError, AttributeError) as exc:
        raise MalformedBody from exc
    try:
        at = int(listen["listened_at"])
    except (KeyError, TypeError, ValueError):
        at = int(now())
    length = additional.get("duration") if isinstance(additional, dict) else None
    return Scrobble(
        time=at,
        artists=parse_artists(artist) if isinstance(artist, str) else [],
        title=str(title),
        album=album if isinstance(album, str) and album else None,
        length=length if isinstance(length, int) else None,
        origin=f"client:{client}",
    )


def _day_arg(query: Any, *names: str) -> str | None:
    for name in names:
        if name in query:
            return str(query[name])
    return None


def _day_parts(text: str) -> tuple[int, int | None, int | None]:
    parts = [int(p) for p in text.split("/")]  # ValueError: not a day Maloja reads
    year = parts[0]  # IndexError for nothing
    month = parts[1] if len(parts) > 1 else None
    day = parts[2] if len(parts) > 2 else None
    return year, month, day


def _first_of(text: str | None) -> int | None:
    if text is None:
        return None
    year, month, day = _day_parts(text)
    return int(datetime(year, month or 1, day or 1, tzinfo=UTC).timestamp())


def _last_of(text: str | None) -> int | None:
    if text is None:
        return None
    year, month, day = _day_parts(text)
    last_month = month or 12
    last_day = day or calendar.monthrange(year, last_month)[1]
    return int(datetime(year, last_month, last_day, 23, 59, 59, tzinfo=UTC).timestamp())


def _end_of_today() -> int:
    today = datetime.fromtimestamp(now(), UTC)
    return int(datetime(today.year, today.month, today.day, 23, 59, 59, tzinfo=UTC).timestamp())


def _pagination(query: Any, page: int, per_page: int | None, listed: int) -> dict[str, Any]:
    def uri(number: int) -> str:
        keys = {k: v for k, v in query.items() if k not in ("page", "perpage")}
        keys["page"] = str(number)
        if per_page is not None:
            keys["perpage"] = str(per_page)
        return f"{NATIVE}/scrobbles?{urlencode(keys, safe='/')}"

    return {
        "page": page,
        "perpage": per_page,
        "next_page": uri(page + 1) if per_page is not None and listed == per_page else None,
        "prev_page": uri(page - 1) if page > 0 else None,
    }
