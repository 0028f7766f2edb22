"""What the fakes hold against what the plays mean: lost, doubled, dead-lettered. Pure.

The fakes' records are read into :class:`Found` (``observe.py``); each play's expectations
(``plays.py``) are then looked up there by their mark. Doubles are counted only where the
service keeps duplicates (Trakt and Simkl history, Last.fm scrobbles); ListenBrainz stores
a listen once and AniList keeps one progress per show, so there only "lost" can happen.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.chaos.plays import KEEPS_DUPLICATES, Outcome, Play, marks

Key = tuple[str, str, str]  # service, fake user, mark


def mark_of_record(service: str, record: Mapping[str, Any]) -> str | None:
    """The mark of one fake record (a history entry, a scrobble, a listen)."""
    if service in ("trakt", "simkl"):
        kind = record.get("type")
        item = record.get(kind) if isinstance(kind, str) else None
        ids = item.get("ids", {}) if isinstance(item, dict) else {}
        episode = record.get("episode") or {}
        show = record.get("show") or {}
        show_ids = show.get("ids", {}) if isinstance(show, dict) else {}
        if kind == "movie" and "imdb" in ids:
            return f"imdb:{ids['imdb']}"
        if kind == "anime" and "mal" in ids:
            return f"mal:{ids['mal']}:{episode.get('number')}"
        tvdb = show_ids.get("tvdb") or (ids.get("tvdb") if kind == "show" else None)
        if tvdb is not None:
            return f"tvdb:{tvdb}:{episode.get('season')}:{episode.get('number')}"
        return None
    if service == "lastfm":
        return f"track:{record.get('track')}"
    if service == "listenbrainz":
        return f"track:{(record.get('track_metadata') or {}).get('track_name')}"
    return None


def user_of_record(service: str, record: Mapping[str, Any]) -> str:
    return str(record.get("user_name") if service == "listenbrainz" else record.get("user"))


@dataclass
class Found:
    """The fakes' own records, counted by key; AniList progress by (user, MAL id)."""

    counts: Counter[Key] = field(default_factory=Counter)
    anilist_progress: dict[tuple[str, int], int] = field(default_factory=dict)

    def add_records(self, service: str, records: Iterable[Mapping[str, Any]]) -> None:
        for record in records:
            mark = mark_of_record(service, record)
            if mark is not None:
                self.counts[(service, user_of_record(service, record), mark)] += 1


@dataclass(frozen=True)
class DeadRow:
    scrobble_id: str
    service: str
    user: str
    mark: str
    kind: str
    reason: str


@dataclass
class DbView:
    """What Postgres says: dead work, work still waiting, and what it recorded as sent."""

    dead: list[DeadRow] = field(default_factory=list)
    waiting: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    sent: set[Key] = field(default_factory=set)
    # scrobble id -> the dead letter's error.reason header (from scrobble.<service>.dlq)
    dead_letters: dict[str, str] = field(default_factory=dict)


@dataclass
class Figures:
    """One row of the table."""

    scenario: str
    trials: int = 0
    plays: int = 0
    unsent: int = 0
    expected: int = 0
    delivered: int = 0
    lost: int = 0
    doubled: int = 0
    extra: int = 0
    poison: int = 0
    dead_lettered: int = 0
    recovery_s: list[float] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        if len(self.examples) < 8:
            self.examples.append(text)


