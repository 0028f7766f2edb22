-- The trackers are the registry's (scrobble_shared.trackers.registry), not a list repeated in
-- six CHECK constraints: every service column now references trackers(name), whose rows
-- `scrobble migrate` writes from the registry after the migrations (a tracker added to the
-- registry needs no migration of its own). A name no tracker has is still refused by the
-- database, as a foreign key violation.
CREATE TABLE trackers (
    name text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,31}$')
);
INSERT INTO trackers (name) VALUES ('trakt'), ('lastfm'), ('listenbrainz'), ('simkl'), ('anilist');

ALTER TABLE connections DROP CONSTRAINT connections_service_check,
    ADD CONSTRAINT connections_service_fkey FOREIGN KEY (service) REFERENCES trackers (name);
ALTER TABLE scrobbles DROP CONSTRAINT scrobbles_service_check,
    ADD CONSTRAINT scrobbles_service_fkey FOREIGN KEY (service) REFERENCES trackers (name);
ALTER TABLE import_jobs DROP CONSTRAINT import_jobs_service_check,
    ADD CONSTRAINT import_jobs_service_fkey FOREIGN KEY (service) REFERENCES trackers (name);
ALTER TABLE imported_items DROP CONSTRAINT imported_items_service_check,
    ADD CONSTRAINT imported_items_service_fkey FOREIGN KEY (service) REFERENCES trackers (name);
ALTER TABLE oauth_states DROP CONSTRAINT oauth_states_service_check,
    ADD CONSTRAINT oauth_states_service_fkey FOREIGN KEY (service) REFERENCES trackers (name);
ALTER TABLE id_lookups DROP CONSTRAINT id_lookups_service_check,
    ADD CONSTRAINT id_lookups_service_fkey FOREIGN KEY (service) REFERENCES trackers (name);

-- A connection's own API address, for a tracker each user runs themselves (a self-hosted
-- server): NULL means the tracker's configured address.
ALTER TABLE connections ADD COLUMN api_url text
    CHECK (api_url IS NULL OR (length(api_url) <= 2048 AND api_url ~ '^https?://'));
