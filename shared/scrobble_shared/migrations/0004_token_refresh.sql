-- Token refresh in flight (scrobble_dispatcher.tokens). Refresh tokens are single-use at
-- Trakt, so a dispatcher records, in its own committed statement, that it is about to spend
-- the stored one (when, and from which token_version) before calling the token endpoint; the
-- new pair is written with compare-and-set on token_version in the statement that clears the
-- mark. A mark older than the lease with an unchanged token_version is an interrupted refresh.
ALTER TABLE connections
    ADD COLUMN refresh_started_at    timestamptz,
    ADD COLUMN refresh_from_version  integer CHECK (refresh_from_version >= 0),
    ADD CONSTRAINT connections_refresh_mark_whole
        CHECK ((refresh_started_at IS NULL) = (refresh_from_version IS NULL));
