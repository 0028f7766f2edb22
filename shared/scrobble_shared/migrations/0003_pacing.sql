-- Pacing shared by every dispatcher replica: one row per rate-limited key (a user's token at
-- a service, or an app's key). next_at is the earliest moment the next call on that key may
-- go out; scrobble_dispatcher.pacing moves it forward with single atomic upserts, so two
-- replicas can never be handed the same slot.
CREATE TABLE pacing_slots (
    key      text PRIMARY KEY CHECK (length(key) > 0),
    next_at  timestamptz NOT NULL
);
