-- History imports (scrobble_dispatcher.imports): what a worker needs to own a job, to hand
-- it over when it dies, and to page a history that keeps growing while it is read.
--
-- A worker claims a job by setting lease_owner and lease_until (one conditional UPDATE, so
-- two workers never run one job); it renews the lease while it works, and every page it
-- saves checks that it still owns the job (a worker that lost its lease writes nothing).
-- A job in 'running' whose lease has run out belonged to a worker that died: any worker
-- takes it over and goes on from its saved cursor.
-- until_at fixes the newest moment the job reads (set when first claimed), so pages asked
-- for by number or by timestamp stay the same while new plays arrive; the next import
-- starts from it (its since).
ALTER TABLE import_jobs
    ADD COLUMN lease_owner  uuid,
    ADD COLUMN lease_until  timestamptz,
    ADD COLUMN until_at     timestamptz,
    ADD COLUMN claims       integer NOT NULL DEFAULT 0 CHECK (claims >= 0),
    ADD COLUMN updated_at   timestamptz NOT NULL DEFAULT now();

CREATE INDEX import_jobs_lease_idx ON import_jobs (lease_until)
    WHERE state IN ('queued', 'running');
CREATE INDEX import_jobs_user_idx ON import_jobs (user_id, created_at DESC, id);
CREATE INDEX import_jobs_connection_done_idx ON import_jobs (connection_id, until_at DESC)
    WHERE state = 'done';

-- Two-way sync asks, for each imported play, whether the other connection already has the
-- same item near the same moment (sent from a playback event, or imported from there).
CREATE INDEX scrobbles_connection_time_idx ON scrobbles (connection_id, occurred_at);
CREATE INDEX imported_items_connection_time_idx ON imported_items (connection_id, occurred_at);
