"""The intake's readers of loosely typed payload values: server times and provider ids."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from scrobble_intake.translate.common import external_ids, timestamp


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-20T21:04:05.1234567Z", datetime(2026, 11, 20, 21, 4, 5, 123456, tzinfo=UTC)),
        ("2026-11-20T22:04:05+01:00", datetime(2026, 11, 20, 21, 4, 5, tzinfo=UTC)),
        ("2026-11-20T21:04:05", datetime(2026, 11, 20, 21, 4, 5, tzinfo=UTC)),
        ("11/20/2026 9:04:05 PM", datetime(2026, 11, 20, 21, 4, 5, tzinfo=UTC)),
        ("11/20/2026 21:04:05", datetime(2026, 11, 20, 21, 4, 5, tzinfo=UTC)),
        ("0001-01-01T00:00:00", None),  # .NET's DateTime.MinValue
        ("yesterday", None),
        ("", None),
        (12, None),
    ],
)
def test_server_times(text: object, expected: datetime | None) -> None:
    assert timestamp(text) == expected


def test_provider_ids_are_matched_whatever_their_spelling() -> None:
    found = external_ids(
        [
            ("Provider_imdb", "tt0113277"),
            ("IMDB", "tt9999999"),  # the first valid value of a field wins
            ("Tmdb", 949),
            ("MyAnimeList", "52991"),
            ("AniList", "154587"),
            ("MusicBrainzArtist", "F22942A1-6F70-4F48-866E-238CB2308FBD"),
            ("Official Website", "https://example.org"),
            ("Tvdb", "0"),
        ]
    )
    assert found == {
        "imdb": "tt0113277",
        "tmdb": 949,
        "mal": 52991,
        "anilist": 154587,
        "musicbrainz_artists": ["f22942a1-6f70-4f48-866e-238cb2308fbd"],
    }


def test_uuid5_text_is_the_standard_uuid5() -> None:
    import uuid

    from scrobble_intake.translate.common import INTAKE_NAMESPACE, uuid5_text

    for name in [
        "",
        "a",
        "source|item|4217",
        "ünïcødé|" * 40,
        *(str(uuid.uuid4()) for _ in range(200)),
    ]:
        assert uuid5_text(name) == str(uuid.uuid5(INTAKE_NAMESPACE, name))
