-- Media servers that send webhooks to the intake (CONTRACTS section 8): one row per
-- server, reached through a secret URL, and the server users it maps onto our users.

CREATE TABLE sources (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    kind               text NOT NULL CHECK (kind IN ('jellyfin', 'plex', 'emby', 'events')),
    name               text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- The user who manages it; NULL for a source of the operator's (made by an admin).
    owner_id           uuid,
    -- SHA-256 of the secret in the webhook URL. The secret itself is never stored: it is
    -- shown once, when the source is made or its secret rotated.
    secret_hash        bytea NOT NULL UNIQUE CHECK (length(secret_hash) = 32),
    -- Allow and deny lists, minimum length, anime libraries (scrobble_shared.sources).
    filters            jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    secret_rotated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sources_owner_idx ON sources (owner_id, created_at, id);

-- A server user (its id or its name, trimmed and case-folded) is one of our users.
CREATE TABLE source_users (
    source_id    uuid NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
    server_user  text NOT NULL CHECK (length(server_user) BETWEEN 1 AND 256),
    user_id      uuid NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_id, server_user)
);

-- The intake caches sources; every change to one, its secret or its mappings is announced
-- with the source's id, so a rotated secret stops working at once.
CREATE FUNCTION notify_source_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'sources' THEN
        PERFORM pg_notify('sources_changed',
            (CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END)::text);
    ELSE
        PERFORM pg_notify('sources_changed',
            (CASE WHEN TG_OP = 'DELETE' THEN OLD.source_id ELSE NEW.source_id END)::text);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER sources_changed
    AFTER INSERT OR UPDATE OR DELETE ON sources
    FOR EACH ROW EXECUTE FUNCTION notify_source_change();
CREATE TRIGGER source_users_changed
    AFTER INSERT OR UPDATE OR DELETE ON source_users
    FOR EACH ROW EXECUTE FUNCTION notify_source_change();
