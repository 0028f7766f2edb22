-- What the ingest service needs beyond the first schema.

-- Records of the playback topic that could not be used and went to the dead-letter topic:
-- keyed by their position, so a redelivered bad record is dead-lettered once.
CREATE TABLE rejected_records (
    source_topic      text NOT NULL,
    source_partition  integer NOT NULL CHECK (source_partition >= 0),
    source_offset     bigint NOT NULL CHECK (source_offset >= 0),
    error_class       text NOT NULL,
    error_message     text NOT NULL,
    rejected_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_topic, source_partition, source_offset)
);

-- Every outbox message has an identity (a scrobble id, or the dead letter's source
-- position), carried as a Kafka header so a recovering relay can tell what already went out.
ALTER TABLE outbox ADD COLUMN message_id text NOT NULL DEFAULT '';
ALTER TABLE outbox ALTER COLUMN message_id DROP DEFAULT;
ALTER TABLE outbox ADD CONSTRAINT outbox_message_id_present CHECK (length(message_id) > 0);

-- Services that cache connections hear about every change to a user's connections.
CREATE FUNCTION notify_connection_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(
        'connections_changed',
        (CASE WHEN TG_OP = 'DELETE' THEN OLD.user_id ELSE NEW.user_id END)::text
    );
    RETURN NULL;
END;
$$;

CREATE TRIGGER connections_changed
    AFTER INSERT OR UPDATE OR DELETE ON connections
    FOR EACH ROW EXECUTE FUNCTION notify_connection_change();
