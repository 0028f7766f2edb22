"""Pieces every fake shares: request log, fault queue, rate windows, tokens, auth pages."""
