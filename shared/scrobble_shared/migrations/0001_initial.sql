-- The first schema: connections, play tracking, the scrobble queue and its history,
-- imports and OAuth states. Rules that keep data right live here as constraints, so a
-- bug in any service (or a second replica racing the first) cannot break them.

CREATE TABLE connections (
    id                          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id                     uuid NOT NULL,
    service                     text NOT NULL
        CHECK (service IN ('trakt', 'lastfm', 'listenbrainz', 'simkl', 'anilist')),
    enabled                     boolean NOT NULL DEFAULT true,
    scrobble_threshold_percent  integer NOT NULL DEFAULT 80
        CHECK (scrobble_threshold_percent BETWEEN 1 AND 100),
    sync_watch_status           boolean NOT NULL DEFAULT false,
    sync_ratings                boolean NOT NULL DEFAULT false,
    last_sync_at                timestamptz,
    last_sync_status            text NOT NULL DEFAULT '',
    -- The account name at the service (Last.fm session name, ListenBrainz user name...).
    external_user_name          text,
    -- Fernet ciphertexts (scrobble_shared.crypto); never plain tokens.
    access_token_enc            bytea,
    refresh_token_enc           bytea,
    token_expires_at            timestamptz,
    -- Bumped on every token write, so a refresh can be persisted with compare-and-set.
    token_version               integer NOT NULL DEFAULT 0 CHECK (token_version >= 0),
    status                      text NOT NULL DEFAULT 'active'
        CHECK (status IN ('active', 'needs_reconnect')),
    status_reason               text,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, service),
    CHECK (refresh_token_enc IS NULL OR access_token_enc IS NOT NULL)
);
CREATE INDEX connections_user_idx ON connections (user_id);

-- Every event id the ingest service has taken in: the same id twice has no further effect.
CREATE TABLE processed_events (
    event_id      uuid PRIMARY KEY,
    user_id       uuid NOT NULL,
    occurred_at   timestamptz NOT NULL,
    processed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX processed_events_processed_at_idx ON processed_events (processed_at);

-- One row per play of one item by one user. A play is counted (listen) or watched once;
-- the flags flip exactly once, which is what makes "one play = one scrobble" hold.
CREATE TABLE play_sessions (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id           uuid NOT NULL,
    content_id        uuid NOT NULL,
    content_type      text NOT NULL
        CHECK (content_type IN ('movie', 'episode', 'track', 'anime_episode')),
    session_id        text NOT NULL DEFAULT '',
    -- Plays of the same item in the same player session are numbered 1, 2, 3...
    play_number       integer NOT NULL DEFAULT 1 CHECK (play_number >= 1),
    started_at        timestamptz NOT NULL,
    last_event_at     timestamptz NOT NULL,
    last_action       text NOT NULL,
    -- Where the play began inside the item (a play resumed at 3:00 has played nothing yet).
    start_position_ms bigint NOT NULL DEFAULT 0 CHECK (start_position_ms >= 0),
    last_position_ms  bigint NOT NULL DEFAULT 0 CHECK (last_position_ms >= 0),
    max_position_ms   bigint NOT NULL DEFAULT 0 CHECK (max_position_ms >= 0),
    max_progress      double precision NOT NULL DEFAULT 0
        CHECK (max_progress BETWEEN 0 AND 100),
    duration_ms       bigint CHECK (duration_ms IS NULL OR duration_ms > 0),
    counted_at        timestamptz,
    finished_at       timestamptz,
    content           jsonb NOT NULL,
    -- When this row last changed, by our clock: silence is measured from here, so plays
    -- replayed late (consumer lag, old occurred_at) are not closed before they could go on.
    touched_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, content_id, session_id, play_number)
);
CREATE INDEX play_sessions_open_idx ON play_sessions (touched_at) WHERE finished_at IS NULL;

