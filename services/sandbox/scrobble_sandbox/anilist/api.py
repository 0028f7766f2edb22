"""The AniList GraphQL endpoint: every document is parsed and validated against the real
schema before anything runs, as graphql.anilist.co does.

HTTP statuses (see README, decisions): a bad token is 400 "Invalid token"; a document that
does not parse or validate is 400 with errors[]; when every root field failed, the status is
that of the first error (401 Unauthorized., 404 Not Found., 400 validation); otherwise 200,
with errors[] beside the data. A valid root field the fake does not implement is null with an
error "sandbox: field X not implemented" (status 501 in the entry) and never changes the HTTP
status.
"""

import inspect
import json
from typing import Any

from aiohttp import web
from graphql import GraphQLError, execute, parse, validate

from scrobble_sandbox.anilist.resolvers import (
    AniListError,
    Context,
    NotImplementedField,
    Resolvers,
)
from scrobble_sandbox.anilist.schema import anilist_schema
from scrobble_sandbox.anilist.state import AniListState
from scrobble_sandbox.core.fake import RAW_BODY_KEY, USER_KEY
from scrobble_sandbox.core.http import bearer_token, json_response
from scrobble_sandbox.core.service import ServicePart


def errors_response(errors: list[dict[str, Any]], status: int) -> web.Response:
    return json_response({"errors": errors, "data": None}, status=status)


def format_error(error: GraphQLError, default_status: int) -> dict[str, Any]:
    out: dict[str, Any] = {"message": error.message, "status": default_status}
    original = error.original_error
    if isinstance(original, AniListError):
        out["status"] = original.status
        if original.validation is not None:
            out["validation"] = original.validation
    elif original is not None and error.path is not None:
        # A resolver crashed: a bug in the fake, surfaced as a server error.
        out["status"] = 500
    if error.locations:
        out["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
    if error.path is not None:
        out["path"] = list(error.path)
    return out


class AniListApi(ServicePart[AniListState]):
    def add_routes(self, router: web.UrlDispatcher, prefix: str) -> None:
        router.add_post(prefix, self.graphql)
        router.add_post(f"{prefix}/", self.graphql)

    async def graphql(self, request: web.Request) -> web.Response:
        viewer = None
        if "Authorization" in request.headers:
            name = self.state.tokens.user_for(bearer_token(request))
            viewer = self.state.user_named(name) if name else None
            if viewer is None:
                return errors_response([{"message": "Invalid token", "status": 400}], 400)
            request[USER_KEY] = viewer.name
        body = self._body(request)
        if isinstance(body, web.Response):
            return body
        query, variables, operation = body
        try:
            document = parse(query)
        except GraphQLError as exc:
            return errors_response([format_error(exc, 400)], 400)
        problems = validate(anilist_schema(), document)
        if problems:
            return errors_response([format_error(e, 400) for e in problems], 400)
        resolvers = Resolvers(Context(self.state, viewer))
        result = execute(
            anilist_schema(),
            document,
            root_value=resolvers.root(),
            variable_values=variables,
            operation_name=operation,
        )
        if inspect.isawaitable(result):
            result = await result
        data = result.data
        if not result.errors:
            return json_response({"data": data})
        errors = [format_error(e, 400) for e in result.errors]
        all_failed = data is None or all(v is None for v in data.values())
        # A field the fake does not implement is reported in errors[] only: HTTP stays 200.
        served = [
            entry
            for entry, error in zip(errors, result.errors, strict=True)
            if not isinstance(error.original_error, NotImplementedField)
        ]
        status = served[0]["status"] if all_failed and served else 200
        return json_response({"errors": errors, "data": data}, status=status)

    def _body(
        self, request: web.Request
    ) -> tuple[str, dict[str, Any] | None, str | None] | web.Response:
        raw: bytes = request.get(RAW_BODY_KEY, b"")
        try:
            body = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return errors_response(
                [{"message": "Request body must be JSON: {query, variables}", "status": 400}], 400
            )
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return errors_response([{"message": "Must provide query string.", "status": 400}], 400)
        variables = body.get("variables")
        if isinstance(variables, str) and variables.strip():
            try:
                variables = json.loads(variables)
            except ValueError:
                variables = None
        if variables is not None and not isinstance(variables, dict):
            return errors_response(
                [{"message": "Variables must be an object.", "status": 400}], 400
            )
        operation = body.get("operationName")
        return body["query"], variables or None, operation if isinstance(operation, str) else None
