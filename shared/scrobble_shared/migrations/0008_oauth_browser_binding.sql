-- Browser flows bound to the browser that started them (RFC 9700 section 4.7): starting a
-- flow sets a cookie holding a random nonce, and the callback finishes only with it. Only
-- the nonce's SHA-256 is kept. NULL for Trakt device-code bindings (no browser involved)
-- and for flows started before this migration, which the gateway no longer finishes.
ALTER TABLE oauth_states
    ADD COLUMN browser_nonce_hash bytea
        CHECK (browser_nonce_hash IS NULL OR length(browser_nonce_hash) = 32);

-- A user's open flows (not used, not expired), counted at every start for the limit
-- GATEWAY_MAX_OPEN_OAUTH_STATES; the oldest beyond it is dropped.
CREATE INDEX oauth_states_user_open_idx ON oauth_states (user_id, created_at)
    WHERE used_at IS NULL;
