-- The page for people (issue 16): one-time sign-in links and the sessions they open.
-- Only SHA-256 digests of the link tokens and session cookies are kept: a copy of this
-- table signs nobody in.

-- A sign-in link: one use, 15 minutes. Spent and expired rows stay a day (so a second use
-- is told "already used", not "unknown"), then go at the next sweep.
CREATE TABLE login_links (
    token_hash  bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    user_id     uuid NOT NULL,
    admin       boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    CHECK (expires_at > created_at),
    CHECK (used_at IS NULL OR used_at >= created_at)
);
CREATE INDEX login_links_expires_idx ON login_links (expires_at);

-- A signed-in browser. Live while not ended, before expires_at (the absolute limit) and
-- seen within the idle timeout (GATEWAY_SESSION_IDLE_TIMEOUT, applied when read, so a
-- change of the setting applies to sessions already open).
CREATE TABLE page_sessions (
    id_hash       bytea PRIMARY KEY CHECK (length(id_hash) = 32),
    user_id       uuid NOT NULL,
    roles         text[] NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    ended_at      timestamptz,
    CHECK (expires_at > created_at)
);
CREATE INDEX page_sessions_expires_idx ON page_sessions (expires_at);
