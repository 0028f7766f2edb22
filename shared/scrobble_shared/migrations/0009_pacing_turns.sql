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
