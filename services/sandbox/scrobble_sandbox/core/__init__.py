"""Pieces every fake shares: request log, fault queue, rate windows, tokens, auth pages, the
fake and state wiring, the consent, OAuth code and device flows, and the scrobble API base."""
