"""The waiting helpers every client shares: Retry-After (delay-seconds, or an HTTP date
measured against the answer's own Date header), plain seconds headers, HTTP dates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from scrobble_shared.trackers.http import (
    HttpResponse,
    http_date,
    retry_after_s,
    seconds_header,
    seconds_until,
)

DATE = "Fri, 20 Nov 2026 21:04:05 GMT"
SENT = datetime(2026, 11, 20, 21, 4, 5, tzinfo=UTC)


def answer(**headers: str) -> HttpResponse:
    return HttpResponse(429, {k.replace("_", "-").lower(): v for k, v in headers.items()}, b"")


RETRY_AFTER: list[tuple[str, dict[str, str], float | None]] = [
    ("absent", {}, None),
    ("seconds", {"retry_after": "3"}, 3.0),
    ("zero", {"retry_after": "0"}, 0.0),
    ("fraction, padded", {"retry_after": " 1.5 "}, 1.5),
    ("blank", {"retry_after": " "}, None),
    ("empty", {"retry_after": ""}, None),
    ("negative", {"retry_after": "-4"}, None),
    ("negative with Date", {"retry_after": "-4", "date": DATE}, None),
    ("nan", {"retry_after": "nan"}, None),
    ("inf", {"retry_after": "inf"}, None),
    ("garbage", {"retry_after": "soon", "date": DATE}, None),
    ("date", {"retry_after": "Fri, 20 Nov 2026 21:04:35 GMT", "date": DATE}, 30.0),
    ("date, other zone", {"retry_after": "Fri, 20 Nov 2026 22:04:35 +0100", "date": DATE}, 30.0),
    ("date without zone", {"retry_after": "Fri, 20 Nov 2026 21:04:35 -0000", "date": DATE}, 30.0),
    ("date in the past", {"retry_after": "Fri, 20 Nov 2026 21:00:00 GMT", "date": DATE}, 0.0),
    ("date without Date", {"retry_after": "Fri, 20 Nov 2026 21:04:35 GMT"}, None),
    (
        "date with unreadable Date",
        {"retry_after": "Fri, 20 Nov 2026 21:04:35 GMT", "date": "x"},
        None,
    ),
    ("seconds ignore Date", {"retry_after": "7", "date": "x"}, 7.0),
]


@pytest.mark.parametrize(
    ("case", "headers", "expected"), RETRY_AFTER, ids=[c[0] for c in RETRY_AFTER]
)
def test_retry_after_s(case: str, headers: dict[str, str], expected: float | None) -> None:
    assert retry_after_s(answer(**headers)) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("6", 6.0),
        ("0", 0.0),
        (" 2.5 ", 2.5),
        ("", None),
        ("soon", None),
        ("-3", None),
        ("nan", None),
        ("-inf", None),
        ("inf", None),
    ],
)
def test_seconds_header(value: str | None, expected: float | None) -> None:
    headers = {} if value is None else {"x_ratelimit_reset_in": value}
    assert seconds_header(answer(**headers), "X-RateLimit-Reset-In") == expected


def test_header_names_are_case_blind() -> None:
    response = answer(retry_after="4")
    assert seconds_header(response, "RETRY-AFTER") == seconds_header(response, "retry-after") == 4.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (DATE, SENT),
        ("Fri, 20 Nov 2026 21:04:05 -0000", SENT),
        ("Fri, 20 Nov 2026 22:04:05 +0100", SENT),
        ("Friday, 20-Nov-26 21:04:05 GMT", SENT),
        ("Fri Nov 20 21:04:05 2026", SENT),
        (None, None),
        ("", None),
        ("not a date", None),
        ("-4", None),
    ],
)
def test_http_date(value: str | None, expected: datetime | None) -> None:
    moment = http_date(value)
    assert moment == expected
    assert moment is None or moment.tzinfo is not None


@pytest.mark.parametrize(
    ("headers", "until", "expected"),
    [
        ({"date": DATE}, SENT + timedelta(seconds=30), 30.0),
        ({"date": DATE}, SENT - timedelta(seconds=30), 0.0),
        ({"date": DATE}, datetime(2026, 11, 20, 21, 4, 35), 30.0),  # naive: UTC
        (
            {"date": DATE},
            datetime(2026, 11, 20, 23, 4, 35, tzinfo=timezone(timedelta(hours=2))),
            30.0,
        ),
        ({"date": DATE}, None, None),
        ({}, SENT, None),
        ({"date": "x"}, SENT, None),
    ],
)
def test_seconds_until(
    headers: dict[str, str], until: datetime | None, expected: float | None
) -> None:
    assert seconds_until(answer(**headers), until) == expected