def judge(
    plays: Sequence[Play], found: Found, db: DbView, figures: dict[str, Figures]
) -> dict[str, Figures]:
    """Fill each scenario's figures from the plays made during it."""
    dead_by_key: dict[Key, list[DeadRow]] = {}
    for dead in db.dead:
        dead_by_key.setdefault((dead.service, dead.user, dead.mark), []).append(dead)
    for play in plays:
        row = figures.setdefault(play.scenario, Figures(play.scenario))
        row.plays += 1
        if play.refused is not None or not all(s.accepted for s in play.sends):
            row.unsent += 1
            continue
        for expect in play.expects:
            key = (expect.service, expect.user, expect.mark)
            if expect.service == "anilist":
                _judge_anilist(play, found, row)
                continue
            count = found.counts.get(key, 0)
            if expect.outcome is Outcome.RECORDED:
                row.expected += 1
                if count == 0:
                    row.lost += 1
                    row.note(f"lost: {expect.service} {expect.user} {expect.mark} ({play.quirks})")
                else:
                    row.delivered += 1
                    if count > 1 and expect.service in KEEPS_DUPLICATES:
                        row.doubled += count - 1
                        row.note(
                            f"doubled x{count}: {expect.service} {expect.user} {expect.mark}"
                            f" ({play.quirks})"
                        )
            elif expect.outcome is Outcome.ABSENT:
                if count:
                    row.extra += count
                    row.note(f"extra: {expect.service} {expect.user} {expect.mark}")
            else:
                row.poison += 1
                rows = dead_by_key.get(key, [])
                if count:
                    row.extra += count
                    row.note(f"poison at the fake: {expect.service} {expect.mark}")
                if rows and all(r.reason and db.dead_letters.get(r.scrobble_id) for r in rows):
                    row.dead_lettered += 1
                else:
                    row.note(f"poison not dead-lettered: {expect.service} {expect.mark} {rows}")
    return figures


def judge_kafka_poison(
    sent: Sequence[tuple[str, str]],
    dead_letters: Sequence[Mapping[str, str]],
    figures: dict[str, Figures],
) -> None:
    """Every poison record published straight to the playback topic is on its dead-letter
    topic with the reason (``error.class``)."""
    reasons: dict[str, str] = {}
    for letter in dead_letters:
        value = letter.get("value", "")
        for word in value.replace('"', " ").split():
            if "-poison-" in word:
                reasons[word] = letter.get("error.class", "")
    for scenario, marker in sent:
        row = figures.setdefault(scenario, Figures(scenario))
        row.poison += 1
        if reasons.get(marker):
            row.dead_lettered += 1
        else:
            row.note(f"poison record {marker} not on the dead-letter topic")


def _judge_anilist(play: Play, found: Found, row: Figures) -> None:
    show = play.content.get("show", {}).get("external_ids", {}).get("mal")
    number = int(play.content.get("number", 0))
    row.expected += 1
    progress = found.anilist_progress.get((play.user.name, int(show or 0)), 0)
    if progress >= number:
        row.delivered += 1
    else:
        row.lost += 1
        row.note(f"lost: anilist {play.user.name} mal {show} episode {number} (at {progress})")


def db_disagreements(plays: Sequence[Play], found: Found, db: DbView) -> list[str]:
    """Work Postgres calls sent that the fake does not hold, and the other way round."""
    expected = {
        (e.service, e.user, e.mark)
        for p in plays
        for e in p.expects
        if e.outcome is Outcome.RECORDED and e.service != "anilist"
    }
    problems = []
    for key in sorted(expected):
        at_fake = found.counts.get(key, 0) > 0
        in_db = key in db.sent
        if at_fake != in_db:
            problems.append(
                f"{key}: fake {'has' if at_fake else 'lacks'} it, db says "
                f"{'sent' if in_db else 'not sent'}"
            )
    return problems


def content_mark(service: str, content: Mapping[str, Any]) -> str | None:
    """The mark of work as Postgres keeps it (its request's content)."""
    try:
        return marks(dict(content), service)
    except (KeyError, TypeError):
        return None


def judge_imports(
    seeded: Any, imported: Mapping[tuple[str, str], int], failures: Sequence[str]
) -> Figures:
    """Every item seeded at a fake for import is in ``imported_items`` once."""
    row = Figures("history imports (rows)")
    for (user, service), count in sorted(seeded.counts.items()):
        got = imported.get((user, service), 0)
        row.expected += count
        row.delivered += min(count, got)
        if got < count:
            row.lost += count - got
            row.note(f"{user} {service}: {count} seeded, {got} imported")
        elif got > count:
            row.extra += got - count
            row.note(f"{user} {service}: {count} seeded, {got} imported")
    for failure in failures[:4]:
        row.note(f"job: {failure}")
    return row
