"""ListenBrainz routes: validate-token, submit-listens, listens, playing-now, feedback."""

import json
from typing import Any

from aiohttp import web

from scrobble_sandbox.core.clock import now
from scrobble_sandbox.core.fake import RAW_BODY_KEY, USER_KEY
from scrobble_sandbox.core.http import int_arg, json_response, scheme_token
from scrobble_sandbox.core.service import ServicePart
from scrobble_sandbox.listenbrainz.state import Listen, ListenBrainzState
from scrobble_sandbox.listenbrainz.validation import ListenError, is_valid_uuid, parse_submission

DEFAULT_ITEMS_PER_GET = 25
MAX_ITEMS_PER_GET = 1000


def lb_error(status: int, message: str) -> web.Response:
    return json_response({"code": status, "error": message}, status=status)


def token_of(request: web.Request) -> str | None:
    """The token of `Authorization: Token <t>`; None when absent or another scheme."""
    return scheme_token(request, "token")


class ListenBrainzApi(ServicePart[ListenBrainzState]):
    def add_routes(self, router: web.UrlDispatcher, prefix: str) -> None:
        router.add_get(f"{prefix}/1/validate-token", self.validate_token)
        router.add_post(f"{prefix}/1/submit-listens", self.submit_listens)
        router.add_get(f"{prefix}/1/user/{{user}}/listens", self.listens)
        router.add_get(f"{prefix}/1/user/{{user}}/playing-now", self.playing_now)
        router.add_get(f"{prefix}/1/user/{{user}}/listen-count", self.listen_count)
        router.add_post(f"{prefix}/1/feedback/recording-feedback", self.feedback)

    def _auth(self, request: web.Request) -> str | web.Response:
        if "Authorization" not in request.headers:
            return lb_error(401, "You need to provide an Authorization header.")
        user = self.state.tokens.user_for(token_of(request))
        if user is None:
            return lb_error(401, "Invalid authorization token.")
        request[USER_KEY] = user
        return user

    async def validate_token(self, request: web.Request) -> web.Response:
        token = token_of(request) or request.query.get("token")
        if not token:
            return lb_error(400, "You need to provide an Authorization token.")
        user = self.state.tokens.user_for(token)
        if user is None:
            return json_response({"code": 200, "message": "Token invalid.", "valid": False})
        request[USER_KEY] = user
        return json_response(
            {"code": 200, "message": "Token valid.", "valid": True, "user_name": user}
        )

    async def submit_listens(self, request: web.Request) -> web.Response:
        user = self._auth(request)
        if isinstance(user, web.Response):
            return user
        raw: bytes = request.get(RAW_BODY_KEY, b"")
        try:
            listen_type, listens = parse_submission(raw, now())
        except ListenError as exc:
            return lb_error(400, str(exc))
        stored = 0
        if listen_type == "playing_now":
            self.state.playing_now[user] = {
                "track_metadata": listens[0]["track_metadata"],
                "at": now(),
            }
        else:
            for item in listens:
                listen = Listen(user, item["listened_at"], item["track_metadata"], listen_type)
                stored += self.state.add_listen(listen)
        self.state.submissions.append(
            {"user": user, "listen_type": listen_type, "count": len(listens), "stored": stored}
        )
        return json_response({"status": "ok"})

    def _known_user(self, name: str) -> str | None:
        return name if name in self.state.users else None

    async def listens(self, request: web.Request) -> web.Response:
        user = self._known_user(request.match_info["user"])
        if user is None:
            return lb_error(404, f"Cannot find user: {request.match_info['user']}")
        try:
            count = int_arg(request, "count", DEFAULT_ITEMS_PER_GET)
            max_ts = int(request.query["max_ts"]) if "max_ts" in request.query else None
            min_ts = int(request.query["min_ts"]) if "min_ts" in request.query else None
        except ValueError:
            return lb_error(400, "Invalid value for count, max_ts or min_ts: must be integers.")
        if count < 0:
            return lb_error(400, "Number of items requested should be positive")
        count = min(count, MAX_ITEMS_PER_GET)
        items = [
            x
            for x in self.state.user_listens(user)
            if (max_ts is None or x.listened_at < max_ts)
            and (min_ts is None or x.listened_at > min_ts)
        ]
        if min_ts is not None and max_ts is None:
            # Paging forward from min_ts takes the listens just after it.
            items = items[-count:] if count else []
        else:
            items = items[:count]
        everything = self.state.user_listens(user)
        return json_response(
            {
                "payload": {
                    "count": len(items),
                    "listens": [x.to_json() for x in items],
                    "user_id": user,
                    "latest_listen_ts": everything[0].listened_at if everything else 0,
                    "oldest_listen_ts": everything[-1].listened_at if everything else 0,
                }
            }
        )

    async def playing_now(self, request: web.Request) -> web.Response:
        user = self._known_user(request.match_info["user"])
        if user is None:
            return lb_error(404, f"Cannot find user: {request.match_info['user']}")
        playing = self.state.playing_now.get(user)
        listens: list[dict[str, Any]] = []
        if playing is not None:
            listens.append(
                {
                    "playing_now": True,
                    "track_metadata": playing["track_metadata"],
                    "user_name": user,
                }
            )
        return json_response(
            {
                "payload": {
                    "count": len(listens),
                    "listens": listens,
                    "playing_now": True,
                    "user_id": user,
                }
            }
        )

    async def listen_count(self, request: web.Request) -> web.Response:
        user = self._known_user(request.match_info["user"])
        if user is None:
            return lb_error(404, f"Cannot find user: {request.match_info['user']}")
        return json_response({"payload": {"count": len(self.state.user_listens(user))}})

    async def feedback(self, request: web.Request) -> web.Response:
        user = self._auth(request)
        if isinstance(user, web.Response):
            return user
        try:
            data = json.loads(request.get(RAW_BODY_KEY, b"").decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return lb_error(400, "Invalid JSON document submitted.")
        if not isinstance(data, dict):
            return lb_error(400, "Invalid JSON document submitted.")
        allowed = {"recording_msid", "recording_mbid", "score"}
        if "score" not in data or set(data) - allowed:
            return lb_error(
                400,
                "JSON document must contain recording_msid or recording_mbid, and score top "
                "level keys",
            )
        if "recording_msid" not in data and "recording_mbid" not in data:
            return lb_error(
                400, "JSON document must contain either recording_msid or recording_mbid"
            )
        score = data["score"]
        if isinstance(score, bool) or score not in (-1, 0, 1):
            return lb_error(400, "Score can have a value of 1, 0 or -1.")
        for key in ("recording_mbid", "recording_msid"):
            if key in data and not is_valid_uuid(data[key]):
                return lb_error(400, f"{key} is not a valid UUID.")
        recording = str(data.get("recording_mbid") or data.get("recording_msid"))
        if score == 0:
            self.state.feedback.pop((user, recording), None)
        else:
            self.state.feedback[(user, recording)] = int(score)
        return json_response({"status": "ok"})
