"""Root resolvers of the AniList fake: Viewer, User, Media, MediaList(Collection) and the
list-entry mutations. Objects are plain dicts; graphql-core's default resolver reads them.

Every other root field of the schema resolves to an error "sandbox: field X not implemented"
(the field is null, the answer is HTTP 200), so a client never silently gets null from a
field the fake does not serve."""

import math
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLResolveInfo

from scrobble_sandbox.anilist.schema import anilist_schema
from scrobble_sandbox.anilist.state import AniListState, AniListUser, Entry, Media
from scrobble_sandbox.core.clock import now
from scrobble_sandbox.core.items import title_words

# Resolvers ignore the info argument; the context they need is bound in `Resolvers`.
Info = GraphQLResolveInfo[Any]
MAX_PER_CHUNK = 500
LIST_NAMES = {
    "CURRENT": "Watching",
    "PLANNING": "Planning",
    "COMPLETED": "Completed",
    "DROPPED": "Dropped",
    "PAUSED": "Paused",
    "REPEATING": "Rewatching",
}


class AniListError(Exception):
    """An error AniList puts in errors[] with its HTTP-like status."""

    def __init__(
        self, message: str, status: int, validation: dict[str, list[str]] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.validation = validation


class NotImplementedField(AniListError):
    """A valid root field the fake does not serve: an entry in errors[], never HTTP status."""

    def __init__(self, field_name: str) -> None:
        super().__init__(f"sandbox: field {field_name} not implemented", 501)
        self.field_name = field_name


def not_implemented(field_name: str) -> Any:
    def resolve(info: Info, **args: Any) -> None:
        raise NotImplementedField(field_name)

    return resolve


def root_field_names() -> list[str]:
    schema = anilist_schema()
    names = list(schema.query_type.fields) if schema.query_type else []
    if schema.mutation_type is not None:
        names += list(schema.mutation_type.fields)
    return names


def not_found() -> AniListError:
    return AniListError("Not Found.", 404)


def invalid(field_name: str, message: str) -> AniListError:
    return AniListError("validation", 400, {field_name: [message]})


@dataclass
class Context:
    state: AniListState
    viewer: AniListUser | None

    def require_viewer(self) -> AniListUser:
        if self.viewer is None:
            raise AniListError("Unauthorized.", 401)
        return self.viewer


def score_in(raw: int, fmt: str) -> float:
    """A 0-100 raw score shown in a user's scoring format."""
    if fmt == "POINT_100":
        return float(raw)
    if fmt == "POINT_10_DECIMAL":
        return raw / 10
    if fmt == "POINT_10":
        return float(math.floor(raw / 10))
    if fmt == "POINT_5":
        return float(round(raw / 20))
    if fmt == "POINT_3":
        return 0.0 if raw == 0 else (1.0 if raw <= 35 else 2.0 if raw <= 60 else 3.0)
    return float(raw)


def raw_from(score: float, fmt: str) -> int:
    factor = {"POINT_100": 1, "POINT_10_DECIMAL": 10, "POINT_10": 10, "POINT_5": 20}.get(fmt, 1)
    return round(score * factor)


def search_score(wanted: list[str], titles: list[str]) -> float:
    """How well a title answers a search: 2 for the same words, less the more words the
    title has beyond every word searched; 0 when a word is missing."""
    score = 0.0
    for title in titles:
        words = title_words(title)
        if words == wanted:
            return 2.0
        if all(w in words for w in wanted):
            score = max(score, len(wanted) / len(words))
    return score


def user_json(user: AniListUser) -> dict[str, Any]:
    return {
        "id": user.id,
        "name": user.name,
        "siteUrl": f"https://anilist.co/user/{user.name}",
        "mediaListOptions": {"scoreFormat": user.score_format, "rowOrder": "score"},
        "options": {"titleLanguage": "ROMAJI", "displayAdultContent": False},
        "avatar": {"large": None, "medium": None},
    }


class Resolvers:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.state = ctx.state

    def root(self) -> dict[str, Any]:
        implemented = self.implemented()
        return {name: implemented.get(name) or not_implemented(name) for name in root_field_names()}

    def implemented(self) -> dict[str, Any]:
        return {
            "Viewer": self.viewer,
            "User": self.user,
            "Media": self.media,
            "MediaList": self.media_list,
            "MediaListCollection": self.collection,
            "SaveMediaListEntry": self.save_entry,
            "DeleteMediaListEntry": self.delete_entry,
        }

    # --- object shapes ---------------------------------------------------------------------
    def media_json(self, media: Media) -> dict[str, Any]:
        viewer = self.ctx.viewer

        def list_entry(info: Info) -> dict[str, Any] | None:
            entry = self.state.entry_for(viewer.id, media.id) if viewer else None
            return self.entry_json(entry) if entry else None

        return {
            "id": media.id,
            "idMal": media.id_mal,
            "title": {
                "romaji": media.title,
                "english": media.english or media.title,
                "native": media.title,
                "userPreferred": media.title,
            },
            "startDate": {"year": media.year, "month": None, "day": None},
            "seasonYear": media.year,
            "type": media.type,
            "format": media.format,
            "status": "FINISHED",
            "episodes": media.episodes,
            "siteUrl": f"https://anilist.co/{media.type.lower()}/{media.id}",
            "isFavourite": False,
            "isFavouriteBlocked": False,
            "mediaListEntry": list_entry,
        }

    def entry_json(self, entry: Entry) -> dict[str, Any]:
        owner = self.state.users[entry.user_id]

        def score(info: Info, format: str | None = None) -> float:
            return score_in(entry.score_raw, format or owner.score_format)

        media = self.state.catalog.get(entry.media_id)
        return {
            "id": entry.id,
            "userId": entry.user_id,
            "mediaId": entry.media_id,
            "status": entry.status,
            "score": score,
            "progress": entry.progress,
            "repeat": entry.repeat,
            "private": entry.private,
            "notes": entry.notes,
            "startedAt": entry.started_at or {"year": None, "month": None, "day": None},
            "completedAt": entry.completed_at or {"year": None, "month": None, "day": None},
            "updatedAt": entry.updated_at,
            "createdAt": entry.created_at,
            "media": self.media_json(media) if media else None,
            "user": user_json(owner),
        }

    # --- queries ---------------------------------------------------------------------------
    def viewer(self, info: Info) -> dict[str, Any]:
        return user_json(self.ctx.require_viewer())

    def _find_user(self, user_id: int | None, name: str | None) -> AniListUser:
        user = None
        if user_id is not None:
            user = self.state.users.get(user_id)
        elif name is not None:
            user = self.state.user_named(name)
        if user is None:
            raise not_found()
        return user

    def user(self, info: Info, **args: Any) -> dict[str, Any]:
        return user_json(self._find_user(args.get("id"), args.get("name")))

    def media(self, info: Info, **args: Any) -> dict[str, Any]:
        """The one media matching the filters; with `search`, AniList's best match: an
        exact title first, then the title holding every word with the fewest extra."""
        best: tuple[float, Media] | None = None
        wanted = title_words(args.get("search") or "")
        for media in self.state.catalog.values():
            if "id" in args and args["id"] is not None and media.id != args["id"]:
                continue
            if args.get("idMal") is not None and media.id_mal != args["idMal"]:
                continue
            if args.get("type") is not None and media.type != args["type"]:
                continue
            score = search_score(wanted, media.titles()) if wanted else 1.0
            if score and (best is None or score > best[0]):
                best = (score, media)
        if best is None:
            raise not_found()
        return self.media_json(best[1])

    def media_list(self, info: Info, **args: Any) -> dict[str, Any]:
        for entry in self.state.entries.values():
            if args.get("id") is not None and entry.id != args["id"]:
                continue
            if args.get("userId") is not None and entry.user_id != args["userId"]:
                continue
            if args.get("mediaId") is not None and entry.media_id != args["mediaId"]:
                continue
            return self.entry_json(entry)
        raise not_found()

    def collection(self, info: Info, **args: Any) -> dict[str, Any]:
        if args.get("userId") is None and not args.get("userName"):
            raise invalid("userId", "The user id field is required when user name is not present.")
        if args.get("type") is None:
            raise invalid("type", "The type field is required.")
        user = self._find_user(args.get("userId"), args.get("userName"))
        per_chunk = min(max(1, args.get("perChunk") or MAX_PER_CHUNK), MAX_PER_CHUNK)
        chunk = max(1, args.get("chunk") or 1)
        statuses = set(args.get("status_in") or [])
        if args.get("status"):
            statuses.add(args["status"])
        entries = sorted(
            (
                e
                for e in self.state.entries.values()
                if e.user_id == user.id
                and (m := self.state.catalog.get(e.media_id)) is not None
                and m.type == args["type"]
                and (not statuses or e.status in statuses)
            ),
            key=lambda e: e.id,
        )
        # The sorts an importer pages by; any other order is the default (entry id).
        sort = args.get("sort") or []
        if "UPDATED_TIME_DESC" in sort:
            entries.sort(key=lambda e: (e.updated_at, e.id), reverse=True)
        elif "UPDATED_TIME" in sort:
            entries.sort(key=lambda e: (e.updated_at, e.id))
        page = entries[(chunk - 1) * per_chunk : chunk * per_chunk]
        groups: dict[str, list[dict[str, Any]]] = {}
        for entry in page:
            groups.setdefault(entry.status, []).append(self.entry_json(entry))
        lists = [
            {
                "name": LIST_NAMES[status],
                "status": status,
                "isCustomList": False,
                "isSplitCompletedList": False,
                "entries": items,
            }
            for status, items in groups.items()
        ]
        return {
            "lists": lists,
            "user": user_json(user),
            "hasNextChunk": chunk * per_chunk < len(entries),
        }

    # --- mutations -------------------------------------------------------------------------
    def save_entry(self, info: Info, **args: Any) -> dict[str, Any]:
        viewer = self.ctx.require_viewer()
        self._validate_save(args)
        if args.get("id") is not None:
            entry = self.state.entries.get(args["id"])
            if entry is None or entry.user_id != viewer.id:
                raise not_found()
        elif args.get("mediaId") is not None:
            if args["mediaId"] not in self.state.catalog:
                raise invalid("mediaId", "The selected media id is invalid.")
            entry = self.state.entry_for(viewer.id, args["mediaId"]) or self.state.new_entry(
                viewer.id, args["mediaId"]
            )
        else:
            raise invalid("mediaId", "The media id field is required when id is not present.")
        self._apply(entry, args, viewer)
        self.state.saves.append({"user": viewer.name, "at": now()} | _jsonable(args))
        return self.entry_json(entry)

    def _validate_save(self, args: dict[str, Any]) -> None:
        ranges = {
            "scoreRaw": (0, 100),
            "score": (0, 100),
            "progress": (0, None),
            "repeat": (0, 1000),
            "priority": (0, 255),
            "progressVolumes": (0, None),
        }
        for name, (low, high) in ranges.items():
            value = args.get(name)
            if value is None:
                continue
            if value < low or (high is not None and value > high):
                bound = f"between {low} and {high}" if high is not None else f"at least {low}"
                raise invalid(name, f"The {name} must be {bound}.")

    def _apply(self, entry: Entry, args: dict[str, Any], viewer: AniListUser) -> None:
        if args.get("status") is not None:
            entry.status = args["status"]
        if args.get("scoreRaw") is not None:
            entry.score_raw = args["scoreRaw"]
        elif args.get("score") is not None:
            entry.score_raw = min(100, raw_from(args["score"], viewer.score_format))
        if args.get("progress") is not None:
            entry.progress = args["progress"]
        if args.get("repeat") is not None:
            entry.repeat = args["repeat"]
        if args.get("private") is not None:
            entry.private = args["private"]
        if "notes" in args:
            entry.notes = args["notes"]
        if args.get("startedAt") is not None:
            entry.started_at = dict(args["startedAt"])
        if args.get("completedAt") is not None:
            entry.completed_at = dict(args["completedAt"])
        entry.updated_at = int(now())

    def delete_entry(self, info: Info, **args: Any) -> dict[str, Any]:
        viewer = self.ctx.require_viewer()
        entry = self.state.entries.get(args.get("id") or -1)
        if entry is None or entry.user_id != viewer.id:
            raise not_found()
        del self.state.entries[entry.id]
        return {"deleted": True}


def _jsonable(args: dict[str, Any]) -> dict[str, Any]:
    return {k: (dict(v) if isinstance(v, dict) else v) for k, v in args.items()}
