"""The webhook routes, ``POST /api/v1/intake/{kind}/{secret}`` (CONTRACTS section 8).

Each handler finds the source, reads the body as that server sends it (``bodies.py``),
translates it (``translate/``, ``posted_events.py``), publishes what came out
(``publisher.py``) and answers:

- 202 published, or nothing to publish for a reason the server cannot fix (a filtered
  play, an unmapped server user: never an error a server would retry forever);
- 204 an event type the intake does not use (``library.new``, a system test...);
- 207 (events only) some events published, some rejected, each listed;
- 400 an unusable body, 413 too large, 415 a content type the server never sends; all
  problem+json naming what was wrong, nothing published;
- 404 an unknown secret, or a secret of a source of another kind: no detail at all;
- 503 with ``Retry-After`` when Kafka or Postgres is away: the server should resend, and a
  resend has the same event ids.

The secret never reaches a log line, a metric label or an answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import orjson
from aiohttp import web

from scrobble_intake import bodies, metrics, posted_events
from scrobble_intake.keys import DIRECTORY, PUBLISHER, SETTINGS
from scrobble_intake.publisher import Unavailable
from scrobble_intake.translate import Ignored, Publish, Skip, Unusable, translate
from scrobble_shared.db.connect import DatabaseUnavailable
from scrobble_shared.events import MAX_EVENT_BYTES
from scrobble_shared.sources import INTAKE_BASE, SOURCE_KINDS, Source, SourceKind

log = logging.getLogger(__name__)

PROBLEM_JSON: Final = "application/problem+json"
RETRY_AFTER_S: Final = 5
_SOURCE: Final = web.RequestKey("intake_source", Source)
PayloadReader = Callable[[web.Request, int], Awaitable[Mapping[str, Any]]]
WEBHOOK_BODIES: Final[dict[SourceKind, PayloadReader]] = {
    "jellyfin": bodies.jellyfin_payload,
    "plex": bodies.plex_payload,
    "emby": bodies.emby_payload,
}


@dataclass(frozen=True)
class Answer:
    """A response and the outcome word it is counted under."""

    response: web.StreamResponse
    outcome: str


def json_answer(
    body: Mapping[str, Any], status: int, content_type: str = "application/json"
) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type=content_type)


def problem(status: int, title: str, detail: str | None = None, **extra: Any) -> web.Response:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail is not None:
        body["detail"] = detail
    body.update(extra)
    return json_answer(body, status, PROBLEM_JSON)


_TITLES: Final = {400: "Bad Request", 413: "Content Too Large", 415: "Unsupported Media Type"}
_OUTCOMES: Final = {400: metrics.INVALID, 413: metrics.TOO_LARGE, 415: metrics.UNSUPPORTED}


def _refused(status: int, detail: str, problems: list[str] | None = None) -> Answer:
    extra = {"problems": problems} if problems else {}
    return Answer(problem(status, _TITLES[status], detail, **extra), _OUTCOMES[status])


def _unavailable(what: str) -> Answer:
    response = problem(503, "Service Unavailable", f"{what} is unavailable; send it again")
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return Answer(response, metrics.UNAVAILABLE)


def source_of(request: web.Request) -> Source | None:
    """The source a request was for, once found (the access log names it by id)."""
    return request.get(_SOURCE)


def encode(event: Mapping[str, Any]) -> bytes:
    value = orjson.dumps(event)
    if len(value) > MAX_EVENT_BYTES:
        raise Unusable([f"event: {len(value)} bytes as JSON, at most {MAX_EVENT_BYTES}"])
    return value


async def _publish(request: web.Request, records: list[tuple[bytes, bytes]]) -> None:
    await request.app[PUBLISHER].publish(records)


async def _webhook(request: web.Request, source: Source) -> Answer:
    limit = request.app[SETTINGS].intake_max_body
    try:
        payload = await WEBHOOK_BODIES[source.kind](request, limit)
        decision = translate(payload, source, datetime.now(UTC))
        if isinstance(decision, Ignored):
            return Answer(web.Response(status=204), metrics.IGNORED)
        if isinstance(decision, Skip):
            metrics.SKIPPED.labels(source.kind, decision.reason).inc()
            outcome = metrics.UNMAPPED if decision.reason == "unmapped" else metrics.FILTERED
            body = {"published": 0, "skipped": decision.reason}
            return Answer(json_answer(body, 202), outcome)
        assert isinstance(decision, Publish)
        event = decision.event
        value = encode(decision.body)
    except bodies.BodyError as exc:
        return _refused(exc.status, exc.detail)
    except Unusable as exc:
        return _refused(400, "the webhook cannot be used", exc.problems)
    await _publish(request, [(event.user_id.encode(), value)])
    metrics.EVENTS.labels(source.kind, event.action.value).inc()
    body = {"published": 1, "event_id": event.event_id}
    return Answer(json_answer(body, 202), metrics.PUBLISHED)


async def _events(request: web.Request, source: Source) -> Answer:
    limit = request.app[SETTINGS].intake_max_body
    try:
        raw = await bodies.read_all(request, limit)
        values = posted_events.split(raw, request.content_type)
    except bodies.BodyError as exc:
        return _refused(exc.status, exc.detail)
    judged = posted_events.judge(values, source)
    body = posted_events.answer_body(judged)
    if judged.rejected and not judged.accepted and not judged.skipped:
        return Answer(
            problem(400, "Bad Request", "no event in the body can be used", **body),
            metrics.INVALID,
        )
    if judged.accepted:
        await _publish(request, [(str(a.user_id).encode(), a.value) for a in judged.accepted])
    for accepted in judged.accepted:
        metrics.EVENTS.labels(source.kind, accepted.action).inc()
    if judged.skipped:
        metrics.SKIPPED.labels(source.kind, "unmapped").inc(len(judged.skipped))
    if judged.rejected:
        return Answer(json_answer(body, 207), metrics.PARTIAL)
    outcome = metrics.PUBLISHED if judged.accepted else metrics.UNMAPPED
    return Answer(json_answer(body, 202), outcome)


async def _answer(request: web.Request, kind: SourceKind) -> Answer:
    try:
        source = await request.app[DIRECTORY].find(request.match_info["secret"])
    except DatabaseUnavailable as exc:
        log.warning("intake: cannot look sources up (%s)", type(exc).__name__)
        return _unavailable("the database")
    if source is None or source.kind != kind:
        return Answer(problem(404, "Not Found"), metrics.UNKNOWN_SOURCE)
    request[_SOURCE] = source
    try:
        if kind == "events":
            return await _events(request, source)
        return await _webhook(request, source)
    except Unavailable as exc:
        log.warning("intake: publishing for source %s failed (%s)", source.id, exc)
        return _unavailable("Kafka")


def _handler(kind: SourceKind) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    seconds = metrics.REQUEST_SECONDS.labels(kind)

    async def handle(request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        answer = await _answer(request, kind)
        metrics.requests(kind, answer.outcome).inc()
        seconds.observe(time.perf_counter() - started)
        source = source_of(request)
        if source is not None:
            metrics.source_requests(source.id, answer.outcome not in metrics.FAILED_OUTCOMES).inc()
        return answer.response

    handle.__name__ = f"intake_{kind}"
    return handle


def add_routes(app: web.Application) -> None:
    for kind in SOURCE_KINDS:
        app.router.add_post(f"{INTAKE_BASE}/{kind}/{{secret}}", _handler(kind))
