-- External-id resolution (scrobble_dispatcher.resolve): what each service answered when asked
-- about an item (a title + year search, an id lookup), shared by every dispatcher replica so
-- one item is looked up once per service, not once per play. "Not found" is an answer too.
-- A replica about to ask first claims the row (state 'pending', its own claim id, a short
-- lease in expires_at) with one atomic upsert; the others wait for the answer instead of
-- asking too. A row whose expires_at has passed (an answer past its time to live, or the
-- lease of a claimant that died) may be claimed again.
CREATE TABLE id_lookups (
    service     text NOT NULL
        CHECK (service IN ('trakt', 'lastfm', 'listenbrainz', 'simkl', 'anilist')),
    lookup_key  text NOT NULL CHECK (length(lookup_key) BETWEEN 1 AND 1024),
    state       text NOT NULL CHECK (state IN ('pending', 'found', 'not_found')),
    -- Found: the ids the service gave, named as the playback event names them.
    ids         jsonb,
    -- Not found: why, as a person reads it in history.
    reason      text,
    claim       uuid,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (service, lookup_key),
    CHECK ((state = 'pending') = (claim IS NOT NULL)),
    CHECK (state <> 'found' OR ids IS NOT NULL),
    CHECK (state <> 'not_found' OR reason IS NOT NULL)
);
CREATE INDEX id_lookups_expires_idx ON id_lookups (expires_at);
