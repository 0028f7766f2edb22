"""Schema migration files, applied by scrobble_shared.db.migrate."""
