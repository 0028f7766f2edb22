-- Fair turns on the pacing keys many users share (an app's key at Last.fm, its client id at
-- Simkl; issue 15): per key and per user ("share"), the earliest moment that user may take
-- the key's next slot. scrobble_dispatcher.pacing moves a share's turn one fair step (the
-- key's interval per lane, times the users taking turns) past each slot it takes, inside
-- the transaction that holds the key's row, so every replica hands the key out in turns.
CREATE TABLE pacing_turns (
    key      text NOT NULL CHECK (length(key) > 0),
    share    text NOT NULL CHECK (length(share) > 0),
    turn_at  timestamptz NOT NULL,
    PRIMARY KEY (key, share)
);
-- The users taking turns on a key now: those whose turn lies ahead.
CREATE INDEX pacing_turns_ahead_idx ON pacing_turns (key, turn_at);

-- The due-work poller runs its rounds back to back while they find work (issue 15); the
-- rows it takes over from a replica that died ('sending' past their lease) are found by
-- this index instead of a scan of every row ever written.
CREATE INDEX scrobbles_sending_idx ON scrobbles (service, updated_at) WHERE status = 'sending';
-- The due-work poller's fair rounds: each connection with rows waiting, its oldest first,
-- found by one probe per connection however deep its backlog.
CREATE INDEX scrobbles_waiting_idx ON scrobbles (service, connection_id, next_attempt_at, occurred_at, id)
    WHERE status = 'retrying';
