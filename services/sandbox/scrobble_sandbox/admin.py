"""Admin routes under /_sandbox: what tests in another process use to steer and inspect.

GET  /_sandbox/env                          the exported variables, as JSON
POST /_sandbox/reset                        reset every fake
PUT  /_sandbox/auto_approve                 {"enabled": bool} for every fake
GET  /_sandbox/{fake}/requests              recorded requests (?path_prefix=&method=)
DELETE /_sandbox/{fake}/requests            forget them
GET  /_sandbox/{fake}/state                 what the fake holds
POST /_sandbox/{fake}/reset                 reset one fake
POST /_sandbox/{fake}/seed                  {"kind", "items", "user"?}
GET|POST|DELETE /_sandbox/{fake}/faults     list, add (FaultSpec), clear
GET|PUT /_sandbox/{fake}/rate_limits        {"enabled": bool, "<name>": {"limit", "window"}}
PUT  /_sandbox/{fake}/auto_approve          {"enabled": bool}
POST /_sandbox/{fake}/actions/{action}      fake-specific helpers (expire a token, ...)
"""

from typing import TYPE_CHECKING, Any

from aiohttp import web
from pydantic import BaseModel, ValidationError

from scrobble_sandbox.core.fake import Fake
from scrobble_sandbox.core.faults import FaultSpec
from scrobble_sandbox.core.http import json_response, read_json

if TYPE_CHECKING:
    from scrobble_sandbox.sandbox import Sandbox


class SeedRequest(BaseModel):
    kind: str
    items: list[dict[str, Any]]
    user: str | None = None


class Toggle(BaseModel):
    enabled: bool


def add_admin_routes(router: web.UrlDispatcher, sandbox: "Sandbox") -> None:
    admin = Admin(sandbox)
    router.add_get("/_sandbox/env", admin.env)
    router.add_post("/_sandbox/reset", admin.reset_all)
    router.add_put("/_sandbox/auto_approve", admin.auto_approve_all)
    router.add_get("/_sandbox/{fake}/requests", admin.requests)
    router.add_delete("/_sandbox/{fake}/requests", admin.clear_requests)
    router.add_get("/_sandbox/{fake}/state", admin.state)
    router.add_post("/_sandbox/{fake}/reset", admin.reset_one)
    router.add_post("/_sandbox/{fake}/seed", admin.seed)
    router.add_get("/_sandbox/{fake}/faults", admin.list_faults)
    router.add_post("/_sandbox/{fake}/faults", admin.add_fault)
    router.add_delete("/_sandbox/{fake}/faults", admin.clear_faults)
    router.add_get("/_sandbox/{fake}/rate_limits", admin.get_limits)
    router.add_put("/_sandbox/{fake}/rate_limits", admin.put_limits)
    router.add_put("/_sandbox/{fake}/auto_approve", admin.auto_approve_one)
    router.add_post("/_sandbox/{fake}/actions/{action}", admin.action)


def bad_request(message: str) -> web.Response:
    return json_response({"error": message}, status=400)


class Admin:
    def __init__(self, sandbox: "Sandbox") -> None:
        self.sandbox = sandbox

    def _fake(self, request: web.Request) -> Fake:
        fake = self.sandbox.fakes.get(request.match_info["fake"])
        if fake is None:
            raise web.HTTPNotFound(
                text=f'{{"error": "unknown fake; known: {sorted(self.sandbox.fakes)}"}}',
                content_type="application/json",
            )
        return fake

    async def _body(self, request: web.Request) -> Any:
        try:
            return await read_json(request)
        except ValueError as exc:
            raise web.HTTPBadRequest(
                text=f'{{"error": "body must be JSON: {exc}"}}', content_type="application/json"
            ) from exc

    async def env(self, request: web.Request) -> web.Response:
        return json_response(self.sandbox.env)

    async def reset_all(self, request: web.Request) -> web.Response:
        self.sandbox.reset()
        return json_response({"status": "ok"})

    async def auto_approve_all(self, request: web.Request) -> web.Response:
        try:
            toggle = Toggle.model_validate(await self._body(request))
        except ValidationError as exc:
            return bad_request(str(exc))
        self.sandbox.auto_approve = toggle.enabled
        return json_response({"enabled": toggle.enabled})

    async def requests(self, request: web.Request) -> web.Response:
        fake = self._fake(request)
        records = fake.requests(
            request.query.get("path_prefix", ""), request.query.get("method") or None
        )
        return json_response([r.to_json() for r in records])

    async def clear_requests(self, request: web.Request) -> web.Response:
        self._fake(request).log.clear()
        return json_response({"status": "ok"})

    async def state(self, request: web.Request) -> web.Response:
        return json_response(self._fake(request).snapshot())

    async def reset_one(self, request: web.Request) -> web.Response:
        self._fake(request).reset()
        return json_response({"status": "ok"})

    async def seed(self, request: web.Request) -> web.Response:
        fake = self._fake(request)
        try:
            seed = SeedRequest.model_validate(await self._body(request))
            count = fake.seed(seed.kind, seed.items, seed.user)
        except (ValidationError, ValueError, KeyError, TypeError) as exc:
            return bad_request(f"cannot seed: {exc!r}")
        return json_response({"seeded": count})

    async def list_faults(self, request: web.Request) -> web.Response:
        return json_response([f.to_json() for f in self._fake(request).faults.pending()])

    async def add_fault(self, request: web.Request) -> web.Response:
        fake = self._fake(request)
        try:
            spec = FaultSpec.model_validate(await self._body(request))
        except ValidationError as exc:
            return bad_request(str(exc))
        return json_response(fake.faults.add_spec(spec).to_json(), status=201)

    async def clear_faults(self, request: web.Request) -> web.Response:
        self._fake(request).faults.clear()
        return json_response({"status": "ok"})

    async def get_limits(self, request: web.Request) -> web.Response:
        return json_response(self._fake(request).rate_limits.to_json())

    async def put_limits(self, request: web.Request) -> web.Response:
        fake = self._fake(request)
        body = await self._body(request)
        if not isinstance(body, dict):
            return bad_request("body must be an object")
        try:
            fake.rate_limits.update(body)
        except (ValueError, TypeError) as exc:
            return bad_request(str(exc))
        fake.windows.clear()
        return json_response(fake.rate_limits.to_json())

    async def auto_approve_one(self, request: web.Request) -> web.Response:
        fake = self._fake(request)
        try:
            toggle = Toggle.model_validate(await self._body(request))
        except ValidationError as exc:
            return bad_request(str(exc))
        fake.auto_approve = toggle.enabled
        return json_response({"enabled": toggle.enabled})

    async def action(self, request: web.Request) -> web.Response:
        fake = self._fake(request)
        name = request.match_info["action"]
        actions = fake.actions()
        if name not in actions:
            return json_response({"error": f"unknown action; known: {sorted(actions)}"}, status=404)
        body = await self._body(request) if request.can_read_body else {}
        if not isinstance(body, dict):
            return bad_request("body must be an object")
        try:
            return json_response(actions[name](body))
        except (ValueError, KeyError, TypeError) as exc:
            return bad_request(f"action failed: {exc!r}")
