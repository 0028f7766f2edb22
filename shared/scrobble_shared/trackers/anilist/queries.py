"""Every GraphQL document the AniList client sends, as constants.

Each one is validated against AniList's schema (``shared/data/anilist/schema.graphqls``) by
the unit tests. Ids are declared ``Int!`` although the schema's arguments are nullable
``Int``: a null id would turn ``Media(idMal: null, type: ANIME)`` into "any anime", so the
server must refuse it instead.
"""

from __future__ import annotations

from typing import Final

MEDIA_BY_MAL_ID: Final = """\
query MediaByMalId($idMal: Int!) {
  Media(idMal: $idMal, type: ANIME) { id }
}"""

VIEWER_ENTRY: Final = """\
query ViewerEntry($mediaId: Int!) {
  Media(id: $mediaId, type: ANIME) { id mediaListEntry { id progress status } }
}"""

SAVE_PROGRESS: Final = """\
mutation SaveProgress($mediaId: Int!, $progress: Int!, $status: MediaListStatus!) {
  SaveMediaListEntry(mediaId: $mediaId, progress: $progress, status: $status) {
    id mediaId progress status
  }
}"""

SAVE_SCORE: Final = """\
mutation SaveScore($mediaId: Int!, $scoreRaw: Int!) {
  SaveMediaListEntry(mediaId: $mediaId, scoreRaw: $scoreRaw) {
    id mediaId score(format: POINT_100)
  }
}"""

ALL_DOCUMENTS: Final = (MEDIA_BY_MAL_ID, VIEWER_ENTRY, SAVE_PROGRESS, SAVE_SCORE)
"""What the client can send; the schema test walks this tuple."""