-- The scrobble queue and its history in one table: a row is work for one connection, from
-- queued to sent or dead. dedupe_key names the play and what happens to it (for example
-- 'play:<play id>:watched'), and the unique constraint is what enforces one play = one
-- scrobble per connection, whatever duplicates arrive.
CREATE TABLE scrobbles (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    connection_id     uuid NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    user_id           uuid NOT NULL,
    service           text NOT NULL
        CHECK (service IN ('trakt', 'lastfm', 'listenbrainz', 'simkl', 'anilist')),
    dedupe_key        text NOT NULL CHECK (length(dedupe_key) BETWEEN 1 AND 512),
    kind              text NOT NULL
        CHECK (kind IN ('now_playing', 'start', 'pause', 'scrobble', 'watched', 'rating')),
    play_id           uuid REFERENCES play_sessions (id) ON DELETE SET NULL,
    source_event_id   uuid,
    content_type      text NOT NULL
        CHECK (content_type IN ('movie', 'episode', 'track', 'anime_episode')),
    content_id        uuid NOT NULL,
    request           jsonb NOT NULL,
    occurred_at       timestamptz NOT NULL,
    status            text NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'sending', 'retrying', 'sent', 'failed', 'dead')),
    attempts          integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at   timestamptz,
    last_error        text,
    last_http_status  integer CHECK (last_http_status IS NULL OR last_http_status BETWEEN 100 AND 599),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    sent_at           timestamptz,
    UNIQUE (connection_id, dedupe_key),
    CHECK ((status = 'sent') = (sent_at IS NOT NULL)),
    CHECK (status <> 'retrying' OR next_attempt_at IS NOT NULL),
    CHECK (status NOT IN ('failed', 'dead') OR last_error IS NOT NULL)
);
CREATE INDEX scrobbles_history_idx ON scrobbles (user_id, created_at DESC, id);
CREATE INDEX scrobbles_due_idx ON scrobbles (service, next_attempt_at)
    WHERE status IN ('queued', 'retrying');
CREATE INDEX scrobbles_dead_idx ON scrobbles (service, updated_at) WHERE status = 'dead';

-- Transactional outbox: rows written in the same transaction as the work they announce,
-- published to Kafka afterwards, so a crash between commit and publish loses nothing.
CREATE TABLE outbox (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic         text NOT NULL CHECK (length(topic) BETWEEN 1 AND 249),
    key           bytea,
    value         bytea NOT NULL,
    headers       jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz
);
CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;

CREATE TABLE import_jobs (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    connection_id  uuid NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    user_id        uuid NOT NULL,
    service        text NOT NULL
        CHECK (service IN ('trakt', 'lastfm', 'listenbrainz', 'simkl', 'anilist')),
    state          text NOT NULL DEFAULT 'queued'
        CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    -- Where a killed job resumes: a page number, a max_ts, a chunk... per service.
    cursor         jsonb,
    -- Incremental imports fetch only what is newer than this.
    since          timestamptz,
    pages_done     integer NOT NULL DEFAULT 0 CHECK (pages_done >= 0),
    items_seen     integer NOT NULL DEFAULT 0 CHECK (items_seen >= 0),
    items_added    integer NOT NULL DEFAULT 0 CHECK (items_added >= 0),
    errors         integer NOT NULL DEFAULT 0 CHECK (errors >= 0),
    last_error     text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    started_at     timestamptz,
    finished_at    timestamptz,
    CHECK (state NOT IN ('done', 'failed', 'cancelled') OR finished_at IS NOT NULL)
);
-- At most one job in flight per connection.
CREATE UNIQUE INDEX import_jobs_one_active_idx ON import_jobs (connection_id)
    WHERE state IN ('queued', 'running');

CREATE TABLE imported_items (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    connection_id  uuid NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    user_id        uuid NOT NULL,
    service        text NOT NULL
        CHECK (service IN ('trakt', 'lastfm', 'listenbrainz', 'simkl', 'anilist')),
    import_job_id  uuid REFERENCES import_jobs (id) ON DELETE SET NULL,
    kind           text NOT NULL CHECK (kind IN ('play', 'rating', 'list_entry')),
    content_type   text NOT NULL
        CHECK (content_type IN ('movie', 'episode', 'track', 'anime_episode')),
    -- The service's own identity of the item (for example 'movie:trakt:123').
    item_key       text NOT NULL CHECK (length(item_key) BETWEEN 1 AND 512),
    title          text,
    external_ids   jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- Each play keeps its own time; a rating its own.
    occurred_at    timestamptz NOT NULL,
    rating         smallint CHECK (rating IS NULL OR rating BETWEEN 1 AND 10),
    progress       integer CHECK (progress IS NULL OR progress >= 0),
    raw            jsonb,
    imported_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (connection_id, kind, item_key, occurred_at),
    CHECK (kind <> 'rating' OR rating IS NOT NULL)
);
CREATE INDEX imported_items_user_idx ON imported_items (user_id, imported_at DESC, id);

-- OAuth and Last.fm web-auth states: bound to a user, single use, short lived.
CREATE TABLE oauth_states (
    state              text PRIMARY KEY CHECK (length(state) >= 32),
    user_id            uuid NOT NULL,
    service            text NOT NULL
        CHECK (service IN ('trakt', 'lastfm', 'listenbrainz', 'simkl', 'anilist')),
    -- PKCE verifier, encrypted like tokens.
    code_verifier_enc  bytea,
    return_url         text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    expires_at         timestamptz NOT NULL,
    used_at            timestamptz,
    CHECK (expires_at > created_at),
    CHECK (used_at IS NULL OR used_at >= created_at)
);
CREATE INDEX oauth_states_expires_idx ON oauth_states (expires_at);
